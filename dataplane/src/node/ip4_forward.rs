//! `ip_forward`: the forwarding decision after the route is known (Linux `net/ipv4/ip_forward.c`).
//!
//! Order, as Linux: TTL first (RFC 1812 §5.3.1: a packet whose TTL is 1 or 0 on arrival is not
//! forwarded: ICMP Time Exceeded), then the egress MTU (`ip_exceeds_mtu`: DF set → not sent,
//! ICMP Fragmentation Needed with the next-hop MTU, RFC 1191; DF clear → fragmented,
//! `ip_fragment`). The pipeline then decrements the TTL in place with the RFC 1624 incremental
//! checksum update, Linux's `ip_decrease_ttl`
//! ([`Ipv4Packet::decrease_ttl`](crate::wire::Ipv4Packet::decrease_ttl)).

use crate::drop::DropReason;

/// Checks that a packet may leave through an interface with this `mtu`: `Ok(true)` when it fits,
/// `Ok(false)` when it must be fragmented (DF clear).
///
/// `ttl`, `total_len` and `df` come from the validated header.
///
/// # Errors
///
/// [`DropReason::TtlExpired`] for TTL ≤ 1; [`DropReason::FragNeeded`] when the packet is larger
/// than `mtu` with DF set.
#[inline]
pub fn ip_forward(ttl: u8, total_len: usize, df: bool, mtu: u32) -> Result<bool, DropReason> {
    if ttl <= 1 {
        return Err(DropReason::TtlExpired);
    }
    if total_len > mtu as usize {
        if df {
            return Err(DropReason::FragNeeded);
        }
        return Ok(false);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rules() {
        assert_eq!(ip_forward(0, 100, false, 1500), Err(DropReason::TtlExpired));
        assert_eq!(ip_forward(1, 100, false, 1500), Err(DropReason::TtlExpired));
        assert_eq!(ip_forward(2, 1500, true, 1500), Ok(true));
        assert_eq!(ip_forward(2, 1501, true, 1500), Err(DropReason::FragNeeded));
        assert_eq!(ip_forward(2, 1501, false, 1500), Ok(false));
    }
}

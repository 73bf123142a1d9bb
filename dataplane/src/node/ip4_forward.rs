//! `ip_forward`: the forwarding decision after the route is known (Linux `net/ipv4/ip_forward.c`).
//!
//! Order, as Linux: TTL first (RFC 1812 §5.3.1: a packet whose TTL is 1 or 0 on arrival is not
//! forwarded), then the egress MTU (`ip_exceeds_mtu`: DF set → not sent, RFC 1191
//! "fragmentation needed"), then the TTL decrement with the RFC 1624 incremental checksum update
//! (`ip_decrease_ttl`).

use crate::drop::DropReason;

/// Offset of the TTL byte in the IPv4 header.
const TTL: usize = 8;
/// Offset of the header checksum.
const CHECKSUM: usize = 10;

/// Checks that a packet may leave through an interface with this `mtu`.
///
/// `ttl`, `total_len` and `df` come from the validated header.
///
/// # Errors
///
/// [`DropReason::TtlExpired`] for TTL ≤ 1; [`DropReason::FragNeeded`] when the packet is larger
/// than `mtu` with DF set; [`DropReason::FragUnsupported`] when it is larger without DF.
#[inline]
pub fn ip_forward(ttl: u8, total_len: usize, df: bool, mtu: u32) -> Result<(), DropReason> {
    if ttl <= 1 {
        return Err(DropReason::TtlExpired);
    }
    if total_len > mtu as usize {
        return Err(if df {
            DropReason::FragNeeded
        } else {
            DropReason::FragUnsupported
        });
    }
    Ok(())
}

/// Decrements the TTL and patches the header checksum incrementally (RFC 1624 eqn. 3), exactly as
/// Linux's `ip_decrease_ttl`: the TTL is the high byte of its 16-bit word, so the word drops by
/// 0x0100 and the one's-complement checksum rises by 0x0100, with end-around carry.
///
/// `hdr` starts at the IPv4 header, which the caller has validated (at least 20 bytes, TTL ≥ 1).
///
/// # Panics
///
/// If `hdr` is shorter than 20 bytes (the caller's validation rules that out).
#[inline]
pub fn ip_decrease_ttl(hdr: &mut [u8]) {
    let check = u32::from(u16::from_be_bytes([hdr[CHECKSUM], hdr[CHECKSUM + 1]])) + 0x0100;
    // `check >= 0xFFFF` (not `>`) folds the carry the way Linux does, so a checksum of 0xFEFF
    // becomes 0x0000 rather than 0xFFFF: both are -0/+0 in one's complement, and receivers accept
    // either (RFC 1624 §5).
    let check = (check + u32::from(check >= 0xFFFF)) as u16;
    hdr[CHECKSUM..CHECKSUM + 2].copy_from_slice(&check.to_be_bytes());
    hdr[TTL] -= 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checksum(hdr: &[u8]) -> u16 {
        let mut s: u32 = hdr
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        while s > 0xFFFF {
            s = (s & 0xFFFF) + (s >> 16);
        }
        !(s as u16)
    }

    fn header(ttl: u8) -> [u8; 20] {
        let mut h = [
            0x45, 0, 0, 84, 0x12, 0x34, 0x40, 0, ttl, 1, 0, 0, 10, 0, 1, 2, 10, 0, 2, 2,
        ];
        let c = checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h
    }

    #[test]
    fn ttl_rules() {
        assert_eq!(ip_forward(0, 100, false, 1500), Err(DropReason::TtlExpired));
        assert_eq!(ip_forward(1, 100, false, 1500), Err(DropReason::TtlExpired));
        assert_eq!(ip_forward(2, 1500, true, 1500), Ok(()));
        assert_eq!(ip_forward(2, 1501, true, 1500), Err(DropReason::FragNeeded));
        assert_eq!(
            ip_forward(2, 1501, false, 1500),
            Err(DropReason::FragUnsupported)
        );
    }

    #[test]
    fn decrement_keeps_checksum_valid_for_every_ttl() {
        for ttl in 1..=255u8 {
            let mut h = header(ttl);
            ip_decrease_ttl(&mut h);
            assert_eq!(h[TTL], ttl - 1);
            assert!(
                matches!(checksum(&h), 0 | 0xFFFF),
                "ttl {ttl}: {:#06x}",
                checksum(&h)
            );
        }
    }

    #[test]
    fn feff_edge_case_folds_to_zero_like_linux() {
        // The comment in Linux include/net/ip.h: check 0xFEFF + 0x0100 = 0xFFFF must become 0.
        let mut h = header(64);
        h[10..12].copy_from_slice(&0xFEFFu16.to_be_bytes());
        ip_decrease_ttl(&mut h);
        assert_eq!(u16::from_be_bytes([h[10], h[11]]), 0x0000);
    }
}

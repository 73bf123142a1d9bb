//! `ip4-rewrite`: write the next hop's prebuilt L2 header in front of the IPv4 packet (Linux
//! `neigh_hh_output` copying `hh_cache`; VPP `ip4-rewrite`).

use crate::fib::L2_LEN;

/// Writes `l2` (destination MAC, source MAC, EtherType) over the frame's Ethernet header.
///
/// The frame arrived with an untagged 14-byte Ethernet header, so the IPv4 packet already sits at
/// offset 14 and the rewrite is one 14-byte copy; TTL and checksum were patched in place by
/// `ip_forward`, so nothing is re-emitted.
///
/// # Panics
///
/// If `frame` is shorter than 14 bytes (`eth_input` rejects such frames first).
#[inline]
pub fn ip4_rewrite(frame: &mut [u8], l2: &[u8; L2_LEN]) {
    frame[..L2_LEN].copy_from_slice(l2);
}

//! `ip4-lookup`: the route lookup for a whole batch at once (DPDK l3fwd's bulk LPM lookup, VPP's
//! `ip4-lookup` node), then the next hop each result names.

use crate::fib::{Fib, Verdict};

/// Looks up `dsts` (host order) into FIB entry indexes, `out[i]` for `dsts[i]`.
///
/// # Panics
///
/// If `out` is shorter than `dsts`.
#[inline]
pub fn ip4_lookup(fib: &Fib, dsts: &[u32], out: &mut [u32]) {
    fib.routes.lookup_batch(dsts, out);
}

/// Where the packet to `dst`, whose lookup gave `entry`, goes next (a multipath route hashes
/// the addresses `(0, dst)`: see [`ip4_next_hop_hashed`] for the packet's own flow hash).
#[inline]
pub fn ip4_next_hop(fib: &Fib, entry: u32, dst: u32) -> Verdict<'_> {
    fib.verdict(entry, dst)
}

/// [`ip4_next_hop`] with the packet's flow hash, which `hash` computes only when `entry` is a
/// multipath route.
#[inline]
pub fn ip4_next_hop_hashed(
    fib: &Fib,
    entry: u32,
    dst: u32,
    hash: impl FnOnce() -> u32,
) -> Verdict<'_> {
    fib.verdict_hashed(entry, dst, hash)
}

//! Longest-prefix match over IPv4, the lookup structure the workers read.
//!
//! This is the plain, obviously-correct structure: one hash table per prefix length, probed from
//! the longest populated length down (the classic "binary search on prefix lengths" without the
//! binary search). It answers any table correctly and is fast for the handful of lengths a small
//! table populates; the full-table structure replaces it behind the same interface, with this one
//! kept as its test oracle.
//!
//! ```text
//!   lookup(a) = for len in populated lengths, longest first:
//!                   if tables[len] has (a & mask(len)) -> return its value
//!               None
//! ```

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Multiplicative hasher for `u32` keys (Fibonacci hashing). The keys are network prefixes, not
/// attacker-chosen at table-build time, so DoS-resistant hashing buys nothing here.
#[derive(Default, Clone, Copy, Debug)]
pub struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        // The product's high half is the well-mixed one; the table indexes buckets with the low
        // bits, and prefixes have zero low bits (a /24's low 8 bits are all 0).
        self.0.rotate_left(32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (u64::from(n) ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// `HashMap` keyed by integers with [`PrefixHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<PrefixHasher>>;

/// Network mask for a prefix length 0..=32, as a host-order `u32`.
#[inline]
pub const fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

/// A longest-prefix-match table from IPv4 prefixes to `u32` values.
#[derive(Clone, Debug, Default)]
pub struct Lpm {
    /// `tables[len]`: masked prefix → value.
    tables: Vec<FastMap<u32, u32>>,
    /// Populated prefix lengths, longest first.
    lengths: Vec<u8>,
    len: usize,
}

impl Lpm {
    /// Builds a table from `(prefix, length, value)` triples (host-order prefixes). Host bits
    /// beyond `length` are ignored; a later duplicate of the same prefix replaces the earlier one.
    ///
    /// # Panics
    ///
    /// If a length exceeds 32 (callers validate kernel input first).
    pub fn build(routes: impl IntoIterator<Item = (u32, u8, u32)>) -> Self {
        let mut lpm = Lpm {
            tables: vec![FastMap::default(); 33],
            ..Lpm::default()
        };
        for (prefix, len, value) in routes {
            lpm.insert(prefix, len, value);
        }
        lpm
    }

    /// Inserts or replaces a prefix.
    ///
    /// # Panics
    ///
    /// If `len > 32`.
    pub fn insert(&mut self, prefix: u32, len: u8, value: u32) {
        assert!(len <= 32, "prefix length {len} > 32");
        if self.tables.is_empty() {
            self.tables = vec![FastMap::default(); 33];
        }
        if self.tables[len as usize]
            .insert(prefix & mask(len), value)
            .is_none()
        {
            self.len += 1;
            if !self.lengths.contains(&len) {
                self.lengths.push(len);
                self.lengths.sort_unstable_by(|a, b| b.cmp(a));
            }
        }
    }

    /// Removes a prefix, returning its value.
    pub fn remove(&mut self, prefix: u32, len: u8) -> Option<u32> {
        let table = self.tables.get_mut(len as usize)?;
        let old = table.remove(&(prefix & mask(len)))?;
        self.len -= 1;
        if table.is_empty() {
            self.lengths.retain(|&l| l != len);
        }
        Some(old)
    }

    /// The value of the longest prefix covering `addr` (host order).
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        self.lengths
            .iter()
            .find_map(|&len| self.tables[len as usize].get(&(addr & mask(len))).copied())
    }

    /// Looks up a batch: `out[i] = lookup(addrs[i])`, `miss` where nothing matches.
    ///
    /// # Panics
    ///
    /// If `out` is shorter than `addrs`.
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [u32], miss: u32) {
        for (a, o) in addrs.iter().zip(&mut out[..addrs.len()]) {
            *o = self.lookup(*a).unwrap_or(miss);
        }
    }

    /// The value of exactly `prefix/len`.
    pub fn get(&self, prefix: u32, len: u8) -> Option<u32> {
        self.tables
            .get(len as usize)?
            .get(&(prefix & mask(len)))
            .copied()
    }

    /// The longest prefix strictly shorter than `len` that covers `prefix`, as `(length, value)`:
    /// what takes over `prefix/len`'s addresses when it is removed.
    pub fn covering(&self, prefix: u32, len: u8) -> Option<(u8, u32)> {
        self.lengths.iter().filter(|&&l| l < len).find_map(|&l| {
            self.tables[l as usize]
                .get(&(prefix & mask(l)))
                .map(|&v| (l, v))
        })
    }

    /// Every prefix as `(prefix, length, value)`, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u8, u32)> + '_ {
        self.tables
            .iter()
            .enumerate()
            .flat_map(|(l, t)| t.iter().map(move |(&p, &v)| (p, l as u8, v)))
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The oracle: scan every prefix, keep the longest match.
    fn linear(routes: &[(u32, u8, u32)], addr: u32) -> Option<u32> {
        let mut best: Option<(u8, u32)> = None;
        for &(p, l, v) in routes {
            if addr & mask(l) == p & mask(l) && best.is_none_or(|(bl, _)| l >= bl) {
                best = Some((l, v));
            }
        }
        best.map(|(_, v)| v)
    }

    #[test]
    fn default_route_and_host_routes() {
        let lpm = Lpm::build([(0, 0, 1), (0x0a00_0000, 8, 2), (0x0a01_0203, 32, 3)]);
        assert_eq!(lpm.lookup(0xC000_0201), Some(1));
        assert_eq!(lpm.lookup(0x0a09_0909), Some(2));
        assert_eq!(lpm.lookup(0x0a01_0203), Some(3));
        assert_eq!(lpm.lookup(0x0a01_0204), Some(2));
        assert_eq!(lpm.len(), 3);
    }

    #[test]
    fn remove_reexposes_covering_route() {
        let mut lpm = Lpm::build([(0x0a00_0000, 8, 1), (0x0a01_0000, 16, 2)]);
        assert_eq!(lpm.lookup(0x0a01_0101), Some(2));
        assert_eq!(lpm.remove(0x0a01_0000, 16), Some(2));
        assert_eq!(lpm.lookup(0x0a01_0101), Some(1));
        assert_eq!(lpm.remove(0x0a01_0000, 16), None);
        assert_eq!(lpm.remove(0x0a00_0000, 8), Some(1));
        assert!(lpm.is_empty());
        assert_eq!(lpm.lookup(0x0a01_0101), None);
    }

    #[test]
    fn host_bits_are_ignored() {
        let lpm = Lpm::build([(0x0a01_02ff, 24, 7)]);
        assert_eq!(lpm.lookup(0x0a01_0200), Some(7));
    }

    proptest! {
        #[test]
        fn agrees_with_linear_scan(
            routes in proptest::collection::vec((any::<u32>(), 0u8..=32, any::<u32>()), 0..64),
            probes in proptest::collection::vec(any::<u32>(), 64),
        ) {
            // Later duplicates replace earlier ones in both the table and the oracle.
            let mut dedup: Vec<(u32, u8, u32)> = Vec::new();
            for &(p, l, v) in &routes {
                dedup.retain(|&(q, m, _)| !(m == l && q & mask(m) == p & mask(l)));
                dedup.push((p, l, v));
            }
            let lpm = Lpm::build(routes.iter().copied());
            // Probe inside the prefixes too, not only at random.
            for a in probes.iter().copied().chain(routes.iter().map(|r| r.0)) {
                prop_assert_eq!(lpm.lookup(a), linear(&dedup, a));
            }
        }
    }
}

//! ECMP: which path of a multipath route a flow takes.
//!
//! ```text
//!   packet ──► flow_hash(src, dst, [proto, sport, dport]) ──► top 8 bits ──► bucket[256]
//!                                                                              │
//!                                               next-hop index of one member ◄─┘
//! ```
//!
//! Each group (one per distinct member set) has [`MP_BUCKETS`] buckets, each owned by one member.
//! A bucket's owner is chosen by weighted rendezvous hashing (highest random weight): the member
//! whose `-ln(u(bucket, member)) / weight` is smallest, with `u` a hash of the bucket number and
//! the member's identity (port, gateway). So the table is a pure function of the member set:
//!
//! - removing a member reassigns only the buckets it owned (every other bucket's winner is still
//!   the winner), so only its flows move, like Linux's resilient next-hop groups;
//! - adding a member takes buckets only for itself;
//! - a full rebuild of the FIB (or a restart) gives the same table: no state to carry across.
//!
//! Members get buckets in proportion to their weights, up to the sampling spread of 256 buckets
//! (about ±6 % of a member's share for two members).

use std::sync::LazyLock;

/// Buckets per ECMP group.
pub const MP_BUCKETS: usize = 256;

/// `forwarding.multipath_hash`: what a multipath route hashes to pick a path.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum MultipathHash {
    /// Source and destination addresses (Linux `fib_multipath_hash_policy` 0, its default).
    #[default]
    L3,
    /// The 5-tuple: addresses, protocol, TCP/UDP/SCTP ports (policy 1). Fragments and other
    /// protocols hash addresses and protocol, so all fragments of a datagram take one path.
    L4,
}

/// One ECMP group: its members and which member owns each bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpGroup {
    /// Next-hop index of each bucket's owner.
    buckets: Box<[u32; MP_BUCKETS]>,
    /// `(next-hop index, weight)`, sorted by next hop.
    members: Box<[(u32, u16)]>,
}

/// A 64-bit mixer (the MurmurHash3 / SplitMix64 finaliser).
#[inline(always)]
const fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// This process's hash seed: random per start, like Linux's per-boot key, so routers in series
/// do not all split flows the same way (hash polarisation).
static SEED: LazyLock<u64> = LazyLock::new(|| {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
});

/// The flow hash of a packet: addresses (host order) and `l4`, which is 0 for the address-only
/// hash or `proto << 32 | sport << 16 | dport` for the 5-tuple one ([`l4_key`]).
#[inline]
pub fn flow_hash(src: u32, dst: u32, l4: u64) -> u32 {
    let a = (u64::from(src) << 32 | u64::from(dst)) ^ *SEED;
    (fmix64(fmix64(a) ^ l4) >> 32) as u32
}

/// The `l4` part of [`flow_hash`] for a packet under `policy`: `ip` is the IPv4 packet (header
/// of `header_len` bytes first), `fragment` whether it is any fragment (first included: the
/// later ones carry no ports, and every fragment of a datagram must take the same path).
#[inline]
pub fn l4_key(
    policy: MultipathHash,
    ip: &[u8],
    header_len: usize,
    proto: u8,
    fragment: bool,
) -> u64 {
    if policy == MultipathHash::L3 {
        return 0;
    }
    let ports = match (proto, ip.get(header_len..header_len + 4)) {
        // TCP, UDP, SCTP, UDP-Lite: source and destination port first.
        (6 | 17 | 132 | 136, Some(p)) if !fragment => {
            u64::from(u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
        }
        _ => 0,
    };
    u64::from(proto) << 32 | ports
}

impl MpGroup {
    /// The group of `members`: `(next-hop index, identity, weight)`, where the identity (the
    /// packed next-hop key) decides the buckets, so they do not depend on index order.
    ///
    /// # Panics
    ///
    /// If `members` is empty.
    pub fn new(members: &[(u32, u64, u16)]) -> Self {
        assert!(!members.is_empty(), "an ECMP group needs a member");
        let mut buckets = Box::new([0u32; MP_BUCKETS]);
        for (b, slot) in buckets.iter_mut().enumerate() {
            let mut best = (f64::INFINITY, 0);
            for &(nh, id, w) in members {
                // u in (0, 1]: 53 random bits.
                let h = fmix64(id ^ fmix64(b as u64 ^ 0x9e37_79b9_7f4a_7c15));
                let u = ((h >> 11) + 1) as f64 / (1u64 << 53) as f64;
                let score = -u.ln() / f64::from(w.max(1));
                if score < best.0 {
                    best = (score, nh);
                }
            }
            *slot = best.1;
        }
        let mut m: Vec<(u32, u16)> = members.iter().map(|&(nh, _, w)| (nh, w)).collect();
        m.sort_unstable();
        MpGroup {
            buckets,
            members: m.into(),
        }
    }

    /// `(next-hop index, weight)` of each member.
    pub fn members(&self) -> &[(u32, u16)] {
        &self.members
    }

    /// The next-hop index that owns the bucket of `hash`.
    #[inline]
    pub fn bucket(&self, hash: u32) -> u32 {
        self.buckets[(hash >> 24) as usize]
    }

    /// The path for `hash`: its bucket's owner when `alive(owner)`, else the owner of the next
    /// bucket (in ring order) whose owner is alive, else the bucket's owner anyway.
    #[inline]
    pub fn select(&self, hash: u32, alive: impl Fn(u32) -> bool) -> u32 {
        let b = (hash >> 24) as usize;
        let nh = self.buckets[b];
        if alive(nh) {
            return nh;
        }
        (1..MP_BUCKETS)
            .map(|k| self.buckets[(b + k) % MP_BUCKETS])
            .find(|&o| o != nh && alive(o))
            .unwrap_or(nh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(ids: &[(u32, u16)]) -> MpGroup {
        let m: Vec<(u32, u64, u16)> = ids
            .iter()
            .map(|&(nh, w)| (nh, 0x1_0a00_0000 + u64::from(nh), w))
            .collect();
        MpGroup::new(&m)
    }

    fn share(g: &MpGroup, nh: u32) -> usize {
        g.buckets.iter().filter(|&&b| b == nh).count()
    }

    #[test]
    fn buckets_spread_over_members_by_weight() {
        for n in 2..=8u32 {
            let g = group(&(0..n).map(|i| (i, 1)).collect::<Vec<_>>());
            let fair = MP_BUCKETS / n as usize;
            for i in 0..n {
                let s = share(&g, i);
                assert!(
                    s * 10 >= fair * 6 && s * 10 <= fair * 14,
                    "{n} members: member {i} owns {s} buckets (fair {fair})"
                );
            }
        }
        let g = group(&[(0, 1), (1, 3)]);
        let (a, b) = (share(&g, 0), share(&g, 1));
        assert!(b > 2 * a && b < 4 * a + 20, "weights 1:3 gave {a}:{b}");
    }

    #[test]
    fn flows_spread_and_stick() {
        let g = group(&[(0, 1), (1, 1), (2, 1)]);
        let mut count = [0usize; 3];
        for sport in 0..30_000u32 {
            let l4 = 17 << 32 | u64::from(sport) << 16 | 53;
            let h = flow_hash(0x0a00_0001, 0xc633_6401, l4);
            let nh = g.bucket(h);
            // The same flow always hashes to the same path.
            assert_eq!(g.bucket(flow_hash(0x0a00_0001, 0xc633_6401, l4)), nh);
            count[nh as usize] += 1;
        }
        for c in count {
            assert!((6_000..=14_000).contains(&c), "per-path flows {count:?}");
        }
    }

    #[test]
    fn removing_a_member_moves_only_its_flows() {
        let before = group(&[(0, 1), (1, 1), (2, 1), (3, 1)]);
        let after = group(&[(0, 1), (1, 1), (3, 1)]);
        for b in 0..MP_BUCKETS {
            if before.buckets[b] != 2 {
                assert_eq!(before.buckets[b], after.buckets[b], "bucket {b} moved");
            } else {
                assert_ne!(after.buckets[b], 2);
            }
        }
        // Adding it back restores the original table exactly.
        assert_eq!(group(&[(0, 1), (1, 1), (2, 1), (3, 1)]), before);
    }

    #[test]
    fn dead_members_are_skipped() {
        let g = group(&[(0, 1), (1, 1)]);
        for h in (0..=u32::MAX).step_by(1 << 20) {
            assert_eq!(g.select(h, |nh| nh != 1), 0);
            assert_eq!(g.select(h, |_| true), g.bucket(h));
            // Nothing alive: the bucket's owner (the caller resolves it or holds the packet).
            assert_eq!(g.select(h, |_| false), g.bucket(h));
        }
    }

    #[test]
    fn l4_key_uses_ports_only_for_whole_tcp_udp() {
        let mut ip = vec![0u8; 28];
        ip[20..24].copy_from_slice(&[0x12, 0x34, 0x00, 0x35]);
        assert_eq!(l4_key(MultipathHash::L3, &ip, 20, 17, false), 0);
        assert_eq!(
            l4_key(MultipathHash::L4, &ip, 20, 17, false),
            17 << 32 | 0x1234_0035
        );
        assert_eq!(l4_key(MultipathHash::L4, &ip, 20, 17, true), 17 << 32);
        assert_eq!(l4_key(MultipathHash::L4, &ip, 20, 1, false), 1 << 32);
        // Truncated transport header: addresses and protocol.
        assert_eq!(l4_key(MultipathHash::L4, &ip[..22], 20, 6, false), 6 << 32);
    }
}

//! The control-plane RIB: every installed prefix, and the lookup structure derived from it.
//!
//! The lookup structure ([`Dir16`]) only knows the winning answer of each slot; the RIB knows
//! every prefix, so that removing a more-specific hands its addresses back to the prefix that
//! covers it (the "covering route" query below). Prefixes are kept one hash table per length
//! ([`Lpm`]): an exact insert or remove is one hash operation, and the covering query probes only
//! the populated lengths shorter than the removed one (about 20 on an Internet table).
//!
//! ```text
//!   insert p/l → v:  rib[l][p] = v;  dir: leaves in p/l of depth ≤ l  ← (l, v)
//!   remove p/l:      rib[l].remove(p); c = longest rib prefix covering p/l, shorter than l
//!                    dir: leaves in p/l of depth == l  ← c (or "no route")
//! ```

use std::sync::Arc;

use super::dir16::{Dir16, MISS, UpdateError};
use super::lpm::{Lpm, mask};

/// Why a RIB could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum RibError {
    /// The lookup structure's address space could not be reserved.
    #[error("reserving the lookup structure: {0}")]
    Reserve(#[from] std::io::Error),
    /// The lookup structure refused an update.
    #[error(transparent)]
    Update(#[from] UpdateError),
}

/// Every prefix, and the lookup structure workers read. See the module documentation.
#[derive(Debug)]
pub struct Rib {
    prefixes: Lpm,
    dir: Arc<Dir16>,
}

impl Rib {
    /// An empty RIB.
    ///
    /// # Errors
    ///
    /// When the lookup structure's address space cannot be reserved.
    pub fn new() -> Result<Self, RibError> {
        Ok(Rib {
            prefixes: Lpm::build([]),
            dir: Arc::new(Dir16::new()?),
        })
    }

    /// Builds a RIB from `(prefix, length, value)` triples; a later duplicate of a prefix
    /// replaces the earlier one. Prefixes are installed shortest first, so each one only writes
    /// the slots it owns (no prefix is overwritten by a more-specific installed after it).
    ///
    /// # Errors
    ///
    /// A length above 32, a value above [`super::dir16::MAX_VALUE`], or a full lookup structure.
    pub fn build(routes: impl IntoIterator<Item = (u32, u8, u32)>) -> Result<Self, RibError> {
        let mut routes: Vec<(u32, u8, u32)> = routes.into_iter().collect();
        // Stable: duplicates keep their order, so the later one still wins.
        routes.sort_by_key(|r| r.1);
        let mut rib = Rib::new()?;
        for (p, l, v) in routes {
            rib.insert(p, l, v)?;
        }
        Ok(rib)
    }

    /// Inserts or replaces `prefix/len → value`; returns the value it replaced.
    ///
    /// # Errors
    ///
    /// As [`Dir16::insert`]; the RIB is unchanged then.
    pub fn insert(&mut self, prefix: u32, len: u8, value: u32) -> Result<Option<u32>, RibError> {
        self.dir.insert(prefix, len, value)?;
        let old = self.prefixes.get(prefix, len);
        self.prefixes.insert(prefix & mask(len), len, value);
        Ok(old)
    }

    /// Removes `prefix/len`; its addresses go to the covering prefix. Returns the removed value.
    ///
    /// # Errors
    ///
    /// A length above 32.
    pub fn remove(&mut self, prefix: u32, len: u8) -> Result<Option<u32>, RibError> {
        if len > 32 {
            return Err(UpdateError::BadLength(len).into());
        }
        let Some(old) = self.prefixes.remove(prefix, len) else {
            return Ok(None);
        };
        let covering = self.prefixes.covering(prefix, len);
        self.dir.remove(prefix, len, covering)?;
        Ok(Some(old))
    }

    /// The value of `prefix/len` exactly.
    pub fn get(&self, prefix: u32, len: u8) -> Option<u32> {
        self.prefixes.get(prefix, len)
    }

    /// The longest-match value for `addr`, or [`MISS`].
    #[inline]
    pub fn lookup(&self, addr: u32) -> u32 {
        self.dir.lookup(addr)
    }

    /// The lookup structure, for readers.
    pub fn dir(&self) -> &Arc<Dir16> {
        &self.dir
    }

    /// Every prefix as `(prefix, length, value)`, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u8, u32)> + '_ {
        self.prefixes.iter()
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.prefixes.len()
    }

    /// Whether there are no prefixes.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }
}

/// `MISS` as an `Option`.
#[inline]
pub fn found(v: u32) -> Option<u32> {
    (v != MISS).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// The oracle: scan every prefix, keep the longest match.
    fn linear(routes: &BTreeMap<(u8, u32), u32>, addr: u32) -> Option<u32> {
        routes
            .iter()
            .filter(|((l, p), _)| addr & mask(*l) == *p)
            .max_by_key(|((l, _), _)| *l)
            .map(|(_, v)| *v)
    }

    #[test]
    fn default_route_host_routes_and_reexposure() {
        let mut rib = Rib::build([(0, 0, 1), (0x0a00_0000, 8, 2), (0x0a01_0203, 32, 3)]).unwrap();
        assert_eq!(found(rib.lookup(0xC000_0201)), Some(1));
        assert_eq!(found(rib.lookup(0x0a09_0909)), Some(2));
        assert_eq!(found(rib.lookup(0x0a01_0203)), Some(3));
        assert_eq!(found(rib.lookup(0x0a01_0204)), Some(2));
        assert_eq!(rib.remove(0x0a01_0203, 32).unwrap(), Some(3));
        assert_eq!(found(rib.lookup(0x0a01_0203)), Some(2));
        assert_eq!(rib.remove(0x0a00_0000, 8).unwrap(), Some(2));
        assert_eq!(found(rib.lookup(0x0a01_0203)), Some(1));
        assert_eq!(rib.remove(0, 0).unwrap(), Some(1));
        assert_eq!(found(rib.lookup(0x0a01_0203)), None);
        assert!(rib.is_empty());
        // Every chunk went back once the table emptied.
        // Retired chunks wait for a grace period; with no reader holding one, they return at
        // the next publish.
        rib.dir().publish_grace();
        assert_eq!(rib.dir().chunks_in_use(), 0);
    }

    #[test]
    fn bad_input_is_refused_without_change() {
        let mut rib = Rib::new().unwrap();
        assert!(rib.insert(0, 33, 1).is_err());
        assert!(rib.insert(0, 8, MISS).is_err());
        assert!(rib.remove(0, 40).is_err());
        assert!(rib.is_empty());
        assert_eq!(found(rib.lookup(0)), None);
    }

    #[test]
    fn chunks_are_reused_after_grace() {
        let mut rib = Rib::new().unwrap();
        let held = rib.dir().grace();
        for round in 0..3u32 {
            rib.insert(0x0a01_0100, 24, round).unwrap();
            rib.insert(0x0a01_0101, 32, round).unwrap();
            rib.remove(0x0a01_0101, 32).unwrap();
            rib.remove(0x0a01_0100, 24).unwrap();
            rib.dir().publish_grace();
        }
        // A reader holds the first grace: nothing retired since may be reused.
        assert_eq!(rib.dir().chunks_in_use(), 6);
        drop(held);
        rib.dir().publish_grace();
        assert_eq!(rib.dir().chunks_in_use(), 0);
        rib.insert(0x0a01_0100, 24, 9).unwrap();
        assert_eq!(rib.dir().chunks_in_use(), 1);
        assert_eq!(found(rib.lookup(0x0a01_0177)), Some(9));
    }

    /// Hitless updates: while a writer flaps prefixes (adds, value changes, deletes, chunks
    /// created, collapsed, retired and reused), reader threads look up without pause. Every
    /// answer must be the one with the flapping prefix present or absent for addresses it
    /// covers, and exact everywhere else.
    #[test]
    fn readers_see_old_or_new_never_torn() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 16) as u32
        };
        // Base table: all lengths, /0 included.
        let mut base: BTreeMap<(u8, u32), u32> = BTreeMap::new();
        base.insert((0, 0), 1);
        for _ in 0..3000 {
            let l = (next() % 33) as u8;
            base.insert((l, next() & mask(l)), next() % 1000);
        }
        // Flapping prefixes: lengths 16..=32, each in its own /16, so no address is under two.
        let mut flaps: Vec<(u32, u8, u32)> = Vec::new();
        let mut sixteens = std::collections::HashSet::new();
        while flaps.len() < 64 {
            let l = 16 + (next() % 17) as u8;
            let p = next() & mask(l);
            if sixteens.insert(p >> 16) && !base.contains_key(&(l, p)) {
                flaps.push((p, l, 5000 + flaps.len() as u32));
                // A more-specific underneath, re-exposed and hidden as it flaps.
                if l < 32 {
                    base.insert((l + 1, p), 7000 + flaps.len() as u32);
                }
            }
        }
        let mut with = base.clone();
        for &(p, l, v) in &flaps {
            with.insert((l, p), v);
        }
        // Probes: inside every flap (edges and middle) and at random.
        let mut probes: Vec<u32> = flaps
            .iter()
            .flat_map(|&(p, l, _)| [p, p | !mask(l), p | (!mask(l) >> 1)])
            .collect();
        probes.extend((0..2000).map(|_| next()));
        let answers: Vec<(u32, Option<u32>, Option<u32>)> = probes
            .iter()
            .map(|&a| (a, linear(&base, a), linear(&with, a)))
            .collect();

        let mut rib = Rib::build(base.iter().map(|(&(l, p), &v)| (p, l, v))).unwrap();
        let dir = rib.dir().clone();
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (dir, stop, answers) = (dir.clone(), stop.clone(), answers.clone());
                std::thread::spawn(move || {
                    let addrs: Vec<u32> = answers.iter().map(|a| a.0).collect();
                    let mut out = vec![0; addrs.len()];
                    let mut rounds = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        // Hold the current grace period for the whole batch, as a worker holds
                        // its snapshot.
                        let _grace = dir.grace();
                        dir.lookup_batch(&addrs, &mut out);
                        for (&(a, old, new), &got) in answers.iter().zip(&out) {
                            let got = found(got);
                            assert!(
                                got == old || got == new,
                                "{a:#x}: got {got:?}, want {old:?} or {new:?}"
                            );
                            let one = found(dir.lookup(a));
                            assert!(one == old || one == new, "{a:#x}: single lookup {one:?}");
                        }
                        rounds += 1;
                    }
                    rounds
                })
            })
            .collect();
        for round in 0..100 {
            for &(p, l, v) in &flaps {
                rib.insert(p, l, v).unwrap();
            }
            if round % 3 == 0 {
                dir.publish_grace();
            }
            for &(p, l, _) in &flaps {
                rib.remove(p, l).unwrap();
            }
            dir.publish_grace();
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().expect("reader panicked") > 0);
        }
        // The final state is exactly the base table.
        for &(a, old, _) in &answers {
            assert_eq!(found(rib.lookup(a)), old);
        }
    }

    /// Prefixes drawn so that they nest and overlap: a few bases, all lengths.
    fn prefix() -> impl Strategy<Value = (u32, u8)> {
        (
            prop_oneof![
                Just(0x0a00_0000u32),
                Just(0x0a01_0200u32),
                Just(0xc0a8_0000u32),
                any::<u32>()
            ],
            0u8..=32,
            any::<u32>(),
        )
            .prop_map(|(base, len, noise)| {
                // Perturb only the bits below 8 + a random amount, so prefixes share ancestry.
                let keep = (noise >> 27) as u8;
                (base ^ (noise & !mask(keep.min(32))), len)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn agrees_with_linear_scan_through_adds_and_deletes(
            ops in proptest::collection::vec((prefix(), any::<bool>(), 0u32..1000), 1..80),
            probes in proptest::collection::vec(any::<u32>(), 32),
        ) {
            let mut rib = Rib::new().unwrap();
            let mut oracle: BTreeMap<(u8, u32), u32> = BTreeMap::new();
            for (i, &((p, l), add, v)) in ops.iter().enumerate() {
                let key = (l, p & mask(l));
                if add {
                    prop_assert_eq!(rib.insert(p, l, v).unwrap(), oracle.insert(key, v));
                } else {
                    prop_assert_eq!(rib.remove(p, l).unwrap(), oracle.remove(&key));
                }
                if i % 8 == 0 {
                    rib.dir().publish_grace();
                }
                // Probe at the changed prefix, its edges, and at random.
                let edge = p | !mask(l);
                for a in probes.iter().copied().chain([p, edge, p & mask(l), edge.wrapping_add(1)]) {
                    prop_assert_eq!(found(rib.lookup(a)), linear(&oracle, a), "addr {:#x}", a);
                }
            }
            // Every prefix still answers for its own first and last address, also in a batch.
            let addrs: Vec<u32> = oracle.keys().flat_map(|&(l, p)| [p, p | !mask(l)]).collect();
            let mut out = vec![0; addrs.len()];
            rib.dir().lookup_batch(&addrs, &mut out);
            for (a, o) in addrs.iter().zip(&out) {
                prop_assert_eq!(found(*o), linear(&oracle, *a));
            }
            // Deleting everything empties the structure.
            let keys: Vec<_> = oracle.keys().copied().collect();
            for (l, p) in keys {
                rib.remove(p, l).unwrap();
            }
            prop_assert_eq!(found(rib.lookup(probes[0])), None);
            rib.dir().publish_grace();
            rib.dir().publish_grace();
            prop_assert_eq!(rib.dir().chunks_in_use(), 0);
        }

        #[test]
        fn build_agrees_with_incremental(
            routes in proptest::collection::vec((prefix(), 0u32..1000), 0..64),
            probes in proptest::collection::vec(any::<u32>(), 64),
        ) {
            let built = Rib::build(routes.iter().map(|&((p, l), v)| (p, l, v))).unwrap();
            let mut oracle: BTreeMap<(u8, u32), u32> = BTreeMap::new();
            for &((p, l), v) in &routes {
                oracle.insert((l, p & mask(l)), v);
            }
            for a in probes.iter().copied().chain(routes.iter().map(|r| r.0.0)) {
                prop_assert_eq!(found(built.lookup(a)), linear(&oracle, a));
            }
        }
    }
}

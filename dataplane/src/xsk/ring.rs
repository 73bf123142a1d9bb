//! Single-producer/single-consumer ring cursors shared with the kernel.
//!
//! Follows the protocol of `net/xdp/xsk_queue.h` (kernel side) and libxdp's `xsk.h` (user side):
//! free-running `u32` producer and consumer indices in shared memory, a power-of-two descriptor
//! array indexed by `index & mask`, and a private cached copy of the peer's index so most batches
//! touch no shared cache line but the one being published.
//!
//! ```text
//!            shared memory (mmap of the kernel's ring, or a HeapRing in tests)
//!   ┌──────────────┬──────────────┬───────┬───────────────────────────────────┐
//!   │ producer u32 │ consumer u32 │ flags │ desc[0] desc[1] ... desc[size-1]  │
//!   └──────────────┴──────────────┴───────┴───────────────────────────────────┘
//!        ▲ Release by producer        ▲ Release by consumer
//!        │ Acquire by consumer        │ Acquire by producer
//!
//!   Producer (fill, tx): cached_cons = consumer + size; free = cached_cons - cached_prod
//!   Consumer (rx, comp): avail = cached_prod - cached_cons
//! ```
//!
//! # Memory ordering (the kernel's comment in `xsk_queue.h`, labels A–D)
//!
//! ```text
//!   producer                          consumer
//!   if (LOAD ->consumer) {  (A)       LOAD.acq ->producer   (C)
//!      STORE $data                    LOAD $data
//!      STORE.rel ->producer (B)       STORE.rel ->consumer  (D)
//!   }
//! ```
//!
//! - (B)/(C): the producer publishes its index with `Release` after writing the descriptors; the
//!   consumer loads it with `Acquire` before reading them, so it never sees a stale descriptor.
//!   For RX this also orders the packet bytes the kernel copied into the chunk.
//! - (D)/(A): the consumer publishes its index with `Release` after it has read the descriptors;
//!   the producer loads it with `Acquire` before overwriting those slots, so it never overwrites a
//!   descriptor the peer is still reading. (The kernel relies on a control dependency for (A);
//!   Rust has no such notion, so we use `Acquire`, which costs nothing extra on x86.)
//! - Indices are free-running and compared with wrapping arithmetic, so wrap-around at `u32::MAX`
//!   is ordinary (the property test starts near it).
//!
//! # The need_wakeup race
//!
//! With `XDP_USE_NEED_WAKEUP` a driver that runs out of work sets `XDP_RING_NEED_WAKEUP` in the
//! ring flags and sleeps until a syscall wakes it. User space publishes its producer index
//! (a store) and then reads the flag (a load). Without a barrier between the two, the CPU may
//! perform the load before the store is visible (store→load reordering, allowed even on x86): we
//! could read "no wakeup needed" while the driver, having just set the flag, reads our old
//! producer index and goes to sleep with work pending. [`Producer::needs_wakeup`] therefore issues
//! a `SeqCst` fence before loading the flag; the driver side sets the flag before its last look at
//! the ring. The flag itself is read `Relaxed`: it is a hint, and a spurious wakeup costs one
//! syscall. In copy mode the kernel leaves the TX flag set for good, so every TX batch is kicked.

use std::cell::UnsafeCell;
use std::fmt;
use std::io;
use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering, fence};

use crossbeam_utils::CachePadded;

use super::mmap::Mmap;
use super::sys::{XDP_RING_NEED_WAKEUP, XdpDesc, XdpRingOffset};

mod sealed {
    pub trait Sealed {}
    impl Sealed for u64 {}
    impl Sealed for super::XdpDesc {}
}

/// A ring entry type: `u64` (fill, completion) or [`XdpDesc`] (RX, TX).
///
/// Sealed: only plain-old-data types for which every bit pattern is a valid value, so reading an
/// entry the kernel wrote can never produce an invalid Rust value.
pub trait RingEntry: sealed::Sealed + Copy + Default + Send + 'static {}
impl RingEntry for u64 {}
impl RingEntry for XdpDesc {}

/// Raw view of one ring: pointers to the shared indices, flags and entries.
struct RingPtrs<D> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    desc: NonNull<D>,
    size: u32,
    mask: u32,
}

impl<D> RingPtrs<D> {
    fn producer(&self) -> &AtomicU32 {
        // SAFETY: `producer` points at a 4-byte-aligned `u32` inside memory owned by the cursor
        // that holds these pointers (checked in `from_mmap`/`HeapRing::split`), alive as long as
        // the cursor. The peer accesses it only atomically (kernel `smp_load_acquire` /
        // `smp_store_release`, or our own atomics for a heap ring).
        unsafe { self.producer.as_ref() }
    }
    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }
    fn flags(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`; the kernel writes the flags with plain word stores, which are
        // single-copy atomic for an aligned `u32`.
        unsafe { self.flags.as_ref() }
    }
    /// Pointer to the entry for free-running index `idx`.
    fn slot(&self, idx: u32) -> *mut D {
        // SAFETY: `idx & mask < size` and the entry array holds `size` entries of `D` (checked at
        // construction), so the offset stays inside the array.
        unsafe { self.desc.as_ptr().add((idx & self.mask) as usize) }
    }
}

/// What keeps a ring's memory alive.
enum RingMemory<D> {
    /// A ring the kernel allocated, mapped from the socket.
    Kernel(#[allow(dead_code, reason = "held only to keep the mapping alive")] Mmap),
    /// A ring in our own heap, for tests and the simulated kernel.
    Heap(#[allow(dead_code, reason = "held only to keep the ring alive")] Arc<HeapRing<D>>),
}

/// Builds the raw view of a ring inside a kernel mapping, checking every offset the kernel gave.
fn ptrs_in_mmap<D>(mem: &Mmap, off: &XdpRingOffset, size: u32) -> io::Result<RingPtrs<D>> {
    if !size.is_power_of_two() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("ring size {size} is not a power of two"),
        ));
    }
    let base = mem.as_ptr();
    let len = mem.len() as u64;
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("kernel ring offsets put {what} outside the {len}-byte ring mapping: {off:?}"),
        )
    };
    let word = |o: u64, what: &str| -> io::Result<NonNull<AtomicU32>> {
        if o.checked_add(4).is_none_or(|end| end > len) || !o.is_multiple_of(4) {
            return Err(bad(what));
        }
        // SAFETY: `o + 4 <= len`, so the pointer stays inside the mapping; it is 4-aligned because
        // the mapping is page aligned and `o % 4 == 0`.
        let p = unsafe { base.add(o as usize) }.cast::<AtomicU32>();
        NonNull::new(p).ok_or_else(|| bad(what))
    };
    let producer = word(off.producer, "the producer index")?;
    let consumer = word(off.consumer, "the consumer index")?;
    let flags = word(off.flags, "the flags")?;
    let array_len = u64::from(size) * size_of::<D>() as u64;
    if off.desc.checked_add(array_len).is_none_or(|end| end > len)
        || !off.desc.is_multiple_of(align_of::<D>() as u64)
    {
        return Err(bad("the descriptor array"));
    }
    // SAFETY: the array `[desc, desc + size * size_of::<D>())` lies inside the mapping (checked
    // just above) and is aligned for `D`.
    let desc = unsafe { base.add(off.desc as usize) }.cast::<D>();
    let desc = NonNull::new(desc).ok_or_else(|| bad("the descriptor array"))?;
    Ok(RingPtrs {
        producer,
        consumer,
        flags,
        desc,
        size,
        mask: size - 1,
    })
}

/// Mapping size needed for a ring of `size` entries of `D` at these offsets.
pub(crate) fn ring_mmap_len<D>(off: &XdpRingOffset, size: u32) -> usize {
    off.desc as usize + size as usize * size_of::<D>()
}

/// The producing end of a ring: user space fills the fill and TX rings.
pub(crate) struct Producer<D: RingEntry> {
    ring: RingPtrs<D>,
    /// Our next index to write; equal to the shared producer index after every `submit`.
    cached_prod: u32,
    /// The last consumer index we loaded, plus `size`: `cached_cons - cached_prod` is the number of
    /// slots known to be free without touching the shared cache line.
    cached_cons: u32,
    _mem: RingMemory<D>,
}

/// The consuming end of a ring: user space drains the RX and completion rings.
pub(crate) struct Consumer<D: RingEntry> {
    ring: RingPtrs<D>,
    /// The last producer index we loaded: entries up to it are readable.
    cached_prod: u32,
    /// Our next index to read; equal to the shared consumer index after every `release`.
    cached_cons: u32,
    _mem: RingMemory<D>,
}

// SAFETY: a cursor owns its ring memory (the mapping or an `Arc` of the heap ring) and is the only
// user-space party on its side of the ring: the kernel, or the one opposite cursor of a heap
// ring, is the only other. Moving it to another thread moves that role with it; every access to
// shared indices is atomic, and entries are only touched in the slots the protocol gives us.
unsafe impl<D: RingEntry> Send for Producer<D> {}
// SAFETY: as for `Producer`.
unsafe impl<D: RingEntry> Send for Consumer<D> {}

impl<D: RingEntry> Producer<D> {
    /// The producing end of a kernel ring mapped in `mem`.
    ///
    /// The caller must pass the mapping of a ring it produces to (fill or TX) and create at most
    /// one `Producer` per ring: two producers would write the same slots.
    pub(crate) fn from_mmap(mem: Mmap, off: &XdpRingOffset, size: u32) -> io::Result<Self> {
        let ring = ptrs_in_mmap::<D>(&mem, off, size)?;
        Ok(Self::new(ring, RingMemory::Kernel(mem)))
    }

    fn new(ring: RingPtrs<D>, mem: RingMemory<D>) -> Self {
        // Initial state as libxdp's `xsk_ring_prod` setup: our producer is the shared one, and the
        // consumer is read once. Relaxed: no entries are exchanged before the first refresh.
        let cached_prod = ring.producer().load(Ordering::Relaxed);
        let cached_cons = ring
            .consumer()
            .load(Ordering::Relaxed)
            .wrapping_add(ring.size);
        Producer {
            ring,
            cached_prod,
            cached_cons,
            _mem: mem,
        }
    }

    /// Number of entries the ring holds.
    pub(crate) fn size(&self) -> u32 {
        self.ring.size
    }

    /// Number of free slots, at least `want` if the ring has them.
    ///
    /// Uses the cached consumer index while it shows `want` free slots, and only then reloads the
    /// shared index (one cache-line transfer per batch at most).
    #[inline]
    pub(crate) fn free(&mut self, want: u32) -> u32 {
        let free = self.cached_cons.wrapping_sub(self.cached_prod);
        if free >= want {
            return free.min(self.ring.size);
        }
        // Acquire pairs with the consumer's Release store of its index (D): the peer has finished
        // reading every slot up to that index before we overwrite any of them.
        self.cached_cons = self
            .ring
            .consumer()
            .load(Ordering::Acquire)
            .wrapping_add(self.ring.size);
        // `min`: defence in depth against a peer index that is ahead of ours; a correct peer never
        // makes more than `size` slots free.
        self.cached_cons
            .wrapping_sub(self.cached_prod)
            .min(self.ring.size)
    }

    /// Writes entry `i` of the batch being produced (slot `cached_prod + i`).
    ///
    /// `i` must be below the last [`free`](Self::free) result; the slot is then ours until
    /// [`submit`](Self::submit) publishes it.
    #[inline]
    pub(crate) fn write(&mut self, i: u32, entry: D) {
        debug_assert!(
            i < self.cached_cons.wrapping_sub(self.cached_prod),
            "slot {i} not reserved"
        );
        let slot = self.ring.slot(self.cached_prod.wrapping_add(i));
        // SAFETY: `slot` is inside the entry array (masked index). It lies in the free part of the
        // ring, [cached_prod, consumer + size), which the peer does not read until we publish it
        // with `submit`; and `&mut self` makes us the only writer on this side.
        unsafe { slot.write(entry) };
    }

    /// Publishes `n` written entries to the peer.
    #[inline]
    pub(crate) fn submit(&mut self, n: u32) {
        assert!(
            n <= self.cached_cons.wrapping_sub(self.cached_prod),
            "submit beyond reserved slots"
        );
        self.cached_prod = self.cached_prod.wrapping_add(n);
        // Release (B): the entries written above become visible to the consumer no later than the
        // new index, which it loads with Acquire (C).
        self.ring
            .producer()
            .store(self.cached_prod, Ordering::Release);
    }

    /// Whether the peer asked to be woken (`XDP_RING_NEED_WAKEUP`) to process this ring.
    ///
    /// Call after [`submit`](Self::submit); see the module doc for why this takes a full fence.
    #[inline]
    pub(crate) fn needs_wakeup(&self) -> bool {
        // SeqCst fence: orders our earlier producer store before the flag load (store→load), the
        // user-space half of the need_wakeup handshake.
        fence(Ordering::SeqCst);
        self.ring.flags().load(Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0
    }

    /// Entries published and not yet consumed by the peer (shared indices; for tests and stats).
    pub(crate) fn occupancy(&self) -> u32 {
        let cons = self.ring.consumer().load(Ordering::Acquire);
        self.ring
            .producer()
            .load(Ordering::Acquire)
            .wrapping_sub(cons)
    }

    /// Copies of the entries published and not yet consumed, oldest first (tests only: the
    /// peer may be reading them, which is fine for a reader).
    #[cfg(test)]
    pub(crate) fn published(&self) -> Vec<D> {
        let cons = self.ring.consumer().load(Ordering::Acquire);
        let n = self.cached_prod.wrapping_sub(cons).min(self.ring.size);
        // SAFETY: slots in [consumer, cached_prod) hold entries we wrote; nobody writes them until
        // the consumer releases them, and we only read.
        (0..n)
            .map(|i| unsafe { self.ring.slot(cons.wrapping_add(i)).read() })
            .collect()
    }
}

impl<D: RingEntry> Consumer<D> {
    /// The consuming end of a kernel ring mapped in `mem`.
    ///
    /// The caller must pass the mapping of a ring it consumes (RX or completion) and create at
    /// most one `Consumer` per ring.
    pub(crate) fn from_mmap(mem: Mmap, off: &XdpRingOffset, size: u32) -> io::Result<Self> {
        let ring = ptrs_in_mmap::<D>(&mem, off, size)?;
        Ok(Self::new(ring, RingMemory::Kernel(mem)))
    }

    fn new(ring: RingPtrs<D>, mem: RingMemory<D>) -> Self {
        let cached_prod = ring.producer().load(Ordering::Relaxed);
        let cached_cons = ring.consumer().load(Ordering::Relaxed);
        Consumer {
            ring,
            cached_prod,
            cached_cons,
            _mem: mem,
        }
    }

    /// Number of entries the ring holds.
    pub(crate) fn size(&self) -> u32 {
        self.ring.size
    }

    /// Number of entries ready to read, at least `want` if the peer has produced them.
    #[inline]
    pub(crate) fn available(&mut self, want: u32) -> u32 {
        let avail = self.cached_prod.wrapping_sub(self.cached_cons);
        if avail >= want {
            return avail.min(self.ring.size);
        }
        // Acquire (C) pairs with the producer's Release store (B): the entries, and for RX the
        // packet bytes written into the chunks, are visible before we read them.
        self.cached_prod = self.ring.producer().load(Ordering::Acquire);
        // `min`: defence in depth against a peer index more than a ring ahead of ours, which a
        // correct peer never publishes; reading past `size` would return stale entries twice.
        self.cached_prod
            .wrapping_sub(self.cached_cons)
            .min(self.ring.size)
    }

    /// Reads entry `i` of the batch being consumed (slot `cached_cons + i`); `i` must be below
    /// the last [`available`](Self::available) result.
    #[inline]
    pub(crate) fn read(&self, i: u32) -> D {
        debug_assert!(
            i < self.cached_prod.wrapping_sub(self.cached_cons),
            "slot {i} not available"
        );
        let slot = self.ring.slot(self.cached_cons.wrapping_add(i));
        // SAFETY: `slot` is inside the entry array. It lies in [consumer, producer), which the
        // peer published with Release and we loaded with Acquire, and which it will not overwrite
        // before we `release` it. Every bit pattern is a valid `D` (`RingEntry` is sealed to POD).
        unsafe { slot.read() }
    }

    /// Hands `n` read entries back to the peer.
    #[inline]
    pub(crate) fn release(&mut self, n: u32) {
        assert!(
            n <= self.cached_prod.wrapping_sub(self.cached_cons),
            "release beyond available"
        );
        self.cached_cons = self.cached_cons.wrapping_add(n);
        // Release (D): our reads of the released entries happen before the producer, loading this
        // index with Acquire (A), overwrites them.
        self.ring
            .consumer()
            .store(self.cached_cons, Ordering::Release);
    }

    /// Entries published by the peer and not yet released (shared indices; for tests and stats).
    pub(crate) fn occupancy(&self) -> u32 {
        let cons = self.ring.consumer().load(Ordering::Acquire);
        self.ring
            .producer()
            .load(Ordering::Acquire)
            .wrapping_sub(cons)
    }

    /// Copies of the entries published by the peer and not yet released, oldest first (tests
    /// only).
    #[cfg(test)]
    pub(crate) fn published(&self) -> Vec<D> {
        let prod = self.ring.producer().load(Ordering::Acquire);
        let n = prod.wrapping_sub(self.cached_cons).min(self.ring.size);
        // SAFETY: slots in [cached_cons, producer) were published with Release and loaded with
        // Acquire; the peer does not overwrite them until we release them.
        (0..n)
            .map(|i| unsafe { self.ring.slot(self.cached_cons.wrapping_add(i)).read() })
            .collect()
    }

    /// Sets or clears a ring flag, playing the kernel (which owns the flags) in simulations.
    pub(crate) fn set_flag(&self, flag: u32, on: bool) {
        if on {
            self.ring.flags().fetch_or(flag, Ordering::SeqCst);
        } else {
            self.ring.flags().fetch_and(!flag, Ordering::SeqCst);
        }
    }
}

/// A ring in our own memory with the kernel's layout (indices on separate cache lines), so both
/// ends can be played in-process: the ring tests and the simulated kernel use it.
pub(crate) struct HeapRing<D> {
    producer: CachePadded<AtomicU32>,
    consumer: CachePadded<AtomicU32>,
    flags: CachePadded<AtomicU32>,
    entries: Box<[UnsafeCell<D>]>,
}

// SAFETY: the indices and flags are atomics. Entries are `UnsafeCell`s accessed only through the
// one `Producer` and the one `Consumer` that `split` creates, each in the slots the ring protocol
// assigns to it, with the Acquire/Release pairs above ordering every hand-over. `D: Send` because
// entries travel from one end (thread) to the other.
unsafe impl<D: RingEntry> Sync for HeapRing<D> {}
// SAFETY: as above; the ring owns plain `D` values.
unsafe impl<D: RingEntry> Send for HeapRing<D> {}

impl<D: RingEntry> HeapRing<D> {
    /// Creates a ring of `size` entries with both indices at `start`, and its two ends.
    ///
    /// # Panics
    ///
    /// When `size` is not a power of two (a test setup error).
    pub(crate) fn split(size: u32, start: u32) -> (Producer<D>, Consumer<D>) {
        assert!(
            size.is_power_of_two(),
            "ring size {size} is not a power of two"
        );
        let ring = Arc::new(HeapRing {
            producer: CachePadded::new(AtomicU32::new(start)),
            consumer: CachePadded::new(AtomicU32::new(start)),
            flags: CachePadded::new(AtomicU32::new(0)),
            entries: (0..size).map(|_| UnsafeCell::new(D::default())).collect(),
        });
        let ptrs = || RingPtrs {
            producer: NonNull::from(&*ring.producer),
            consumer: NonNull::from(&*ring.consumer),
            flags: NonNull::from(&*ring.flags),
            // `UnsafeCell<D>` has the layout of `D`; writing through this pointer is allowed
            // because the cells grant interior mutability.
            desc: NonNull::new(UnsafeCell::raw_get(ring.entries.as_ptr())).expect("non-null"),
            size,
            mask: size - 1,
        };
        let producer = Producer::new(ptrs(), RingMemory::Heap(Arc::clone(&ring)));
        let consumer = Consumer::new(ptrs(), RingMemory::Heap(ring));
        (producer, consumer)
    }
}

impl<D: RingEntry> fmt::Debug for Producer<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("size", &self.ring.size)
            .field("cached_prod", &self.cached_prod)
            .field("cached_cons", &self.cached_cons)
            .finish()
    }
}

impl<D: RingEntry> fmt::Debug for Consumer<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("size", &self.ring.size)
            .field("cached_prod", &self.cached_prod)
            .field("cached_cons", &self.cached_cons)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    /// One step of a ring scenario: the producer pushes up to `n`, or the consumer pops up to `n`.
    #[derive(Debug, Clone)]
    enum Op {
        Produce(u32),
        Consume(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u32..40).prop_map(Op::Produce),
            (0u32..40).prop_map(Op::Consume)
        ]
    }

    /// Runs `ops` against a ring and a `VecDeque` FIFO oracle, checking every step.
    fn run(size: u32, start: u32, ops: &[Op]) {
        let (mut prod, mut cons) = HeapRing::<u64>::split(size, start);
        let mut fifo = VecDeque::new();
        let mut next = 0u64;
        for op in ops {
            match *op {
                Op::Produce(n) => {
                    let free = prod.free(n);
                    let truly_free = size - fifo.len() as u32;
                    // Never more than really free; at least what was asked for when it exists.
                    assert!(free <= truly_free, "free {free} > {truly_free}");
                    assert!(free >= n.min(truly_free), "free {free} < wanted {n}");
                    let k = n.min(free);
                    for i in 0..k {
                        prod.write(i, next);
                        fifo.push_back(next);
                        next += 1;
                    }
                    prod.submit(k);
                }
                Op::Consume(n) => {
                    let avail = cons.available(n);
                    let queued = fifo.len() as u32;
                    assert!(avail <= queued, "available {avail} > {queued}");
                    assert!(avail >= n.min(queued), "available {avail} < wanted {n}");
                    let k = n.min(avail);
                    for i in 0..k {
                        assert_eq!(Some(cons.read(i)), fifo.pop_front(), "FIFO order");
                    }
                    cons.release(k);
                }
            }
            assert_eq!(prod.occupancy(), fifo.len() as u32);
            assert_eq!(cons.occupancy(), fifo.len() as u32);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The cursor pair behaves as a bounded FIFO, including across index wrap-around.
        #[test]
        fn ring_is_a_bounded_fifo(
            size_log2 in 0u32..7,
            start in prop_oneof![Just(0u32), (u32::MAX - 200)..=u32::MAX, any::<u32>()],
            ops in proptest::collection::vec(op(), 0..300),
        ) {
            run(1 << size_log2, start, &ops);
        }
    }

    #[test]
    fn wraps_exactly_at_u32_max() {
        let ops: Vec<Op> = (0..50)
            .flat_map(|_| [Op::Produce(3), Op::Consume(2)])
            .collect();
        run(4, u32::MAX - 2, &ops);
    }

    #[test]
    fn cached_index_is_refreshed_only_when_short() {
        let (mut prod, mut cons) = HeapRing::<u64>::split(8, 0);
        assert_eq!(prod.free(8), 8);
        for i in 0..8 {
            prod.write(i, u64::from(i));
        }
        prod.submit(8);
        assert_eq!(prod.free(1), 0, "full ring");
        assert_eq!(cons.available(3), 8);
        cons.release(3);
        // The producer still believes the ring is full until it asks for more than it knows.
        assert_eq!(prod.free(0), 0);
        assert_eq!(prod.free(1), 3);
    }

    #[test]
    fn need_wakeup_flag_round_trip() {
        let (prod, cons) = HeapRing::<XdpDesc>::split(2, 0);
        assert!(!prod.needs_wakeup());
        cons.set_flag(XDP_RING_NEED_WAKEUP, true);
        assert!(prod.needs_wakeup());
        cons.set_flag(XDP_RING_NEED_WAKEUP, false);
        assert!(!prod.needs_wakeup());
    }

    #[test]
    fn entries_cross_threads_in_order() {
        const N: u64 = 200_000;
        let (mut prod, mut cons) = HeapRing::<u64>::split(64, u32::MAX - 1000);
        let t = std::thread::spawn(move || {
            let mut next = 0;
            while next < N {
                let k = prod.free(16).min(16).min((N - next) as u32);
                for i in 0..k {
                    prod.write(i, next + u64::from(i));
                }
                prod.submit(k);
                next += u64::from(k);
            }
        });
        let mut expect = 0;
        while expect < N {
            let k = cons.available(32).min(32);
            for i in 0..k {
                assert_eq!(cons.read(i), expect);
                expect += 1;
            }
            cons.release(k);
        }
        t.join().unwrap();
    }

    #[test]
    fn kernel_offsets_outside_the_mapping_are_rejected() {
        let mem = Mmap::anonymous(4096, false).unwrap();
        let ok = XdpRingOffset {
            producer: 0,
            consumer: 64,
            desc: 192,
            flags: 128,
        };
        assert!(ptrs_in_mmap::<u64>(&mem, &ok, 16).is_ok());
        let too_big = ptrs_in_mmap::<u64>(&mem, &ok, 1024).err().unwrap();
        assert!(
            too_big.to_string().contains("descriptor array"),
            "{too_big}"
        );
        let misaligned = XdpRingOffset { producer: 2, ..ok };
        assert!(ptrs_in_mmap::<u64>(&mem, &misaligned, 16).is_err());
        let past_end = XdpRingOffset { flags: 4094, ..ok };
        assert!(ptrs_in_mmap::<u64>(&mem, &past_end, 16).is_err());
        assert!(
            ptrs_in_mmap::<u64>(&mem, &ok, 12).is_err(),
            "size not a power of two"
        );
    }
}

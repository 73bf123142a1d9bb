//! Per-worker counters: written by exactly one worker, summed when someone asks (DPDK l3fwd's
//! model; VPP's per-thread simple counters).
//!
//! A worker counts into plain local integers while it processes a batch and publishes them once
//! per loop iteration into its own cache-padded [`WorkerStats`]. Each published counter is an
//! `AtomicU64` written with a relaxed load + store (one plain `mov` on x86-64, no locked
//! instruction, no cache line shared with another writer); readers load with relaxed ordering
//! and may see a worker's counters a few nanoseconds apart from each other, never torn.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use crate::drop::{DropReason, Event};

/// A counter with a single writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning worker calls this, so load + store is not a lost update.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Sets a gauge. Only the owning worker calls this.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Per-port counters of one worker.
#[derive(Debug)]
pub struct PortCounters {
    /// Frames received from this port's AF_XDP socket.
    pub rx_packets: Counter,
    /// Bytes received (Ethernet frame length).
    pub rx_bytes: Counter,
    /// Frames placed on this port's TX ring.
    pub tx_packets: Counter,
    /// Bytes placed on the TX ring.
    pub tx_bytes: Counter,
    /// Drops by reason, attributed to the ingress interface (TX ring full and neighbour
    /// failures: to the egress interface).
    pub drops: [Counter; DropReason::COUNT],
}

impl Default for PortCounters {
    fn default() -> Self {
        PortCounters {
            rx_packets: Counter::default(),
            rx_bytes: Counter::default(),
            tx_packets: Counter::default(),
            tx_bytes: Counter::default(),
            drops: std::array::from_fn(|_| Counter::default()),
        }
    }
}

/// One worker's published counters.
#[derive(Debug)]
pub struct WorkerStats {
    /// Packets forwarded (placed on an egress TX ring after the forwarding pipeline).
    pub forwarded: Counter,
    /// Drops by reason, index = `DropReason as usize`.
    pub drops: [Counter; DropReason::COUNT],
    /// Events (ICMP errors sent or held back, fragmentation), index = `Event as usize`.
    pub events: [Counter; Event::COUNT],
    /// Per port, index = port id.
    pub ports: Box<[PortCounters]>,
    /// RX batches that carried at least one packet.
    pub batches: Counter,
    /// Loop iterations.
    pub loops: Counter,
    /// Nanoseconds spent in iterations that did work.
    pub busy_ns: Counter,
    /// Nanoseconds since the worker started, updated each iteration.
    pub run_ns: Counter,
    /// Packets currently parked awaiting neighbour resolution (a gauge).
    pub pending: Counter,
    /// TX kicks (`sendto`) issued.
    pub tx_kicks: Counter,
    /// Loop gaps of a millisecond or more not spent asleep on purpose (the CPU was taken away).
    pub stalls: Counter,
    /// Nanoseconds in those gaps.
    pub stall_ns: Counter,
    /// The longest gap since the worker started, in nanoseconds (a gauge).
    pub longest_stall_ns: Counter,
}

impl WorkerStats {
    /// Zeroed counters for a worker driving `ports` ports, on their own cache lines.
    pub fn new(ports: usize) -> CachePadded<WorkerStats> {
        CachePadded::new(WorkerStats {
            forwarded: Counter::default(),
            drops: std::array::from_fn(|_| Counter::default()),
            events: std::array::from_fn(|_| Counter::default()),
            ports: (0..ports).map(|_| PortCounters::default()).collect(),
            batches: Counter::default(),
            loops: Counter::default(),
            busy_ns: Counter::default(),
            run_ns: Counter::default(),
            pending: Counter::default(),
            tx_kicks: Counter::default(),
            stalls: Counter::default(),
            stall_ns: Counter::default(),
            longest_stall_ns: Counter::default(),
        })
    }

    /// Records a stall of `gap` (rare: straight into the published counters).
    #[cold]
    pub fn stall(&self, gap: std::time::Duration) {
        let ns = u64::try_from(gap.as_nanos()).unwrap_or(u64::MAX);
        self.stalls.add(1);
        self.stall_ns.add(ns);
        if ns > self.longest_stall_ns.get() {
            self.longest_stall_ns.set(ns);
        }
    }
}

/// Counts a worker accumulates during one loop iteration, published by [`LocalStats::publish`].
#[derive(Debug)]
pub struct LocalStats {
    /// Forwarded packets.
    pub forwarded: u64,
    /// Drops by reason.
    pub drops: [u64; DropReason::COUNT],
    /// Bit `r` set when `drops[r]` is non-zero, so publishing skips untouched reasons.
    drops_dirty: u64,
    /// Per port: rx packets, rx bytes, tx packets, tx bytes.
    pub ports: Box<[[u64; 4]]>,
    /// Per port drops by reason, and which ports have any.
    port_drops: Box<[[u64; DropReason::COUNT]]>,
    port_drops_dirty: u64,
    /// Events.
    pub events: [u64; Event::COUNT],
    /// Batches with packets.
    pub batches: u64,
    /// TX kicks.
    pub tx_kicks: u64,
}

const _: () = assert!(DropReason::COUNT <= 64, "drops_dirty is a u64 bitmask");

impl LocalStats {
    /// Zeroed local counts for `ports` ports.
    pub fn new(ports: usize) -> Self {
        LocalStats {
            forwarded: 0,
            drops: [0; DropReason::COUNT],
            drops_dirty: 0,
            ports: vec![[0; 4]; ports].into_boxed_slice(),
            port_drops: vec![[0; DropReason::COUNT]; ports].into_boxed_slice(),
            port_drops_dirty: 0,
            events: [0; Event::COUNT],
            batches: 0,
            tx_kicks: 0,
        }
    }

    /// Counts one drop.
    #[inline]
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
        self.drops_dirty |= 1 << reason as u32;
    }

    /// Counts one drop of a packet that came in (or was to go out) on `port`.
    #[inline]
    pub fn drop_at(&mut self, port: usize, reason: DropReason) {
        self.drop(reason);
        if let Some(p) = self.port_drops.get_mut(port) {
            p[reason as usize] += 1;
            self.port_drops_dirty |= 1 << (port as u32 & 63);
        }
    }

    /// Adds events counted elsewhere (the pipeline's) and zeroes them there.
    #[inline]
    pub fn take_events(&mut self, events: &mut [u64; Event::COUNT]) {
        for (mine, theirs) in self.events.iter_mut().zip(events.iter_mut()) {
            *mine += std::mem::take(theirs);
        }
    }

    /// Adds the counts to `shared` and zeroes them.
    pub fn publish(&mut self, shared: &WorkerStats) {
        for (e, n) in self.events.iter_mut().enumerate() {
            if *n != 0 {
                shared.events[e].add(std::mem::take(n));
            }
        }
        while self.port_drops_dirty != 0 {
            let p = self.port_drops_dirty.trailing_zeros() as usize;
            self.port_drops_dirty &= self.port_drops_dirty - 1;
            if let (Some(local), Some(port)) = (self.port_drops.get_mut(p), shared.ports.get(p)) {
                for (r, n) in local.iter_mut().enumerate() {
                    if *n != 0 {
                        port.drops[r].add(std::mem::take(n));
                    }
                }
            }
        }
        if self.forwarded != 0 {
            shared.forwarded.add(self.forwarded);
            self.forwarded = 0;
        }
        while self.drops_dirty != 0 {
            let r = self.drops_dirty.trailing_zeros() as usize;
            self.drops_dirty &= self.drops_dirty - 1;
            shared.drops[r].add(self.drops[r]);
            self.drops[r] = 0;
        }
        for (local, port) in self.ports.iter_mut().zip(shared.ports.iter()) {
            if local[0] | local[2] != 0 {
                port.rx_packets.add(local[0]);
                port.rx_bytes.add(local[1]);
                port.tx_packets.add(local[2]);
                port.tx_bytes.add(local[3]);
                *local = [0; 4];
            }
        }
        if self.batches != 0 {
            shared.batches.add(self.batches);
            self.batches = 0;
        }
        if self.tx_kicks != 0 {
            shared.tx_kicks.add(self.tx_kicks);
            self.tx_kicks = 0;
        }
    }
}

/// Sums per-port counters over workers.
pub fn port_totals(workers: &[&WorkerStats], port: usize) -> [u64; 4] {
    let mut t = [0; 4];
    for w in workers {
        if let Some(p) = w.ports.get(port) {
            t[0] += p.rx_packets.get();
            t[1] += p.rx_bytes.get();
            t[2] += p.tx_packets.get();
            t[3] += p.tx_bytes.get();
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_moves_local_counts_and_resets_them() {
        let shared = WorkerStats::new(2);
        let mut local = LocalStats::new(2);
        local.drop(DropReason::TtlExpired);
        local.drop(DropReason::TtlExpired);
        local.drop(DropReason::NoRoute);
        local.forwarded = 5;
        local.ports[1] = [3, 300, 2, 200];
        local.publish(&shared);
        local.drop(DropReason::NoRoute);
        local.publish(&shared);
        assert_eq!(shared.drops[DropReason::TtlExpired as usize].get(), 2);
        assert_eq!(shared.drops[DropReason::NoRoute as usize].get(), 2);
        assert_eq!(shared.forwarded.get(), 5);
        assert_eq!(port_totals(&[&shared], 1), [3, 300, 2, 200]);
        assert_eq!(port_totals(&[&shared], 0), [0; 4]);
        assert_eq!(local.drops, [0; DropReason::COUNT]);
    }

    #[test]
    fn stalls_count_sum_and_keep_the_longest() {
        use std::time::Duration;
        let w = WorkerStats::new(1);
        w.stall(Duration::from_millis(3));
        w.stall(Duration::from_millis(7));
        w.stall(Duration::from_millis(2));
        assert_eq!(w.stalls.get(), 3);
        assert_eq!(w.stall_ns.get(), 12_000_000);
        assert_eq!(w.longest_stall_ns.get(), 7_000_000);
    }
}

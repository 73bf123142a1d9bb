//! Packets waiting for a next hop's MAC: Linux's per-neighbour `arp_queue` (`unres_qlen`).
//!
//! The kernel owns ARP. When a packet's next hop has no usable neighbour entry, the worker parks
//! the packet here and asks the kernel (through the control thread) to resolve the address, as
//! `neigh_resolve_output` → `__neigh_event_send` does. When a later FIB snapshot carries the MAC,
//! the parked packets are sent in arrival order; when the kernel reports the entry `FAILED`, or
//! nothing arrives within the resolution timeout, they are dropped under
//! [`DropReason::NeighFailed`].
//!
//! Bounds, so that an unresolvable next hop can never eat the worker's UMEM:
//! - at most `per_nexthop` packets per next hop; a new packet pushes out the oldest, as Linux's
//!   `__neigh_event_send` does, counted as [`DropReason::NeighQueueFull`];
//! - at most `total` packets across next hops, counted as [`DropReason::NeighPendingBudget`];
//! - at most `total` next hops tracked at once.
//!
//! The queue is generic over the packet type so its policy is tested without UMEM frames.
//!
//! [`DropReason::NeighFailed`]: crate::drop::DropReason::NeighFailed
//! [`DropReason::NeighQueueFull`]: crate::drop::DropReason::NeighQueueFull
//! [`DropReason::NeighPendingBudget`]: crate::drop::DropReason::NeighPendingBudget

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::drop::DropReason;
use crate::fib::{AdjState, FastMap, NextHopKey};

/// Limits of the pending queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingLimits {
    /// Packets held per next hop (Linux `unres_qlen`).
    pub per_nexthop: usize,
    /// Packets held by one worker across all next hops.
    pub total: usize,
    /// Give up on a next hop this long after its first packet was parked. Linux fails an
    /// `INCOMPLETE` entry after `mcast_solicit` (3) probes `retrans_time` (1 s) apart.
    pub timeout: Duration,
    /// Ask the kernel again at most this often per next hop.
    pub retry: Duration,
}

impl Default for PendingLimits {
    fn default() -> Self {
        PendingLimits {
            per_nexthop: 64,
            total: 1024,
            timeout: Duration::from_secs(3),
            retry: Duration::from_secs(1),
        }
    }
}

#[derive(Debug)]
struct Entry<P> {
    packets: VecDeque<P>,
    /// When the oldest still-parked packet's wait began.
    since: Instant,
    last_request: Instant,
    /// FIB generation current when the kernel was last asked; a `FAILED` state seen in this or an
    /// older snapshot may predate the request.
    asked_in: u64,
}

/// What [`Pending::park`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Parked<P> {
    /// Held; `request` says whether the kernel must be asked to resolve the next hop now.
    Held {
        /// Ask the kernel to resolve (first packet, or the retry interval passed).
        request: bool,
        /// A packet pushed out to make room (the oldest), to be dropped as `NeighQueueFull`.
        evicted: Option<P>,
    },
    /// Not held: drop it for this reason.
    Refused(P, DropReason),
}

/// One worker's packets waiting for neighbour resolution.
#[derive(Debug)]
pub struct Pending<P> {
    limits: PendingLimits,
    entries: FastMap<u64, (NextHopKey, Entry<P>)>,
    held: usize,
}

impl<P> Pending<P> {
    /// An empty queue with these limits.
    pub fn new(limits: PendingLimits) -> Self {
        Pending {
            limits,
            entries: FastMap::default(),
            held: 0,
        }
    }

    /// Changes the per-next-hop limit and the timeout (`xfwd reload`); the total budget, which
    /// sized the UMEM, stays. A queue already longer than a lowered limit is not cut: it stays
    /// as long (still within the total budget) until it drains.
    pub fn set_limits(&mut self, per_nexthop: usize, timeout: Duration) {
        self.limits.per_nexthop = per_nexthop.min(self.limits.total);
        self.limits.timeout = timeout;
    }

    /// The limits in force.
    pub fn limits(&self) -> PendingLimits {
        self.limits
    }

    /// Packets held across all next hops.
    pub fn len(&self) -> usize {
        self.held
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// Parks `pkt` for `key`; `generation` is the FIB snapshot that could not resolve it.
    pub fn park(&mut self, key: NextHopKey, pkt: P, now: Instant, generation: u64) -> Parked<P> {
        let limits = self.limits;
        if let Some((_, e)) = self.entries.get_mut(&key.packed()) {
            let evicted = if e.packets.len() >= limits.per_nexthop {
                e.packets.pop_front()
            } else if self.held >= limits.total {
                return Parked::Refused(pkt, DropReason::NeighPendingBudget);
            } else {
                self.held += 1;
                None
            };
            if e.packets.is_empty() {
                e.since = now;
            }
            e.packets.push_back(pkt);
            let request = now.duration_since(e.last_request) >= limits.retry;
            if request {
                e.last_request = now;
                e.asked_in = generation;
            }
            return Parked::Held { request, evicted };
        }
        if self.held >= limits.total || limits.per_nexthop == 0 {
            return Parked::Refused(pkt, DropReason::NeighPendingBudget);
        }
        self.held += 1;
        let entry = Entry {
            packets: VecDeque::from([pkt]),
            since: now,
            last_request: now,
            asked_in: generation,
        };
        self.entries.insert(key.packed(), (key, entry));
        Parked::Held {
            request: true,
            evicted: None,
        }
    }

    /// Settles every next hop against the current snapshot: packets whose next hop resolved go
    /// to `send(key, packet)` in arrival order; packets whose next hop failed (a `FAILED` state
    /// newer than the last request) or timed out go to `drop(packet, NeighFailed)`.
    ///
    /// `state(key)` reads the next hop's state in the snapshot of generation `generation`.
    pub fn settle(
        &mut self,
        now: Instant,
        generation: u64,
        mut state: impl FnMut(NextHopKey) -> AdjState,
        mut send: impl FnMut(NextHopKey, P),
        mut drop: impl FnMut(NextHopKey, P, DropReason),
    ) {
        let timeout = self.limits.timeout;
        let mut released = 0;
        self.entries.retain(|_, (key, e)| {
            let give_up = match state(*key) {
                AdjState::Resolved => {
                    released += e.packets.len();
                    e.packets.drain(..).for_each(|p| send(*key, p));
                    return false;
                }
                AdjState::Failed => generation > e.asked_in,
                AdjState::Incomplete => false,
            };
            if give_up || now.duration_since(e.since) >= timeout {
                released += e.packets.len();
                e.packets
                    .drain(..)
                    .for_each(|p| drop(*key, p, DropReason::NeighFailed));
                return false;
            }
            true
        });
        self.held -= released;
    }

    /// Drops everything (worker shutdown), handing each packet to `drop`.
    pub fn clear(&mut self, mut drop: impl FnMut(P)) {
        for (_, (_, mut e)) in self.entries.drain() {
            e.packets.drain(..).for_each(&mut drop);
        }
        self.held = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NextHopKey = NextHopKey {
        port: 1,
        ip: 0x0a00_0202,
    };
    const B: NextHopKey = NextHopKey {
        port: 1,
        ip: 0x0a00_0203,
    };

    #[test]
    fn set_limits_keeps_the_total_and_caps_the_per_nexthop_limit() {
        let mut q: Pending<u32> = Pending::new(limits(4, 16));
        q.set_limits(100, Duration::from_millis(500));
        assert_eq!(q.limits().per_nexthop, 16);
        assert_eq!(q.limits().total, 16);
        assert_eq!(q.limits().timeout, Duration::from_millis(500));
        q.set_limits(2, Duration::from_secs(1));
        let key = NextHopKey { port: 0, ip: 1 };
        let now = Instant::now();
        for i in 0..3 {
            let _ = q.park(key, i, now, 0);
        }
        assert_eq!(q.len(), 2, "the new limit applies to the next packets");
    }

    fn limits(per: usize, total: usize) -> PendingLimits {
        PendingLimits {
            per_nexthop: per,
            total,
            ..PendingLimits::default()
        }
    }

    #[test]
    fn first_packet_requests_then_retries_after_interval() {
        let t0 = Instant::now();
        let mut q = Pending::new(limits(4, 16));
        assert_eq!(
            q.park(A, 1, t0, 1),
            Parked::Held {
                request: true,
                evicted: None
            }
        );
        assert_eq!(
            q.park(A, 2, t0, 1),
            Parked::Held {
                request: false,
                evicted: None
            }
        );
        let later = t0 + Duration::from_millis(1500);
        assert_eq!(
            q.park(A, 3, later, 2),
            Parked::Held {
                request: true,
                evicted: None
            }
        );
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn full_queue_evicts_oldest_like_linux() {
        let t0 = Instant::now();
        let mut q = Pending::new(limits(2, 16));
        q.park(A, 1, t0, 1);
        q.park(A, 2, t0, 1);
        assert_eq!(
            q.park(A, 3, t0, 1),
            Parked::Held {
                request: false,
                evicted: Some(1)
            }
        );
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn total_budget_refuses() {
        let t0 = Instant::now();
        let mut q = Pending::new(limits(4, 2));
        q.park(A, 1, t0, 1);
        q.park(B, 2, t0, 1);
        assert_eq!(
            q.park(A, 3, t0, 1),
            Parked::Refused(3, DropReason::NeighPendingBudget)
        );
        assert_eq!(
            q.park(NextHopKey { port: 0, ip: 9 }, 4, t0, 1),
            Parked::Refused(4, DropReason::NeighPendingBudget)
        );
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn resolved_releases_in_order_failed_and_timeout_drop() {
        let t0 = Instant::now();
        let mut q = Pending::new(limits(8, 16));
        for p in [1, 2, 3] {
            q.park(A, p, t0, 5);
        }
        q.park(B, 10, t0, 5);
        let (mut sent, mut dropped) = (vec![], vec![]);
        // Same generation as the request: a FAILED state may be stale, keep waiting.
        q.settle(
            t0,
            5,
            |k| {
                if k == A {
                    AdjState::Resolved
                } else {
                    AdjState::Failed
                }
            },
            |k, p| sent.push((k, p)),
            |_, p, r| dropped.push((p, r)),
        );
        assert_eq!(sent, vec![(A, 1), (A, 2), (A, 3)]);
        assert!(dropped.is_empty());
        assert_eq!(q.len(), 1);
        // A newer snapshot still says FAILED: give up.
        q.settle(
            t0,
            6,
            |_| AdjState::Failed,
            |k, p| sent.push((k, p)),
            |_, p, r| dropped.push((p, r)),
        );
        assert_eq!(dropped, vec![(10, DropReason::NeighFailed)]);
        assert!(q.is_empty());
        // Timeout with no answer at all.
        q.park(B, 11, t0, 7);
        let late = t0 + PendingLimits::default().timeout;
        q.settle(
            late,
            7,
            |_| AdjState::Incomplete,
            |k, p| sent.push((k, p)),
            |_, p, r| dropped.push((p, r)),
        );
        assert_eq!(dropped.last(), Some(&(11, DropReason::NeighFailed)));
        assert!(q.is_empty());
    }
}

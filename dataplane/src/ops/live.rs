//! Settings that `xfwd reload` changes in running workers. Workers read them every 50 ms
//! (two relaxed loads), never per packet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::neigh::PendingLimits;

/// The live neighbour-queue knobs, shared by the control thread (writer) and the workers.
#[derive(Debug)]
pub struct LiveLimits {
    unres_qlen: AtomicU64,
    resolve_timeout_ms: AtomicU64,
}

impl LiveLimits {
    /// Starts with `limits`.
    pub fn new(limits: &PendingLimits) -> Self {
        LiveLimits {
            unres_qlen: AtomicU64::new(limits.per_nexthop as u64),
            resolve_timeout_ms: AtomicU64::new(limits.timeout.as_millis() as u64),
        }
    }

    /// Publishes new values (control thread).
    pub fn set(&self, limits: &PendingLimits) {
        self.unres_qlen
            .store(limits.per_nexthop as u64, Ordering::Relaxed);
        self.resolve_timeout_ms
            .store(limits.timeout.as_millis() as u64, Ordering::Relaxed);
    }

    /// `(unres_qlen, resolve timeout)` now.
    pub fn get(&self) -> (usize, Duration) {
        (
            self.unres_qlen.load(Ordering::Relaxed) as usize,
            Duration::from_millis(self.resolve_timeout_ms.load(Ordering::Relaxed)),
        )
    }
}

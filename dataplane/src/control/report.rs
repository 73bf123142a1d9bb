//! What `xfwd show …` prints: reports assembled from the running instance's counters, the same
//! structs serialised on the control socket and rendered for people by the CLI.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::drop::{DropReason, Event};

/// `xfwd show stats`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StatsReport {
    /// xfwd version.
    pub version: String,
    /// Seconds since `xfwd run` became ready.
    pub uptime_s: f64,
    /// Packets transmitted after forwarding, all workers.
    pub forwarded: u64,
    /// Drops by reason name, every reason listed (zeros included) so scripts can rely on keys.
    pub drops: BTreeMap<String, u64>,
    /// Events by name (ICMP errors sent or held back, fragmentation), every event listed.
    #[serde(default)]
    pub events: BTreeMap<String, u64>,
    /// Per interface xfwd drives.
    pub interfaces: Vec<InterfaceReport>,
    /// Per worker.
    pub workers: Vec<WorkerReport>,
    /// The XDP steering program's verdicts, summed over CPUs (name → count).
    pub xdp: BTreeMap<String, u64>,
    /// Forwarding table summary.
    pub fib: FibReport,
}

/// One interface in [`StatsReport`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct InterfaceReport {
    /// Interface name.
    pub name: String,
    /// Kernel interface index.
    pub ifindex: u32,
    /// Frames xfwd received on it.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames xfwd transmitted on it.
    pub tx_packets: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// How the XDP program is attached: `native` or `generic`.
    pub xdp_mode: String,
    /// Whether the AF_XDP sockets run zero-copy (else copy mode).
    pub zero_copy: bool,
    /// AF_XDP socket statistics summed over queues (`XDP_STATISTICS`).
    pub xsk: BTreeMap<String, u64>,
    /// Drops attributed to this interface (ingress; egress for TX ring full and neighbour
    /// failures), non-zero reasons only.
    #[serde(default)]
    pub drops: BTreeMap<String, u64>,
}

/// One worker in [`StatsReport`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkerReport {
    /// Worker number = the queue it owns on every interface.
    pub id: usize,
    /// CPU it is pinned to.
    pub cpu: Option<usize>,
    /// Packets it forwarded.
    pub forwarded: u64,
    /// RX batches with packets.
    pub batches: u64,
    /// Mean packets per batch.
    pub packets_per_batch: f64,
    /// Share of time spent in iterations that did work, 0..1.
    pub busy_ratio: f64,
    /// Packets parked awaiting neighbour resolution now.
    pub pending: u64,
    /// TX wake-ups (`sendto`) issued.
    pub tx_kicks: u64,
    /// Its drops, non-zero reasons only.
    #[serde(default)]
    pub drops: BTreeMap<String, u64>,
}

/// Forwarding table summary in [`StatsReport`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FibReport {
    /// Snapshot generation (increments on every table change).
    pub generation: u64,
    /// Prefixes installed (routes plus the router's own addresses).
    pub prefixes: u64,
    /// Neighbours known.
    pub neighbours: u64,
}

/// `xfwd show errors`: every drop reason with its count and description.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorsReport {
    /// One row per reason, in pipeline order.
    pub errors: Vec<ErrorRow>,
    /// One row per event (ICMP errors sent or held back, fragmentation).
    #[serde(default)]
    pub events: Vec<ErrorRow>,
}

/// One row of [`ErrorsReport`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorRow {
    /// Reason name.
    pub reason: String,
    /// Packets dropped for it.
    pub count: u64,
    /// What it means.
    pub description: String,
}

impl ErrorsReport {
    /// Builds the report from a stats report's drop counts.
    pub fn from_stats(stats: &StatsReport) -> Self {
        let errors = DropReason::ALL
            .iter()
            .map(|r| ErrorRow {
                reason: r.name().to_owned(),
                count: stats.drops.get(r.name()).copied().unwrap_or(0),
                description: r.description().to_owned(),
            })
            .collect();
        let events = Event::ALL
            .iter()
            .map(|e| ErrorRow {
                reason: e.name().to_owned(),
                count: stats.events.get(e.name()).copied().unwrap_or(0),
                description: e.description().to_owned(),
            })
            .collect();
        ErrorsReport { errors, events }
    }

    /// A table for people; `all` includes reasons that never fired.
    pub fn render(&self, all: bool) -> String {
        let rows: Vec<_> = self.errors.iter().filter(|e| all || e.count > 0).collect();
        let events: Vec<_> = self.events.iter().filter(|e| all || e.count > 0).collect();
        let w = rows
            .iter()
            .chain(events.iter())
            .map(|e| e.reason.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let mut s = if rows.is_empty() {
            "no drops\n".to_owned()
        } else {
            let mut s = format!("{:<w$}  {:>12}  description\n", "reason", "packets");
            for e in rows {
                let _ = writeln!(s, "{:<w$}  {:>12}  {}", e.reason, e.count, e.description);
            }
            s
        };
        if !events.is_empty() {
            let _ = writeln!(s, "\n{:<w$}  {:>12}  description", "event", "count");
            for e in events {
                let _ = writeln!(s, "{:<w$}  {:>12}  {}", e.reason, e.count, e.description);
            }
        }
        s
    }
}

impl StatsReport {
    /// A table for people.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "xfwd {} up {:.0}s, {} worker(s), fib generation {} ({} prefixes, {} neighbours)",
            self.version,
            self.uptime_s,
            self.workers.len(),
            self.fib.generation,
            self.fib.prefixes,
            self.fib.neighbours
        );
        let _ = writeln!(s, "forwarded {}\n", self.forwarded);
        let _ = writeln!(
            s,
            "{:<16} {:>14} {:>16} {:>14} {:>16}  xdp",
            "interface", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes"
        );
        for i in &self.interfaces {
            let _ = writeln!(
                s,
                "{:<16} {:>14} {:>16} {:>14} {:>16}  {}{}",
                i.name,
                i.rx_packets,
                i.rx_bytes,
                i.tx_packets,
                i.tx_bytes,
                i.xdp_mode,
                if i.zero_copy { ", zero-copy" } else { ", copy" }
            );
        }
        let _ = writeln!(
            s,
            "\n{:<8} {:>5} {:>14} {:>12} {:>10} {:>6} {:>8}",
            "worker", "cpu", "forwarded", "batches", "pkts/batch", "busy", "pending"
        );
        for w in &self.workers {
            let cpu = w.cpu.map_or_else(|| "-".to_owned(), |c| c.to_string());
            let _ = writeln!(
                s,
                "{:<8} {:>5} {:>14} {:>12} {:>10.1} {:>5.0}% {:>8}",
                w.id,
                cpu,
                w.forwarded,
                w.batches,
                w.packets_per_batch,
                w.busy_ratio * 100.0,
                w.pending
            );
        }
        let drops: Vec<_> = self.drops.iter().filter(|(_, n)| **n > 0).collect();
        if drops.is_empty() {
            s.push_str("\ndrops: none\n");
        } else {
            s.push_str("\ndrops:\n");
            for (name, n) in drops {
                let _ = writeln!(s, "  {name:<24} {n:>12}");
            }
        }
        let events: Vec<_> = self.events.iter().filter(|(_, n)| **n > 0).collect();
        if !events.is_empty() {
            s.push_str("\nevents:\n");
            for (name, n) in events {
                let _ = writeln!(s, "  {name:<24} {n:>12}");
            }
        }
        let xdp: Vec<_> = self.xdp.iter().filter(|(_, n)| **n > 0).collect();
        if !xdp.is_empty() {
            s.push_str("\nxdp steering:\n");
            for (name, n) in xdp {
                let _ = writeln!(s, "  {name:<24} {n:>12}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_report_lists_every_reason_and_renders_nonzero() {
        let mut stats = StatsReport::default();
        stats.drops.insert("ttl_expired".into(), 4);
        let e = ErrorsReport::from_stats(&stats);
        assert_eq!(e.errors.len(), DropReason::COUNT);
        assert_eq!(e.events.len(), Event::COUNT);
        let text = e.render(false);
        assert!(text.contains("ttl_expired"), "{text}");
        assert!(!text.contains("no_route"), "{text}");
        assert!(e.render(true).contains("no_route"));
    }
}

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
    /// Packets it received (all ports).
    #[serde(default)]
    pub packets: u64,
    /// Nanoseconds since it started.
    #[serde(default)]
    pub run_ns: u64,
    /// Nanoseconds spent in iterations that did work.
    #[serde(default)]
    pub busy_ns: u64,
    /// Busy nanoseconds per received packet.
    #[serde(default)]
    pub ns_per_packet: f64,
    /// Loop gaps of 1 ms or more not spent asleep on purpose: times its CPU was taken away
    /// (another task, a long system call, the hypervisor) while its RX ring kept filling.
    #[serde(default)]
    pub stalls: u64,
    /// Nanoseconds in those gaps.
    #[serde(default)]
    pub stall_ns: u64,
    /// The longest such gap since the worker started (not reset by `clear counters`).
    #[serde(default)]
    pub longest_stall_ns: u64,
    /// Its queue of each port, index = port.
    #[serde(default)]
    pub ports: Vec<PortCounts>,
    /// Its drops, non-zero reasons only.
    #[serde(default)]
    pub drops: BTreeMap<String, u64>,
}

/// Counters of one (port, queue): what one worker moved on one interface.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortCounts {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames transmitted.
    pub tx_packets: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// The AF_XDP socket's `XDP_STATISTICS`.
    #[serde(default)]
    pub xsk: BTreeMap<String, u64>,
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
    /// Kernel neighbour entries on xfwd's interfaces by NUD state (`reachable`, `stale`, ...).
    #[serde(default)]
    pub neighbour_states: BTreeMap<String, u64>,
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

fn sub_map(m: &mut BTreeMap<String, u64>, base: &BTreeMap<String, u64>) {
    for (k, v) in m.iter_mut() {
        *v = v.saturating_sub(base.get(k).copied().unwrap_or(0));
    }
}

impl WorkerReport {
    /// Recomputes the ratios from the counters.
    fn derive(&mut self) {
        self.packets_per_batch = ratio(self.packets, self.batches);
        self.busy_ratio = ratio(self.busy_ns, self.run_ns);
        self.ns_per_packet = ratio(self.busy_ns, self.packets);
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl StatsReport {
    /// Fills the derived per-worker figures (packets per batch, busy ratio, ns per packet).
    pub fn derive(&mut self) {
        for w in &mut self.workers {
            w.derive();
        }
    }

    /// Counters since `base` was taken (`xfwd clear counters`): every counter minus its value in
    /// `base`; gauges (pending, FIB sizes) and uptime are left as they are.
    pub fn subtract(&mut self, base: &StatsReport) {
        self.forwarded = self.forwarded.saturating_sub(base.forwarded);
        sub_map(&mut self.drops, &base.drops);
        sub_map(&mut self.events, &base.events);
        sub_map(&mut self.xdp, &base.xdp);
        for i in &mut self.interfaces {
            let Some(b) = base.interfaces.iter().find(|b| b.name == i.name) else {
                continue;
            };
            i.rx_packets = i.rx_packets.saturating_sub(b.rx_packets);
            i.rx_bytes = i.rx_bytes.saturating_sub(b.rx_bytes);
            i.tx_packets = i.tx_packets.saturating_sub(b.tx_packets);
            i.tx_bytes = i.tx_bytes.saturating_sub(b.tx_bytes);
            sub_map(&mut i.xsk, &b.xsk);
            sub_map(&mut i.drops, &b.drops);
        }
        for w in &mut self.workers {
            let Some(b) = base.workers.iter().find(|b| b.id == w.id) else {
                continue;
            };
            w.forwarded = w.forwarded.saturating_sub(b.forwarded);
            w.batches = w.batches.saturating_sub(b.batches);
            w.packets = w.packets.saturating_sub(b.packets);
            w.busy_ns = w.busy_ns.saturating_sub(b.busy_ns);
            w.run_ns = w.run_ns.saturating_sub(b.run_ns);
            w.tx_kicks = w.tx_kicks.saturating_sub(b.tx_kicks);
            w.stalls = w.stalls.saturating_sub(b.stalls);
            w.stall_ns = w.stall_ns.saturating_sub(b.stall_ns);
            sub_map(&mut w.drops, &b.drops);
            for (p, bp) in w.ports.iter_mut().zip(&b.ports) {
                p.rx_packets = p.rx_packets.saturating_sub(bp.rx_packets);
                p.rx_bytes = p.rx_bytes.saturating_sub(bp.rx_bytes);
                p.tx_packets = p.tx_packets.saturating_sub(bp.tx_packets);
                p.tx_bytes = p.tx_bytes.saturating_sub(bp.tx_bytes);
                sub_map(&mut p.xsk, &bp.xsk);
            }
            w.derive();
        }
    }

    /// `xfwd show runtime`: per worker, packets, batches, packets per batch, busy ratio and
    /// busy nanoseconds per packet.
    pub fn render_runtime(&self) -> String {
        let mut s = format!(
            "{:<7} {:>4} {:>14} {:>12} {:>10} {:>7} {:>9} {:>14} {:>8} {:>10}\n",
            "worker",
            "cpu",
            "packets",
            "batches",
            "pkts/batch",
            "busy",
            "ns/pkt",
            "forwarded",
            "stalls",
            "longest"
        );
        for w in &self.workers {
            let cpu = w.cpu.map_or_else(|| "-".to_owned(), |c| c.to_string());
            let _ = writeln!(
                s,
                "{:<7} {:>4} {:>14} {:>12} {:>10.1} {:>6.1}% {:>9.1} {:>14} {:>8} {:>7.1} ms",
                w.id,
                cpu,
                w.packets,
                w.batches,
                w.packets_per_batch,
                w.busy_ratio * 100.0,
                w.ns_per_packet,
                w.forwarded,
                w.stalls,
                w.longest_stall_ns as f64 / 1e6
            );
        }
        s
    }

    /// `xfwd show interfaces`: per interface and queue, with the AF_XDP socket statistics.
    pub fn render_interfaces(&self) -> String {
        let mut s = String::new();
        for (p, i) in self.interfaces.iter().enumerate() {
            let _ = writeln!(
                s,
                "{} (ifindex {}, port {p}): XDP {}, {}",
                i.name,
                i.ifindex,
                i.xdp_mode,
                if i.zero_copy {
                    "zero-copy"
                } else {
                    "copy mode"
                }
            );
            let _ = writeln!(
                s,
                "  {:<6} {:>14} {:>16} {:>14} {:>16}",
                "queue", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes"
            );
            for w in &self.workers {
                if let Some(c) = w.ports.get(p) {
                    let _ = writeln!(
                        s,
                        "  {:<6} {:>14} {:>16} {:>14} {:>16}",
                        w.id, c.rx_packets, c.rx_bytes, c.tx_packets, c.tx_bytes
                    );
                }
            }
            let _ = writeln!(
                s,
                "  {:<6} {:>14} {:>16} {:>14} {:>16}",
                "total", i.rx_packets, i.rx_bytes, i.tx_packets, i.tx_bytes
            );
            let xsk: Vec<String> = i.xsk.iter().map(|(k, v)| format!("{k} {v}")).collect();
            if !xsk.is_empty() {
                let _ = writeln!(s, "  af_xdp: {}", xsk.join(", "));
            }
        }
        s
    }
}

/// One route in `xfwd show routes`, as the kernel (and so xfwd's mirror) has it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RouteRow {
    /// `a.b.c.d/len`.
    pub prefix: String,
    /// Route type (`unicast`, `blackhole`, `local`, ...).
    pub kind: String,
    /// Paths as `via GATEWAY dev NAME` / `dev NAME`.
    pub paths: Vec<String>,
    /// Metric.
    pub metric: u32,
    /// `rtm_protocol` by name (`kernel`, `static`, `bgp`, ...) or number.
    pub protocol: String,
    /// Kernel table.
    pub table: u32,
}

/// `xfwd show routes`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RoutesReport {
    /// The address looked up, for `show routes ADDRESS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<String>,
    /// What xfwd's forwarding table does with that address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fib_entry: Option<String>,
    /// Matching routes of the main table, longest prefix first for a lookup.
    pub routes: Vec<RouteRow>,
}

impl RoutesReport {
    /// A table for people.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some(a) = &self.lookup {
            let _ = writeln!(
                s,
                "{a}: xfwd forwards by {}",
                self.fib_entry.as_deref().unwrap_or("(no entry: no_route)")
            );
        }
        if self.routes.is_empty() {
            s.push_str("no matching routes\n");
        }
        for r in &self.routes {
            let _ = writeln!(
                s,
                "{:<18} {:<10} {}  metric {} proto {}",
                r.prefix,
                r.kind,
                r.paths.join(", "),
                r.metric,
                r.protocol
            );
        }
        s
    }
}

/// One neighbour in `xfwd show neighbours`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NeighbourRow {
    /// IPv4 address.
    pub ip: String,
    /// Interface name.
    pub interface: String,
    /// Link-layer address, when known.
    pub mac: Option<String>,
    /// NUD state (`REACHABLE`, `STALE`, ...).
    pub state: String,
}

/// `xfwd show neighbours`: the kernel's entries on the interfaces xfwd drives.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NeighboursReport {
    /// Sorted by interface, then address.
    pub neighbours: Vec<NeighbourRow>,
}

impl NeighboursReport {
    /// A table for people.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{:<16} {:<12} {:<18} state\n",
            "address", "interface", "mac"
        );
        for n in &self.neighbours {
            let _ = writeln!(
                s,
                "{:<16} {:<12} {:<18} {}",
                n.ip,
                n.interface,
                n.mac.as_deref().unwrap_or("-"),
                n.state
            );
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
        let mut later = stats.clone();
        later.drops.insert("ttl_expired".into(), 10);
        later.events.insert("icmp_tx_time_exceeded".into(), 3);
        let mut base = stats.clone();
        base.events.insert("icmp_tx_time_exceeded".into(), 1);
        later.subtract(&base);
        assert_eq!(later.drops["ttl_expired"], 6);
        assert_eq!(later.events["icmp_tx_time_exceeded"], 2);
        assert_eq!(e.errors.len(), DropReason::COUNT);
        assert_eq!(e.events.len(), Event::COUNT);
        let text = e.render(false);
        assert!(text.contains("ttl_expired"), "{text}");
        assert!(!text.contains("no_route"), "{text}");
        assert!(e.render(true).contains("no_route"));
    }
}

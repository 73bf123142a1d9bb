//! `xfwd trace`: what the pipeline did to the next N packets (optionally only those dropped for
//! one reason), written as pcapng readable by tcpdump and Wireshark.
//!
//! ```text
//!  CLI ──Trace{count, drop_reason}──► control socket ──arm──► Tracer (shared by the workers)
//!  worker, per RX batch: one relaxed load of `armed`; when armed: copy each frame before the
//!         pipeline, then offer (before, after, outcome) ──bounded channel──► control socket
//!  CLI ◄── records ── pcapng: the frame as received (ingress interface) and, when forwarded,
//!         as sent (egress interface), each with the verdict as the packet's comment
//! ```
//!
//! Disarmed (the normal case), the cost is one relaxed atomic load per RX batch of a cache line
//! that nobody writes.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use crossbeam_channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};

use crate::drop::DropReason;
use crate::fib::PortId;
use crate::node::Outcome;

/// Records a trace can hold in flight between the workers and the control socket.
const QUEUE: usize = 4096;
/// `filter` value meaning "every packet".
const ANY: u32 = u32::MAX;

/// The switch the workers look at, and the queue they report into.
#[derive(Debug)]
pub struct Tracer {
    /// Packets still to capture; 0 = off.
    armed: AtomicU32,
    /// `DropReason as u32`, or [`ANY`].
    filter: AtomicU32,
    tx: Sender<TraceRecord>,
    rx: Receiver<TraceRecord>,
}

impl Default for Tracer {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        Tracer {
            armed: AtomicU32::new(0),
            filter: AtomicU32::new(ANY),
            tx,
            rx,
        }
    }
}

/// What happened to one traced packet.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TraceRecord {
    /// Worker (= queue) that received it.
    pub worker: usize,
    /// Port it arrived on.
    pub ingress: PortId,
    /// Nanoseconds since the Unix epoch when the pipeline finished with it.
    pub time_ns: u64,
    /// The frame as received.
    #[serde(with = "hex")]
    pub before: Vec<u8>,
    /// The frame after the pipeline (rewritten when forwarded).
    #[serde(with = "hex")]
    pub after: Vec<u8>,
    /// `forwarded`, `forwarded_stale`, `held`, or `dropped`.
    pub verdict: String,
    /// Egress port, when forwarded.
    pub egress: Option<PortId>,
    /// Drop reason name, when dropped.
    pub reason: Option<String>,
    /// The next hop being resolved, when held.
    pub next_hop: Option<String>,
}

mod hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(b.len() * 2);
        for x in b {
            out.push_str(&format!("{x:02x}"));
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(serde::de::Error::custom)
    }
}

impl Tracer {
    /// Whether a capture is running. Workers call this once per RX batch.
    #[inline]
    pub fn is_armed(&self) -> bool {
        self.armed.load(Ordering::Relaxed) != 0
    }

    /// Offers one packet; kept if it matches the filter and the budget is not spent.
    pub fn offer(&self, worker: usize, ingress: PortId, before: &[u8], after: &[u8], o: Outcome) {
        let filter = self.filter.load(Ordering::Relaxed);
        let dropped_for = match o {
            Outcome::Drop(r) | Outcome::Icmp { reason: r, .. } => Some(r as u32),
            _ => None,
        };
        if filter != ANY && dropped_for != Some(filter) {
            return;
        }
        if self
            .armed
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err()
        {
            return;
        }
        let (verdict, egress, reason, next_hop) = match o {
            Outcome::Tx(q) => ("forwarded", Some(q), None, None),
            Outcome::TxStale(k) => ("forwarded_stale", Some(k.port), None, None),
            Outcome::Resolve(k) => (
                "held",
                None,
                None,
                Some(std::net::Ipv4Addr::from_bits(k.ip).to_string()),
            ),
            Outcome::Drop(r) => ("dropped", None, Some(r.name().to_owned()), None),
            Outcome::Icmp { reason, key, .. } => (
                "dropped_icmp_error_sent",
                Some(key.port),
                Some(reason.name().to_owned()),
                Some(std::net::Ipv4Addr::from_bits(key.ip).to_string()),
            ),
            Outcome::Fragment { key, .. } => (
                "fragmented",
                Some(key.port),
                None,
                Some(std::net::Ipv4Addr::from_bits(key.ip).to_string()),
            ),
        };
        let time_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // A full queue loses the record, not the packet.
        let _ = self.tx.try_send(TraceRecord {
            worker,
            ingress,
            time_ns,
            before: before.to_vec(),
            after: after.to_vec(),
            verdict: verdict.to_owned(),
            egress,
            reason,
            next_hop,
        });
    }

    /// Captures up to `count` packets (only those dropped for `drop_reason` when given), waiting
    /// at most `timeout`; always disarms before returning.
    ///
    /// # Errors
    ///
    /// An unknown drop reason (the error lists the known ones), or a capture already running.
    pub fn capture(
        &self,
        count: u32,
        drop_reason: Option<&str>,
        timeout: Duration,
    ) -> Result<Vec<TraceRecord>> {
        let filter = match drop_reason {
            None => ANY,
            Some(name) => match DropReason::ALL.iter().find(|r| r.name() == name) {
                Some(r) => *r as u32,
                None => {
                    let names: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
                    bail!("unknown drop reason {name:?}; known: {}", names.join(", "));
                }
            },
        };
        if count == 0 {
            return Ok(Vec::new());
        }
        if self.is_armed() {
            bail!("a trace is already running");
        }
        while self.rx.try_recv().is_ok() {}
        self.filter.store(filter, Ordering::Relaxed);
        self.armed.store(count, Ordering::Relaxed);
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < count as usize {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(r) => got.push(r),
                Err(_) => break,
            }
        }
        self.armed.store(0, Ordering::Relaxed);
        self.filter.store(ANY, Ordering::Relaxed);
        Ok(got)
    }
}

/// The answer to a trace request.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TraceReport {
    /// Interface names, index = port.
    pub interfaces: Vec<String>,
    /// The packets, in capture order.
    pub records: Vec<TraceRecord>,
}

fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let len = 12 + body.len() as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&len.to_le_bytes());
}

fn option(body: &mut Vec<u8>, code: u16, value: &[u8]) {
    body.extend_from_slice(&code.to_le_bytes());
    body.extend_from_slice(&(value.len() as u16).to_le_bytes());
    body.extend_from_slice(value);
    body.resize(body.len().next_multiple_of(4), 0);
}

fn end_of_options(body: &mut Vec<u8>) {
    body.extend_from_slice(&[0; 4]);
}

impl TraceReport {
    /// The capture as pcapng (one interface description per port, nanosecond timestamps): each
    /// record as received on its ingress interface, and as sent on its egress interface when
    /// forwarded; the verdict is each packet's comment.
    pub fn to_pcapng(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Section header block.
        let mut b = Vec::new();
        b.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        option(
            &mut b,
            4,
            format!("xfwd {} trace", env!("CARGO_PKG_VERSION")).as_bytes(),
        );
        end_of_options(&mut b);
        block(&mut out, 0x0A0D_0D0A, &b);
        // Interface description blocks: Ethernet, names, nanosecond resolution.
        for name in &self.interfaces {
            let mut b = Vec::new();
            b.extend_from_slice(&1u16.to_le_bytes()); // LINKTYPE_ETHERNET
            b.extend_from_slice(&0u16.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes()); // no snap length limit
            option(&mut b, 2, name.as_bytes());
            option(&mut b, 9, &[9]);
            end_of_options(&mut b);
            block(&mut out, 1, &b);
        }
        let iface = |p: PortId| -> String {
            self.interfaces
                .get(usize::from(p))
                .cloned()
                .unwrap_or_else(|| format!("port{p}"))
        };
        for (i, r) in self.records.iter().enumerate() {
            let n = i + 1;
            let desc = |reason: &str| {
                DropReason::ALL
                    .iter()
                    .find(|d| d.name() == reason)
                    .map_or("", |d| d.description())
            };
            let verdict = match (r.verdict.as_str(), r.egress, &r.reason, &r.next_hop) {
                ("dropped_icmp_error_sent", Some(q), Some(reason), _) => format!(
                    "dropped: {reason} ({}); ICMP error to the sender via {}",
                    desc(reason),
                    iface(q)
                ),
                (_, Some(q), _, _) => format!("{} to {}", r.verdict, iface(q)),
                ("dropped", _, Some(reason), _) => {
                    format!("dropped: {reason} ({})", desc(reason))
                }
                ("held", _, _, Some(nh)) => format!("held: waiting for next hop {nh} to resolve"),
                (v, ..) => v.to_owned(),
            };
            let mut epb = |port: PortId, data: &[u8], comment: String| {
                let mut b = Vec::new();
                b.extend_from_slice(&u32::from(port).to_le_bytes());
                b.extend_from_slice(&((r.time_ns >> 32) as u32).to_le_bytes());
                b.extend_from_slice(&(r.time_ns as u32).to_le_bytes());
                b.extend_from_slice(&(data.len() as u32).to_le_bytes());
                b.extend_from_slice(&(data.len() as u32).to_le_bytes());
                b.extend_from_slice(data);
                b.resize(b.len().next_multiple_of(4), 0);
                option(&mut b, 1, comment.as_bytes());
                end_of_options(&mut b);
                block(&mut out, 6, &b);
            };
            epb(
                r.ingress,
                &r.before,
                format!(
                    "xfwd trace #{n}: in on {} (worker {}): {verdict}",
                    iface(r.ingress),
                    r.worker
                ),
            );
            if let Some(q) = r.egress {
                epb(
                    q,
                    &r.after,
                    format!("xfwd trace #{n}: out on {} after rewrite", iface(q)),
                );
            }
        }
        out
    }

    /// Writes [`Self::to_pcapng`] to `w`.
    ///
    /// # Errors
    ///
    /// When writing fails.
    pub fn write_pcapng(&self, mut w: impl Write) -> std::io::Result<()> {
        w.write_all(&self.to_pcapng())
    }

    /// One line per packet, for the terminal.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for (i, r) in self.records.iter().enumerate() {
            let name = |p: PortId| {
                self.interfaces
                    .get(usize::from(p))
                    .map_or("?", String::as_str)
            };
            let what = match (&r.reason, r.egress, &r.next_hop) {
                (Some(reason), Some(q), _) => {
                    format!("dropped: {reason}; ICMP error via {}", name(q))
                }
                (Some(reason), ..) => format!("dropped: {reason}"),
                (_, Some(q), _) => format!("{} to {}", r.verdict, name(q)),
                (_, _, Some(nh)) => format!("held for {nh}"),
                _ => r.verdict.clone(),
            };
            s.push_str(&format!(
                "#{} {} {}B: {what}\n",
                i + 1,
                name(r.ingress),
                r.before.len()
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_budget_and_pcapng_layout() {
        let t = Tracer::default();
        // Disarmed: nothing recorded.
        t.offer(0, 0, b"a", b"a", Outcome::Drop(DropReason::NoRoute));
        assert!(t.rx.try_recv().is_err());
        std::thread::scope(|s| {
            let h = s.spawn(|| {
                t.capture(2, Some("ttl_expired"), Duration::from_secs(5))
                    .unwrap()
            });
            while !t.is_armed() {
                std::thread::yield_now();
            }
            t.offer(0, 0, b"x", b"x", Outcome::Drop(DropReason::NoRoute));
            t.offer(0, 1, b"y", b"y", Outcome::Drop(DropReason::TtlExpired));
            t.offer(0, 1, b"z", b"z", Outcome::Tx(0));
            t.offer(0, 0, b"w", b"w", Outcome::Drop(DropReason::TtlExpired));
            t.offer(0, 0, b"v", b"v", Outcome::Drop(DropReason::TtlExpired));
            let got = h.join().unwrap();
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].before, b"y");
            assert_eq!(got[1].before, b"w");
        });
        assert!(!t.is_armed());
        assert!(t.capture(1, Some("nope"), Duration::ZERO).is_err());

        let report = TraceReport {
            interfaces: vec!["p0".into(), "p1".into()],
            records: vec![TraceRecord {
                worker: 0,
                ingress: 0,
                time_ns: 1,
                before: vec![1; 61],
                after: vec![2; 61],
                verdict: "forwarded".into(),
                egress: Some(1),
                reason: None,
                next_hop: None,
            }],
        };
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<TraceReport>(&json).unwrap(), report);
        let p = report.to_pcapng();
        // SHB, 2 IDBs, 2 EPBs; every block's two lengths agree and are multiples of 4.
        let mut off = 0;
        let mut kinds = Vec::new();
        while off < p.len() {
            let kind = u32::from_le_bytes(p[off..off + 4].try_into().unwrap());
            let len = u32::from_le_bytes(p[off + 4..off + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            let tail = u32::from_le_bytes(p[off + len - 4..off + len].try_into().unwrap());
            assert_eq!(tail as usize, len);
            kinds.push(kind);
            off += len;
        }
        assert_eq!(kinds, [0x0A0D_0D0A, 1, 1, 6, 6]);
    }
}

//! Capturing what a case produced at h2 (forwarded) and at h1 (sent back), and normalising each
//! frame into named fields that the two routers' runs are compared on.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Result;
use xfwd_testbed::RawSocket;
use xfwd_testbed::packet::{ETH_P_ARP, ETH_P_IP, IPPROTO_ICMP, parse};

/// ICMP types that are errors (RFC 792, RFC 1812 §4.3.2): they quote the offending datagram.
const ICMP_ERRORS: [u8; 5] = [3, 4, 5, 11, 12];

/// What a captured frame is to its case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    /// A frame of the case itself (its IP ID): forwarded, fragmented, or passed back.
    #[default]
    Fwd,
    /// An ICMP error the router originated about the case's packet (quotes the case's ID).
    Err,
    /// A frame that does not parse as IPv4, kept raw.
    Raw,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Fwd, Kind::Err, Kind::Raw];

    /// The name in flattened keys: `fwd`, `err`, `raw`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Fwd => "fwd",
            Kind::Err => "err",
            Kind::Raw => "raw",
        }
    }
}

/// One captured frame as named fields, in a fixed order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub fields: Vec<(&'static str, String)>,
}

impl Frame {
    fn push(&mut self, k: &'static str, v: impl ToString) {
        self.fields.push((k, v.to_string()));
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.as_str())
    }

    /// A short human summary for the table.
    pub fn summary(&self) -> String {
        let g = |k| self.get(k).unwrap_or("?");
        if self.get("raw").is_some() {
            return format!("raw({})", g("len"));
        }
        if let Some(t) = self.get("icmp.type")
            && ICMP_ERRORS.iter().any(|e| e.to_string() == t)
        {
            let mut s = format!("icmp{t}/{} from {}", g("icmp.code"), g("ip.src"));
            if t == "3" && g("icmp.code") == "4" {
                let rest = g("icmp.rest");
                let mtu = u16::from_str_radix(rest.get(4..8).unwrap_or("0"), 16).unwrap_or(0);
                let _ = write!(s, " mtu{mtu}");
            }
            if t == "12" {
                let ptr =
                    u8::from_str_radix(g("icmp.rest").get(0..2).unwrap_or("0"), 16).unwrap_or(0);
                let _ = write!(s, " ptr{ptr}");
            }
            return s;
        }
        let mut s = format!("ttl{} len{}", g("ip.ttl"), g("ip.len"));
        if g("ip.mf") == "1" || g("ip.off") != "0" {
            let _ = write!(
                s,
                " off{}{}",
                g("ip.off"),
                if g("ip.mf") == "1" { "+MF" } else { "" }
            );
        }
        if !g("ip.opts").is_empty() {
            s.push_str(" opts");
        }
        s
    }
}

/// What one case produced: frames at h2 and frames at h1, in arrival order, plus frames that
/// belonged to no case (counted, not compared).
#[derive(Clone, Debug, Default)]
pub struct Observation {
    pub h2: Vec<Frame>,
    pub h1: Vec<Frame>,
    pub strays: usize,
    /// xfwd only: the drop reasons its counters gained during the case (`name×n`), shown in the
    /// table to explain a silent outcome; not compared.
    pub drops: Vec<String>,
}

impl Observation {
    /// `h2: [..] h1: [..]` for the table.
    pub fn summary(&self) -> String {
        let side = |v: &[Frame]| {
            if v.is_empty() {
                return "-".to_owned();
            }
            // Runs of identical summaries collapse to `n× summary`.
            let mut runs: Vec<(usize, String)> = Vec::new();
            for s in v.iter().map(Frame::summary) {
                match runs.last_mut() {
                    Some((n, last)) if *last == s => *n += 1,
                    _ => runs.push((1, s)),
                }
            }
            runs.into_iter()
                .map(|(n, s)| if n == 1 { s } else { format!("{n}× {s}") })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut s = format!("h2: {} | h1: {}", side(&self.h2), side(&self.h1));
        if self.strays > 0 {
            // Frames of other cases (or of the warm-up) seen meanwhile: late arrivals.
            let _ = write!(s, " (+{} stray)", self.strays);
        }
        if !self.drops.is_empty() {
            let _ = write!(s, " [drop {}]", self.drops.join(" "));
        }
        s
    }

    /// Flattened `side.kind[i].field` → value (e.g. `h1.err[0].icmp.code`), plus
    /// `side.kind` → count, for side `h2`/`h1` and kind `fwd`/`err`/`raw` ([`Kind`]); frames
    /// are numbered in arrival order within their side and kind.
    pub fn flatten(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (side, frames) in [("h2", &self.h2), ("h1", &self.h1)] {
            for kind in Kind::ALL {
                let of_kind: Vec<&Frame> = frames.iter().filter(|f| f.kind == kind).collect();
                let k = kind.name();
                out.push((format!("{side}.{k}"), of_kind.len().to_string()));
                for (i, f) in of_kind.iter().enumerate() {
                    for (name, v) in &f.fields {
                        out.push((format!("{side}.{k}[{i}].{name}"), v.clone()));
                    }
                }
            }
        }
        out
    }
}

/// How long to listen after a case's frames are sent.
#[derive(Clone, Copy, Debug)]
pub struct Listen {
    /// Listen at least this long (for outcomes that come late, e.g. a failed ARP resolution).
    pub min: Duration,
    /// Stop once nothing arrived for this long (after `min`) ...
    pub quiet: Duration,
    /// ... or this long, while fewer frames than expected have arrived: a slow router gets
    /// more time to deliver what the case expects.
    pub quiet_waiting: Duration,
    /// Never listen longer than this.
    pub max: Duration,
}

impl Listen {
    pub const DEFAULT: Listen = Listen {
        min: Duration::from_millis(0),
        quiet: Duration::from_millis(100),
        quiet_waiting: Duration::from_millis(400),
        max: Duration::from_secs(2),
    };
}

/// Receives on both sockets until `listen` says stop, keeping the frames that belong to the case
/// whose packets carry IP identification `id` (the frames themselves, their fragments, or ICMP
/// errors quoting them). ARP is ignored; frames that cannot be parsed as IPv4 are kept.
/// `expect` is how many frames the case should produce (both sides together): until that many
/// came, silence must last [`Listen::quiet_waiting`] rather than [`Listen::quiet`].
pub fn capture(
    h1: &RawSocket,
    h2: &RawSocket,
    id: u16,
    listen: Listen,
    expect: usize,
) -> Result<Observation> {
    let start = Instant::now();
    let mut last = start;
    let mut obs = Observation::default();
    loop {
        let now = Instant::now();
        let elapsed = now - start;
        let quiet = if obs.h1.len() + obs.h2.len() < expect {
            listen.quiet_waiting
        } else {
            listen.quiet
        };
        if elapsed >= listen.max || (elapsed >= listen.min && now - last >= quiet) {
            return Ok(obs);
        }
        let mut got = false;
        for (sock, is_h2) in [(h2, true), (h1, false)] {
            if let Some(bytes) = sock.recv_timeout(Duration::from_millis(2))? {
                match classify(&bytes, id) {
                    Class::Ignore => {}
                    Class::Stray => obs.strays += 1,
                    Class::Keep(f) => {
                        got = true;
                        if is_h2 {
                            obs.h2.push(f);
                        } else {
                            obs.h1.push(f);
                        }
                    }
                }
            }
        }
        if got {
            last = Instant::now();
        }
    }
}

enum Class {
    Ignore,
    Stray,
    Keep(Frame),
}

fn classify(bytes: &[u8], id: u16) -> Class {
    let ethertype = bytes.get(12..14).map(|b| u16::from_be_bytes([b[0], b[1]]));
    if ethertype == Some(ETH_P_ARP) {
        return Class::Ignore;
    }
    let mut f = normalise(bytes);
    if ethertype != Some(ETH_P_IP) || f.get("raw").is_some() {
        f.kind = Kind::Raw;
        return Class::Keep(f);
    }
    let id = format!("{id:04x}");
    if f.get("ip.id") == Some(&id) {
        f.kind = Kind::Fwd;
        Class::Keep(f)
    } else if f.get("icmp.quote.id") == Some(&id) {
        f.kind = Kind::Err;
        Class::Keep(f)
    } else {
        Class::Stray
    }
}

/// The named fields of one frame. Frames `parse` rejects are kept as raw bytes.
pub fn normalise(bytes: &[u8]) -> Frame {
    let mut f = Frame::default();
    let Ok(p) = parse(bytes) else {
        f.push("raw", hex(bytes));
        f.push("len", bytes.len());
        return f;
    };
    f.push("len", bytes.len());
    f.push("eth.dst", mac(p.dst_mac));
    f.push("eth.src", mac(p.src_mac));
    f.push("eth.type", format!("{:04x}", p.ethertype));
    let Some(ip) = &p.ipv4 else {
        f.push("raw", hex(&bytes[14.min(bytes.len())..]));
        return f;
    };
    f.push("ip.ihl", ip.ihl);
    f.push("ip.tos", format!("{:02x}", ip.tos));
    f.push("ip.len", ip.total_len);
    f.push("ip.id", format!("{:04x}", ip.identification));
    f.push("ip.df", u8::from(ip.dont_fragment));
    f.push("ip.mf", u8::from(ip.more_fragments));
    f.push("ip.off", ip.fragment_offset);
    f.push("ip.ttl", ip.ttl);
    f.push("ip.proto", ip.protocol);
    f.push("ip.csum", format!("{:04x}", ip.header_checksum));
    f.push("ip.csum_ok", ip.header_checksum_ok);
    f.push("ip.src", ip.src);
    f.push("ip.dst", ip.dst);
    let (opts, stamps) = split_timestamps(&ip.options);
    f.push("ip.opts", hex(&opts));
    if !stamps.is_empty() {
        f.push("ip.opts.ts", hex(&stamps));
    }
    if let Some(icmp) = &ip.icmp {
        f.push("icmp.type", icmp.icmp_type);
        f.push("icmp.code", icmp.code);
        f.push("icmp.csum_ok", icmp.checksum_ok);
        f.push("icmp.rest", hex(&icmp.rest_of_header));
        if ICMP_ERRORS.contains(&icmp.icmp_type) {
            let q = &icmp.payload;
            if q.len() >= 6 {
                f.push("icmp.quote.id", format!("{:02x}{:02x}", q[4], q[5]));
            }
            f.push("icmp.quote.len", q.len());
            f.push("icmp.quote", hex(q));
        } else {
            f.push("payload", hex(&icmp.payload));
        }
    } else {
        if let Some(udp) = &ip.udp {
            f.push("udp.csum_ok", udp.checksum_ok);
        }
        f.push("payload", hex(&ip.payload));
    }
    if ip.protocol == IPPROTO_ICMP && ip.icmp.is_none() {
        f.push("icmp", "fragment");
    }
    f
}

/// The options with the clock values of Timestamp options (RFC 791, type 68) zeroed, and those
/// values apart: a router's clock reading is the one part of an option two routers cannot share,
/// while pointer, overflow, flags and recorded addresses must still match.
fn split_timestamps(opts: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut out = opts.to_vec();
    let mut stamps = Vec::new();
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            t => {
                let Some(&len) = opts.get(i + 1) else { break };
                let len = usize::from(len);
                if len < 2 || i + len > opts.len() {
                    break;
                }
                if t == 68 && len >= 4 {
                    let ptr = usize::from(opts[i + 2]);
                    let flag = opts[i + 3] & 0x0f;
                    // Filled entries: from byte 5 (1-based) up to the pointer.
                    let (entry, ts_at) = if flag == 0 { (4, 0) } else { (8, 4) };
                    let mut e = 4;
                    while e + entry <= len && e + entry < ptr {
                        let at = i + e + ts_at;
                        stamps.extend_from_slice(&opts[at..at + 4]);
                        out[at..at + 4].fill(0);
                        e += entry;
                    }
                }
                i += len;
            }
        }
    }
    (out, stamps)
}

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Lower-case hex, no separators.
pub fn hex(b: &[u8]) -> String {
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use xfwd_testbed::Ipv4Frame;

    use super::*;

    #[test]
    fn timestamp_values_are_split_from_the_rest_of_the_option() {
        // Timestamps only, one entry filled (pointer 9), one free.
        let (rest, ts) = split_timestamps(&[68, 12, 9, 0, 1, 2, 3, 4, 0, 0, 0, 0]);
        assert_eq!(rest, [68, 12, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(ts, [1, 2, 3, 4]);
        // Address + timestamp (flag 1), after a NOP: the address stays, the time goes.
        let opts = [1, 68, 12, 13, 0x11, 10, 0, 2, 1, 9, 9, 9, 9, 0, 0, 0];
        let (rest, ts) = split_timestamps(&opts);
        assert_eq!(rest[..9], opts[..9]);
        assert_eq!(rest[9..13], [0, 0, 0, 0]);
        assert_eq!(ts, [9, 9, 9, 9]);
        // Nothing filled yet, other options untouched, a bad length stops the walk.
        assert!(
            split_timestamps(&[68, 12, 5, 0, 7, 7, 7, 7, 0, 0, 0, 0])
                .1
                .is_empty()
        );
        assert!(split_timestamps(&[7, 7, 4, 0, 0, 0, 0, 0]).1.is_empty());
        assert!(split_timestamps(&[68, 40, 9, 0]).1.is_empty());
    }

    #[test]
    fn frames_become_named_fields_and_belong_to_their_case() {
        let mut f = Ipv4Frame::new(
            [2, 0, 0, 0, 1, 2],
            [2, 0, 0, 0, 1, 1],
            Ipv4Addr::new(10, 0, 1, 2),
            Ipv4Addr::new(10, 0, 2, 2),
        );
        f.identification = 0x4401;
        f.ttl = 9;
        let bytes = f.udp(1, 2, b"abc").unwrap();
        let n = normalise(&bytes);
        assert_eq!(n.get("ip.ttl"), Some("9"));
        assert_eq!(n.get("ip.id"), Some("4401"));
        assert_eq!(n.get("ip.csum_ok"), Some("true"));
        assert_eq!(n.get("eth.dst"), Some("02:00:00:00:01:01"));
        assert!(matches!(
            classify(&bytes, 0x4401),
            Class::Keep(Frame {
                kind: Kind::Fwd,
                ..
            })
        ));
        assert!(matches!(classify(&bytes, 0x4402), Class::Stray));
        // An ICMP error quoting the packet belongs to the same case.
        let mut err = Ipv4Frame::new(
            [2, 0, 0, 0, 1, 1],
            [2, 0, 0, 0, 1, 2],
            Ipv4Addr::new(10, 0, 1, 1),
            Ipv4Addr::new(10, 0, 1, 2),
        );
        err.identification = 0x9999;
        let mut msg = vec![11, 0, 0, 0, 0, 0, 0, 0];
        msg.extend_from_slice(&bytes[14..42]);
        let icmp = err.raw(IPPROTO_ICMP, &msg).unwrap();
        let n = normalise(&icmp);
        assert_eq!(n.get("icmp.quote.id"), Some("4401"));
        assert_eq!(n.summary(), "icmp11/0 from 10.0.1.1");
        assert!(matches!(
            classify(&icmp, 0x4401),
            Class::Keep(Frame {
                kind: Kind::Err,
                ..
            })
        ));
        // Unparseable IPv4 is kept raw; ARP is ignored.
        let mut bad = bytes.clone();
        bad[14] = 0x65;
        assert!(normalise(&bad).get("raw").is_some());
        assert!(matches!(
            classify(&bad, 0x1234),
            Class::Keep(Frame {
                kind: Kind::Raw,
                ..
            })
        ));
        let mut arp = bytes;
        arp[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
        assert!(matches!(classify(&arp, 0x4401), Class::Ignore));
    }
}

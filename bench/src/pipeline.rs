//! `xfwd-bench pipeline`: the forwarding pipeline without I/O, the way grout reports cycles
//! per node.
//!
//! Frames sit in memory, one per flow (flow i: a UDP frame to an address inside a route of
//! the table, chosen by a fixed pseudo-random sequence so lookups spread over it), and are fed
//! to [`xfwd::node::ip4_forward_batch`] (the function the workers run) in batches of
//! [`xfwd::node::BATCH`], round-robin over the flows. Before each batch its frames are refilled
//! from their templates (the pipeline rewrites MACs and TTL in place, as the NIC's DMA would
//! bring new frames); that copy is measured alone and reported apart.
//!
//! - `full`: the real `ip4_forward_batch`, no timers inside: packets per second per core and
//!   ns per packet.
//! - Per stage: the same stages called one pass at a time over the batch, timed with `Instant`
//!   around each pass: eth_input, ip4_input, lookup (the bulk LPM), forward (every check
//!   `ip4_forward_batch` makes between the lookup and the rewrite: martian addresses, local or
//!   broadcast source, next hop, route MTU, the rp_filter and options switches, TTL and MTU,
//!   then the TTL decrement with the incremental checksum) and rewrite (L2 header, outcome).
//!   `ip4_forward_batch` fuses eth_input with ip4_input and forward with rewrite into two
//!   passes, each with a fast path for the common packet (one length check, combined compares;
//!   the second pass re-reads the header instead of keeping an `Ip4Meta`) and a general path
//!   for the rest, and its martian test is a private table lookup where this loop calls the
//!   public predicates. So the split only says which stage is heavy, not what `full` spends on
//!   it: the sum is well above `full` (timer reads, lost overlap between stages, the general
//!   form of the stage functions: since the fast paths, 1.7-3x `full` on a quiet machine).
//!   `full` is the number.
//!
//! For A/B of code changes on a noisy machine, count instructions instead of time:
//! `valgrind --tool=callgrind --toggle-collect='*full_batch*' xfwd-bench pipeline --routes 1
//! --flows 1024 --duration 0.3 --runs 1 --json` and divide the collected `Ir` by the `tx` +
//! `dropped` of the JSON (the full loop's packets): repeatable to the instruction.
//!
//! The FIB is built the way the control thread builds it ([`xfwd::fib::RouteTable::build`],
//! [`xfwd::fib::AdjTable::build`]), so a faster LPM behind `RouteTable` shows up here as is.

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Args;
use serde::Serialize;
use xfwd::fib::{
    AdjTable, Fib, IfAddrs, NO_ROUTE, NeighInput, PortAddr, PortInfo, RouteInput, RouteNextHop,
    RouteTable, RouteType, Verdict,
};
use xfwd::node::{
    self, BATCH, ForwardConfig, Ip4Ctx, Outcome, eth_input, ip4_forward, ip4_input, ip4_lookup,
};
use xfwd::wire::{EthernetAddress, Ipv4Packet};

use crate::e2e;
use crate::summary;

/// Options of `xfwd-bench pipeline`.
#[derive(Args, Debug, Clone)]
pub struct PipelineArgs {
    /// Flow counts to measure (distinct destinations).
    #[arg(long, value_delimiter = ',', default_value = "1,1024,65536")]
    pub flows: Vec<u32>,
    /// Route tables: 1 (a handful of routes) and/or 1m (the 1 M table of --route-file).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "1m")]
    pub routes: Vec<e2e::Routes>,
    /// The 1 M route table (`PREFIX/LEN ...` lines, gzip or plain).
    #[arg(long, value_name = "PATH")]
    pub route_file: Option<PathBuf>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 1.0)]
    pub duration: f64,
    /// Measurements per configuration; the report gives medians.
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// CPU to pin the measuring thread to.
    #[arg(long, default_value_t = 1)]
    pub cpu: usize,
    /// Frame size in bytes without FCS (60..=1514).
    #[arg(long, default_value_t = 60)]
    pub frame_len: usize,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

const P0_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
const P1_MAC: [u8; 6] = [2, 0, 0, 0, 2, 1];
const H1_MAC: [u8; 6] = [2, 0, 0, 0, 1, 2];
/// Next hops the table's routes are spread over (10.0.2.2 ..), all resolved.
const GATEWAYS: u32 = 16;
/// Untagged Ethernet header: where IPv4 starts in every frame of this benchmark.
const ETH_LEN: usize = 14;

/// Nanoseconds per packet of each stage.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Stages {
    pub eth_input: f64,
    pub ip4_input: f64,
    pub lookup: f64,
    pub forward: f64,
    pub rewrite: f64,
}

impl Stages {
    fn sum(&self) -> f64 {
        self.eth_input + self.ip4_input + self.lookup + self.forward + self.rewrite
    }
}

/// One configuration's result (medians over runs).
#[derive(Clone, Debug, Serialize)]
pub struct PipelineResult {
    pub routes: String,
    pub prefixes: usize,
    pub flows: u32,
    /// Full pipeline (ip4_forward_batch), refill excluded: million packets per second, one core.
    pub mpps: f64,
    /// Full pipeline, ns per packet (refill excluded).
    pub ns_per_packet: f64,
    /// Refilling the batch from templates (memcpy per frame), ns per packet.
    pub refill_ns: f64,
    /// Per-stage ns per packet, timed one pass at a time.
    pub stages: Stages,
    /// Packets the pipeline forwarded / sent to resolution / dropped in the last run (sanity).
    pub tx: u64,
    pub dropped: u64,
}

/// The FIB: p0 (h1's side) and p1 with GATEWAYS resolved next hops; `routes` spread over
/// them, plus the connected subnets and the router's addresses.
fn build_fib(routes: &[(u32, u8)]) -> Result<Fib> {
    let ports: Arc<[PortInfo]> = Arc::from(vec![
        PortInfo {
            ifindex: 10,
            name: "p0".into(),
            mac: P0_MAC,
            mtu: 1500,
            up: true,
        },
        PortInfo {
            ifindex: 11,
            name: "p1".into(),
            mac: P1_MAC,
            mtu: 1500,
            up: true,
        },
    ]);
    let gw = |i: u32| Ipv4Addr::new(10, 0, 2, 2 + (i % GATEWAYS) as u8);
    let mut input = vec![
        RouteInput {
            dst: Ipv4Addr::new(10, 0, 1, 0),
            len: 24,
            kind: RouteType::Unicast,
            nexthops: vec![RouteNextHop {
                gateway: None,
                ifindex: 10,
                weight: 1,
            }],
            mtu: 0,
        },
        RouteInput {
            dst: Ipv4Addr::new(10, 0, 2, 0),
            len: 24,
            kind: RouteType::Unicast,
            nexthops: vec![RouteNextHop {
                gateway: None,
                ifindex: 11,
                weight: 1,
            }],
            mtu: 0,
        },
    ];
    for (i, &(a, l)) in routes.iter().enumerate() {
        let dst = Ipv4Addr::from(a);
        // More specifics inside the connected subnets would take the hosts' traffic.
        if l > 24 && matches!(a >> 8, 0x0a_00_01 | 0x0a_00_02) {
            continue;
        }
        input.push(RouteInput {
            dst,
            len: l,
            kind: RouteType::Unicast,
            nexthops: vec![RouteNextHop {
                gateway: Some(gw(i as u32)),
                ifindex: 11,
                weight: 1,
            }],
            mtu: 0,
        });
    }
    let table = RouteTable::build(
        input,
        [Ipv4Addr::new(10, 0, 1, 1), Ipv4Addr::new(10, 0, 2, 1)],
        &ports,
    )
    .context("building the route table")?;
    let neighs = (0..GATEWAYS).map(|i| NeighInput {
        ifindex: 11,
        ip: gw(i),
        mac: Some([2, 0, 0, 0, 3, i as u8]),
        valid: true,
        failed: false,
        stale: false,
    });
    let adj = AdjTable::build(&table, neighs, &ports);
    Ok(Fib {
        routes: Arc::new(table),
        adj: Arc::new(adj),
        ports,
        generation: 1,
        addrs: Arc::new(IfAddrs::new(
            vec![
                vec![port_addr([10, 0, 1, 1])],
                vec![port_addr([10, 0, 2, 1])],
            ],
            vec![
                u32::from_be_bytes([10, 0, 1, 1]),
                u32::from_be_bytes([10, 0, 2, 1]),
            ],
            vec![
                u32::from_be_bytes([10, 0, 1, 255]),
                u32::from_be_bytes([10, 0, 2, 255]),
            ],
        )),
    })
}

fn port_addr(a: [u8; 4]) -> PortAddr {
    PortAddr {
        addr: u32::from_be_bytes(a),
        prefix_len: 24,
        secondary: false,
    }
}

/// xorshift64*: a fixed, dependency-free pseudo-random sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// `flows` destinations, each inside a route of `routes` that the FIB forwards.
fn destinations(fib: &Fib, routes: &[(u32, u8)], flows: u32) -> Vec<u32> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(flows as usize);
    let mut tries = 0u64;
    while out.len() < flows as usize && tries < u64::from(flows) * 100 {
        tries += 1;
        let (a, l) = routes[(rng.next() % routes.len() as u64) as usize];
        let host = if l >= 32 {
            0
        } else {
            (rng.next() as u32) & (u32::MAX >> l)
        };
        let dst = a | host;
        let e = fib.routes.lookup(dst);
        if e != NO_ROUTE && matches!(fib.adj_verdict(e, dst), Some(true)) {
            out.push(dst);
        }
    }
    out
}

/// Whether `entry` for `dst` forwards (`Some(true)`) without resolution.
trait AdjVerdict {
    fn adj_verdict(&self, entry: u32, dst: u32) -> Option<bool>;
}

impl AdjVerdict for Fib {
    fn adj_verdict(&self, entry: u32, dst: u32) -> Option<bool> {
        Some(matches!(
            ip4_lookup::ip4_next_hop(self, entry, dst),
            Verdict::Forward(_)
        ))
    }
}

/// A UDP frame of `len` bytes from h1 to `dst`, addressed to p0.
fn frame(dst: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&P0_MAC);
    f[6..12].copy_from_slice(&H1_MAC);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (len - 14) as u16;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[10, 0, 1, 2]);
    ip[16..20].copy_from_slice(&dst.to_be_bytes());
    let mut sum: u32 = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f[34..36].copy_from_slice(&1024u16.to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[38..40].copy_from_slice(&((len - 34) as u16).to_be_bytes());
    f
}

/// Refills `batch` with the next BATCH templates starting at flow `*next`.
#[inline]
fn refill(batch: &mut [Vec<u8>], templates: &[Vec<u8>], next: &mut usize) {
    for b in batch.iter_mut() {
        let t = &templates[*next];
        b.clear();
        b.extend_from_slice(t);
        *next += 1;
        if *next == templates.len() {
            *next = 0;
        }
    }
}

/// One call of the real pipeline, kept out of line so that `valgrind --tool=callgrind
/// --toggle-collect='*pipeline::full_batch*'` counts exactly its instructions (one call per
/// batch of 64: the call itself is noise).
#[inline(never)]
fn full_batch(fib: &Fib, ctx: &mut Ip4Ctx, batch: &mut [Vec<u8>], out: &mut [Outcome; BATCH]) {
    node::ip4_forward_batch(fib, ctx, 0, batch, out);
}

struct Measured {
    full_ns: f64,
    refill_ns: f64,
    stages: Stages,
    tx: u64,
    dropped: u64,
}

fn measure(fib: &Fib, templates: &[Vec<u8>], dur: Duration) -> Measured {
    let len = templates[0].len();
    let mut batch: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(len)).collect();
    let mut out = [Outcome::Drop(xfwd::drop::DropReason::NoRoute); BATCH];
    let mut next = 0usize;
    let mut ctx = Ip4Ctx::new(ForwardConfig::default(), 1, 0);

    // Refill alone.
    let (mut n, t0) = (0u64, Instant::now());
    while t0.elapsed() < dur / 4 {
        for _ in 0..64 {
            refill(&mut batch, templates, &mut next);
            black_box(&mut batch);
        }
        n += 64 * BATCH as u64;
    }
    let refill_ns = t0.elapsed().as_nanos() as f64 / n as f64;

    // Full pipeline, refill included, then minus the refill.
    let (mut n, mut tx, mut dropped, t0) = (0u64, 0u64, 0u64, Instant::now());
    while t0.elapsed() < dur {
        for _ in 0..64 {
            refill(&mut batch, templates, &mut next);
            full_batch(fib, &mut ctx, &mut batch, &mut out);
            for o in &out {
                match o {
                    Outcome::Tx(_) | Outcome::TxStale(_) => tx += 1,
                    _ => dropped += 1,
                }
            }
        }
        n += 64 * BATCH as u64;
    }
    let full_ns = t0.elapsed().as_nanos() as f64 / n as f64 - refill_ns;

    // Stage by stage.
    let dev_mac = EthernetAddress(P0_MAC);
    let mut st = [Duration::ZERO; 5];
    let (mut n, t0) = (0u64, Instant::now());
    while t0.elapsed() < dur {
        refill(&mut batch, templates, &mut next);
        let mut eth = [None; BATCH];
        let mut meta = [ip4_input::Ip4Meta::default(); BATCH];
        let mut dsts = [0u32; BATCH];
        let mut entries = [NO_ROUTE; BATCH];
        let mut adjs: [Option<(xfwd::fib::PortId, [u8; 14])>; BATCH] = [None; BATCH];
        let a = Instant::now();
        for (i, f) in batch.iter().enumerate() {
            eth[i] = eth_input::eth_input(f, &dev_mac).ok();
        }
        let b = Instant::now();
        for (i, f) in batch.iter_mut().enumerate() {
            if let Some(e) = eth[i]
                && let Ok(m) = ip4_input::ip_rcv_core(&f[e.l3_offset..], e.pkt_type)
            {
                f.truncate(e.l3_offset + m.total_len);
                dsts[i] = m.dst;
                meta[i] = m;
            } else {
                eth[i] = None;
            }
        }
        let c = Instant::now();
        ip4_lookup::ip4_lookup(fib, &dsts, &mut entries);
        let d = Instant::now();
        // forward: what `ip4_forward_batch` does between the lookup and the rewrite, check for
        // check (martian addresses, local or broadcast source, next hop, route MTU, rp_filter and
        // options switches, TTL and MTU, TTL decrement with the incremental checksum), with the
        // public predicates standing in for its private ones.
        let cfg = black_box(ctx.cfg);
        for i in 0..BATCH {
            let (Some(_), m) = (eth[i], &meta[i]) else {
                continue;
            };
            if ip4_input::martian_source(m.src)
                || ip4_input::martian_destination(m.dst)
                || xfwd::wire::ipv4::is_multicast(m.dst)
                || (fib.addrs.maybe_special(m.src) && fib.addrs.is_local(m.src))
                || cfg.rp_filter != xfwd::node::RpFilter::Off
                || m.has_options
            {
                continue;
            }
            if let Verdict::Forward(adj) = ip4_lookup::ip4_next_hop(fib, entries[i], m.dst) {
                let mtu = fib.routes.mtu(entries[i], adj.mtu);
                if ip4_forward::ip_forward(m.ttl, m.total_len, m.df, mtu) == Ok(true) {
                    Ipv4Packet::new_unchecked(&mut batch[i][ETH_LEN..]).decrease_ttl();
                    adjs[i] = Some((adj.port, adj.l2));
                }
            }
        }
        let e = Instant::now();
        // rewrite: the prebuilt L2 header and the outcome.
        for (i, f) in batch.iter_mut().enumerate() {
            if let Some((port, l2)) = &adjs[i] {
                node::ip4_rewrite::ip4_rewrite(f, l2);
                out[i] = Outcome::Tx(*port);
            }
        }
        let g = Instant::now();
        black_box(&mut batch);
        for (k, (x, y)) in [(a, b), (b, c), (c, d), (d, e), (e, g)].iter().enumerate() {
            st[k] += y.duration_since(*x);
        }
        n += BATCH as u64;
    }
    let per = |d: Duration| d.as_nanos() as f64 / n as f64;
    Measured {
        full_ns,
        refill_ns,
        stages: Stages {
            eth_input: per(st[0]),
            ip4_input: per(st[1]),
            lookup: per(st[2]),
            forward: per(st[3]),
            rewrite: per(st[4]),
        },
        tx,
        dropped,
    }
}

/// Runs the benchmark.
///
/// # Errors
///
/// Bad options, a missing route file, or a FIB that forwards none of the frames.
pub fn run(a: &PipelineArgs) -> Result<Vec<PipelineResult>> {
    ensure!(
        (60..=1514).contains(&a.frame_len),
        "--frame-len is not in 60..=1514"
    );
    ensure!(
        a.duration.is_finite() && (0.01..=60.0).contains(&a.duration),
        "--duration is not in 0.01..=60"
    );
    ensure!((1..=100).contains(&a.runs), "--runs is not in 1..=100");
    ensure!(
        a.flows.iter().all(|&f| (1..=1 << 22).contains(&f)),
        "--flows values must be in 1..=4194304"
    );
    ensure!(
        core_affinity::set_for_current(core_affinity::CoreId { id: a.cpu }),
        "cannot pin to CPU {}",
        a.cpu
    );
    let dur = Duration::from_secs_f64(a.duration);
    let mut results = Vec::new();
    for &routes in &a.routes {
        let table: Vec<(u32, u8)> = match routes {
            e2e::Routes::One => vec![(u32::from(Ipv4Addr::new(198, 18, 0, 0)), 15)],
            e2e::Routes::Full => {
                e2e::load_route_file(&e2e::find_route_file(a.route_file.as_deref())?)?
            }
        };
        let t = Instant::now();
        let fib = build_fib(&table)?;
        eprintln!(
            "xfwd-bench: FIB of {} prefixes built in {:.2} s",
            fib.routes.prefixes(),
            t.elapsed().as_secs_f64()
        );
        for &flows in &a.flows {
            let dsts = destinations(&fib, &table, flows);
            ensure!(
                dsts.len() == flows as usize,
                "found only {} forwardable destinations for {flows} flows",
                dsts.len()
            );
            let templates: Vec<Vec<u8>> = dsts.iter().map(|&d| frame(d, a.frame_len)).collect();
            let mut runs = Vec::new();
            for _ in 0..a.runs {
                runs.push(measure(&fib, &templates, dur));
            }
            let last = runs.last().map_or((0, 0), |m| (m.tx, m.dropped));
            ensure!(
                last.1 == 0,
                "{} of {} packets were dropped: the benchmark's FIB or frames are wrong",
                last.1,
                last.0 + last.1
            );
            let med = |f: fn(&Measured) -> f64| summary::median_of(&runs, f).unwrap_or(f64::NAN);
            let full = med(|m| m.full_ns);
            let r = PipelineResult {
                routes: match routes {
                    e2e::Routes::One => "1".into(),
                    e2e::Routes::Full => "1m".into(),
                },
                prefixes: fib.routes.prefixes(),
                flows,
                mpps: 1e3 / full,
                ns_per_packet: full,
                refill_ns: med(|m| m.refill_ns),
                stages: Stages {
                    eth_input: med(|m| m.stages.eth_input),
                    ip4_input: med(|m| m.stages.ip4_input),
                    lookup: med(|m| m.stages.lookup),
                    forward: med(|m| m.stages.forward),
                    rewrite: med(|m| m.stages.rewrite),
                },
                tx: last.0,
                dropped: last.1,
            };
            eprintln!(
                "xfwd-bench: routes={} flows={flows}: {:.2} Mpps/core, {:.1} ns/packet",
                r.routes, r.mpps, r.ns_per_packet
            );
            results.push(r);
        }
    }
    Ok(results)
}

/// The table for people (Markdown).
pub fn render(results: &[PipelineResult]) -> String {
    let mut s = String::from(
        "| routes | prefixes | flows | Mpps/core | ns/pkt | eth_input | ip4_input | lookup | forward | rewrite | stage sum | refill (excl.) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        let st = &r.stages;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            r.routes,
            r.prefixes,
            r.flows,
            r.mpps,
            r.ns_per_packet,
            st.eth_input,
            st.ip4_input,
            st.lookup,
            st.forward,
            st.rewrite,
            st.sum(),
            r.refill_ns
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_frame_is_forwarded_by_the_real_pipeline() {
        let routes = vec![
            (u32::from(Ipv4Addr::new(1, 0, 0, 0)), 8),
            (u32::from(Ipv4Addr::new(1, 2, 3, 0)), 24),
            (u32::from(Ipv4Addr::new(100, 64, 0, 0)), 10),
        ];
        let fib = build_fib(&routes).unwrap();
        let dsts = destinations(&fib, &routes, 100);
        assert_eq!(dsts.len(), 100);
        let templates: Vec<Vec<u8>> = dsts.iter().map(|&d| frame(d, 60)).collect();
        let m = measure(&fib, &templates, Duration::from_millis(20));
        assert!(
            m.tx > 0 && m.dropped == 0,
            "tx {} dropped {}",
            m.tx,
            m.dropped
        );
        assert!(m.full_ns > 0.0 && m.stages.sum() > 0.0);
    }

    #[test]
    fn frames_are_valid_ipv4_udp() {
        let f = frame(u32::from(Ipv4Addr::new(1, 2, 3, 4)), 60);
        let (ip, _) = etherparse::Ipv4Header::from_slice(&f[14..]).unwrap();
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        assert_eq!(ip.destination, [1, 2, 3, 4]);
    }
}

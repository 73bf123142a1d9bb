//! `xfwd-bench e2e`: RFC 2544 throughput, latency and loss of xfwd, Linux, DPDK l3fwd and
//! dpdk-testpmd, one after the other on the same topology, in one invocation.
//!
//! ```text
//!  netns h1                         netns router                          netns h2
//!  xfwd_gen ─XDP_TX─► eth0 ══veth══ p0 ─► system under test  ─► p1 ══veth══ eth0 ─► xfwd_sink
//!  BPF_PROG_RUN live frames,            xfwd | linux | dpdk-l3fwd |              per-flow seq,
//!  seq + timestamp, paced               dpdk-testpmd (net_af_xdp)                latency hist
//! ```
//!
//! Per route table and system (and run): a fresh topology, the routes (kernel: `ip -batch`;
//! l3fwd: its rule file), the system started, then for each frame size the RFC 2544 sequence
//! of [`crate::rfc2544`]. A trial: the generator paced to the rate (or flat out) on the
//! generator CPU for the trial length, a drain, then sent vs. received once at the sink (its
//! per-flow sequence tracking separates loss, reordering and duplicates) and, for latency
//! trials, the sink's one-way latency histogram into an HdrHistogram.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use xfwd_ebpf::{
    AttachMode, Generator, Sink, SinkAction, SinkConfig, UdpTemplate, latency_bucket_range,
};
use xfwd_testbed::{End, Topology};

use crate::dpdk::{self, DpdkProc};
use crate::forward::{
    FCS, Interrupted, RxNapi, Stop, XfwdProc, find_xfwd, ifindex, machine, xdp_xmit_errors,
};
use crate::napi;
use crate::procfs::{self, CpuShare, CpuTimes};
use crate::rfc2544::{self, Latency, Load, Outcome, Settings, Trial};
use crate::summary;
use crate::svg::{Chart, Series};
use crate::traffic;

/// RFC 2544 §9.1 frame sizes for Ethernet.
pub const RFC2544_SIZES: [u16; 7] = [64, 128, 256, 512, 1024, 1280, 1518];
/// Largest generator call when flat out (~2 ms at this VM's rate).
const FLAT_OUT_CHUNK: u32 = 8192;
/// Fewest frames per paced generator call (each call is a syscall and a dispatcher pass).
const MIN_CHUNK: u64 = 32;
/// Most frames per paced generator call: a paced burst stays well inside veth's 256-frame
/// ring.
const MAX_CHUNK: u64 = 64;
/// When the paced generator falls further behind than this (it was preempted), it does not
/// catch up with a burst (RFC 2544 offers a constant rate): the missed frames are not sent,
/// and the offered rate reported is what was really sent.
const MAX_BACKLOG: u64 = 256;

/// A system under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum E2eSystem {
    Xfwd,
    Linux,
    #[value(name = "dpdk-l3fwd")]
    DpdkL3fwd,
    #[value(name = "dpdk-testpmd")]
    DpdkTestpmd,
}

impl E2eSystem {
    /// The name in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            E2eSystem::Xfwd => "xfwd",
            E2eSystem::Linux => "linux",
            E2eSystem::DpdkL3fwd => "dpdk-l3fwd",
            E2eSystem::DpdkTestpmd => "dpdk-testpmd",
        }
    }
}

/// A route table size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Routes {
    /// The topology's own routes only (one route towards the destination).
    #[value(name = "1")]
    One,
    /// The topology's routes plus the 1 M table of `--route-file`, all towards h2.
    #[value(name = "1m")]
    Full,
}

impl Routes {
    fn name(self) -> &'static str {
        match self {
            Routes::One => "1",
            Routes::Full => "1m",
        }
    }
}

/// Options of `xfwd-bench e2e`.
#[derive(Args, Debug, Clone)]
pub struct E2eArgs {
    /// Systems to measure, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "xfwd,linux,dpdk-l3fwd,dpdk-testpmd"
    )]
    pub systems: Vec<E2eSystem>,
    /// Frame sizes (bytes with FCS) [default: RFC 2544's 64..1518; --quick: 64].
    #[arg(long, value_delimiter = ',')]
    pub frame_sizes: Vec<u16>,
    /// Route tables: 1 (the topology's routes) and/or 1m (plus --route-file).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "1")]
    pub routes: Vec<Routes>,
    /// The 1 M route table (`PREFIX/LEN ...` lines, gzip or plain).
    #[arg(long, value_name = "PATH")]
    pub route_file: Option<PathBuf>,
    /// UDP flows (source ports; the sink tracks each one's sequence numbers), 1..=64512.
    #[arg(long, default_value_t = 1)]
    pub flows: u16,
    /// Seconds per trial [default: 2; --quick: 0.5].
    #[arg(long)]
    pub trial: Option<f64>,
    /// Seconds to wait after a trial for frames in flight [default: 0.2; --quick: 0.1].
    #[arg(long)]
    pub drain: Option<f64>,
    /// Binary search resolution, percent of the flat-out rate [default: 1; --quick: 5].
    #[arg(long)]
    pub resolution: Option<f64>,
    /// Most binary search trials per frame size [default: 10; --quick: 6].
    #[arg(long)]
    pub max_trials: Option<u32>,
    /// Lost share (percent) still counted as zero loss (RFC 2544: 0).
    #[arg(long, default_value_t = 0.0)]
    pub loss_tolerance: f64,
    /// Full RFC 2544 searches per system and frame size; the report gives medians.
    #[arg(long, default_value_t = 1)]
    pub runs: u32,
    /// Short version: 64-byte frames, short trials, coarse search (well under 3 minutes).
    #[arg(long)]
    pub quick: bool,
    /// CPU for the generator (and DPDK's main lcore).
    #[arg(long, default_value_t = 0)]
    pub gen_cpu: usize,
    /// CPU for forwarding (xfwd's worker, DPDK's forwarding lcore).
    #[arg(long, default_value_t = 1)]
    pub fwd_cpu: usize,
    /// The xfwd binary [default: target/release/xfwd in the workspace].
    #[arg(long, value_name = "PATH")]
    pub xfwd: Option<PathBuf>,
    /// Extra argument for `xfwd run` (repeatable), e.g. `--xfwd-arg=--busy-poll`.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub xfwd_arg: Vec<String>,
    /// Where the router's receive path (p0's NAPI) runs: `threaded` pins it to --fwd-cpu, so
    /// every system's whole router path is on the forwarding CPU (the same core budget);
    /// `softirq` leaves it on the generator's CPU (veth's default; Linux then forwards there).
    #[arg(long, value_enum, default_value_t = RxNapi::Threaded)]
    pub rx_napi: RxNapi,
    /// Run the generator thread, the router's NAPI thread and the system's forwarding threads
    /// as SCHED_FIFO at this priority (1..=99; `chrt`), so that other tenants of a shared
    /// machine cannot preempt them (the kernel's RT throttling still leaves them 5 %).
    /// The NAPI thread gets one level more. 0: normal scheduling.
    #[arg(long, default_value_t = 0)]
    pub realtime: u8,
    /// RX and TX descriptors per DPDK queue (l3fwd `--rx-queue-size`/`--tx-queue-size`,
    /// testpmd `--rxd`/`--txd`), e.g. xfwd's ring size to compare at equal buffering
    /// [default: each program's own: l3fwd 1024, testpmd the PMD's 2048].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(64..))]
    pub dpdk_queue_size: Option<u16>,
    /// Frames per generator batch (1..=256).
    #[arg(long, default_value_t = 64)]
    pub batch: u32,
    /// Directory for report.md, results.json and the SVG plots
    /// [default: target/xfwd-bench/e2e-DATE].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the JSON array instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Settings after defaults and `--quick`.
#[derive(Clone, Debug)]
struct Plan {
    a: E2eArgs,
    sizes: Vec<u16>,
    trial: Duration,
    drain: Duration,
    search: Settings,
    xfwd_bin: Option<Result<PathBuf, String>>,
    route_file: Option<PathBuf>,
}

const UDP_PORT: u16 = 9;
const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

impl Plan {
    fn new(a: E2eArgs) -> Result<Plan> {
        let q = a.quick;
        let sizes = if !a.frame_sizes.is_empty() {
            a.frame_sizes.clone()
        } else if q {
            vec![64]
        } else {
            RFC2544_SIZES.to_vec()
        };
        for &s in &sizes {
            ensure!(
                (64..=1518).contains(&s),
                "frame size {s} is not in 64..=1518 (bytes including the 4-byte FCS)"
            );
        }
        ensure!(!a.systems.is_empty(), "--systems names no system");
        ensure!(!a.routes.is_empty(), "--routes names no table");
        let trial = a.trial.unwrap_or(if q { 0.5 } else { 2.0 });
        let drain = a.drain.unwrap_or(if q { 0.1 } else { 0.2 });
        let resolution = a.resolution.unwrap_or(if q { 5.0 } else { 1.0 });
        ensure!(
            trial.is_finite() && (0.05..=600.0).contains(&trial),
            "--trial {trial} is not in 0.05..=600 seconds"
        );
        ensure!(
            drain.is_finite() && (0.0..=10.0).contains(&drain),
            "--drain {drain} is not in 0..=10 seconds"
        );
        ensure!(
            resolution.is_finite() && (0.01..=50.0).contains(&resolution),
            "--resolution {resolution} is not in 0.01..=50 percent"
        );
        ensure!(
            (0.0..100.0).contains(&a.loss_tolerance),
            "--loss-tolerance is a percentage below 100"
        );
        ensure!((1..=100).contains(&a.runs), "--runs is not in 1..=100");
        ensure!(
            a.flows >= 1 && u32::from(a.flows) <= 65535 - 1024 + 1,
            "--flows {} is not in 1..=64512",
            a.flows
        );
        ensure!((1..=256).contains(&a.batch), "--batch is not in 1..=256");
        crate::forward::check_cpus(a.gen_cpu, a.fwd_cpu)?;
        let xfwd_bin = a
            .systems
            .contains(&E2eSystem::Xfwd)
            .then(|| find_xfwd(a.xfwd.as_deref()).map_err(|e| format!("{e:#}")));
        let route_file = if a.routes.contains(&Routes::Full) {
            Some(find_route_file(a.route_file.as_deref())?)
        } else {
            None
        };
        Ok(Plan {
            sizes,
            trial: Duration::from_secs_f64(trial),
            drain: Duration::from_secs_f64(drain),
            search: Settings {
                resolution: resolution / 100.0,
                max_trials: a.max_trials.unwrap_or(if q { 6 } else { 10 }),
                loss_tolerance: a.loss_tolerance / 100.0,
            },
            xfwd_bin,
            route_file,
            a,
        })
    }
}

/// `--route-file`, else the shared data directory next to the workspace.
pub fn find_route_file(given: Option<&Path>) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = match given {
        Some(p) => vec![p.to_path_buf()],
        None => vec![
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/routes-v4-1m.txt.gz"),
            PathBuf::from("/work/shared/data/routes-v4-1m.txt.gz"),
        ],
    };
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| anyhow!("no route table at {candidates:?}: pass --route-file PATH"))
}

/// Reads `PREFIX/LEN ...` lines (gzip if the name ends in .gz); other lines are skipped.
///
/// # Errors
///
/// When the file cannot be read or holds no route.
pub fn load_route_file(path: &Path) -> Result<Vec<(u32, u8)>> {
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(path)
            .output()
            .context("gzip")?;
        ensure!(out.status.success(), "gzip -dc {} failed", path.display());
        out.stdout
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
    };
    let mut routes = Vec::new();
    for line in String::from_utf8_lossy(&bytes).lines() {
        let Some((a, l)) = line
            .split_whitespace()
            .next()
            .and_then(|w| w.split_once('/'))
        else {
            continue;
        };
        let (Ok(addr), Ok(len)) = (a.parse::<Ipv4Addr>(), l.parse::<u8>()) else {
            continue;
        };
        if len > 32 {
            continue;
        }
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        routes.push((u32::from(addr) & mask, len));
    }
    ensure!(!routes.is_empty(), "no routes in {}", path.display());
    Ok(routes)
}

/// [`load_route_file`] without the prefixes that overlap the topology's link subnets (they
/// would take the hosts' own traffic away).
fn read_routes(path: &Path, topo: &Topology) -> Result<Vec<(u32, u8)>> {
    let links = [topo.iface(End::P0).subnet, topo.iface(End::P1).subnet];
    Ok(load_route_file(path)?
        .into_iter()
        .filter(|&(a, l)| {
            xfwd_testbed::Prefix::new(Ipv4Addr::from(a), l)
                .is_ok_and(|p| !links.iter().any(|s| s.overlaps(&p)))
        })
        .collect())
}

/// Installs `routes` via h2 in the router's kernel (`ip -force -batch -`, `route replace`).
fn install_kernel_routes(topo: &Topology, routes: &[(u32, u8)]) -> Result<()> {
    let via = topo.iface(End::H2).addr;
    let mut child = topo
        .router()
        .command("ip")
        .args(["-force", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("ip -batch")?;
    {
        let stdin = child.stdin.take().context("ip -batch stdin")?;
        let mut w = std::io::BufWriter::new(stdin);
        for &(a, l) in routes {
            writeln!(
                w,
                "route replace {}/{l} via {via} dev p1",
                Ipv4Addr::from(a)
            )?;
        }
        w.flush()?;
    }
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "ip -batch installing {} routes failed: {}",
        routes.len(),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .take(5)
            .collect::<Vec<_>>()
            .join("; ")
    );
    Ok(())
}

/// CPU use of the generator's and the forwarding CPU over a trial.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct CpuPair {
    pub generator: CpuShare,
    pub forwarding: CpuShare,
}

/// A running system with its traffic ends.
struct Bed<'t> {
    topo: &'t Topology,
    sink: Sink,
    generator: Generator,
    h1_if: u32,
    // Keep the system (and its helpers) alive while the bed is used.
    xfwd: Option<XfwdProc>,
    _dpdk: Option<DpdkProc>,
    _p0_pass: Option<Sink>,
}

/// Makes task `tid` (with `all`: every thread of process `tid`) SCHED_FIFO at `prio`; 0
/// does nothing.
fn realtime(prio: u8, tid: u32, all: bool) -> Result<()> {
    if prio == 0 {
        return Ok(());
    }
    let mut cmd = std::process::Command::new("chrt");
    if all {
        cmd.arg("-a");
    }
    let st = cmd
        .args(["-f", "-p", &prio.to_string(), &tid.to_string()])
        .stdout(Stdio::null())
        .status()
        .context("chrt (util-linux)")?;
    ensure!(st.success(), "chrt -f -p {prio} {tid} failed");
    Ok(())
}

/// Drop counters along the path, read before and after each trial to say where lost frames
/// died (the generator's own `xdp_xmit_errors` are read apart).
struct LossPoints {
    router_rx: u64,
    router_tx: u64,
    sink_rx: u64,
}

impl LossPoints {
    fn read(topo: &Topology) -> Result<LossPoints> {
        Ok(LossPoints {
            router_rx: veth_rx_drops(topo.router(), End::P0.ifname())?,
            router_tx: tx_dropped(topo.router(), End::P1.ifname())?,
            sink_rx: veth_rx_drops(topo.h2(), End::H2.ifname())?,
        })
    }
}

/// Where a trial's lost frames died: "lost N: p0 rx A, p1 tx B, sink rx C, ingress full D,
/// elsewhere E" (elsewhere: inside the system, e.g. a forwarder's own drops or frames still
/// queued after the drain).
pub fn loss_points(t: &Trial) -> String {
    let known = t.router_rx_drops + t.router_tx_drops + t.sink_rx_drops + t.ingress_ring_full;
    let stalls = t.worker_stalls.map_or(String::new(), |(n, ns)| {
        format!("; xfwd worker stalls {n} ({:.1} ms)", ns as f64 / 1e6)
    });
    format!(
        "lost {}: p0 rx {}, p1 tx {}, sink rx {}, ingress full {}, elsewhere {}{stalls}",
        t.lost,
        t.router_rx_drops,
        t.router_tx_drops,
        t.sink_rx_drops,
        t.ingress_ring_full,
        t.lost.saturating_sub(known)
    )
}

/// The sum of a veth's `rx_queue_N_drops` (frames its receive path dropped, XDP redirect
/// failures included; not the `XDP_DROP` verdicts of `rx_queue_N_xdp_drops`).
fn veth_rx_drops(ns: &xfwd_testbed::NetNs, dev: &str) -> Result<u64> {
    crate::forward::ethtool_sum(ns, dev, is_rx_queue_drops)
}

fn is_rx_queue_drops(key: &str) -> bool {
    key.starts_with("rx_queue_") && key.ends_with("_drops") && !key.contains("xdp")
}

/// A device's `tx_dropped` (`ip -s -j link`).
fn tx_dropped(ns: &xfwd_testbed::NetNs, dev: &str) -> Result<u64> {
    let out = ns.exec(&["ip", "-s", "-j", "link", "show", "dev", dev])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("parsing `ip -s -j link show dev {dev}`"))?;
    v[0]["stats64"]["tx"]["dropped"]
        .as_u64()
        .with_context(|| format!("no stats64.tx.dropped for {dev}"))
}

/// Sends at `load` for `dur` from the calling thread (inside h1's namespace), pinned to `cpu`;
/// returns frames sent and the time taken.
fn pace(
    g: &mut Generator,
    ifindex: u32,
    cpu: usize,
    batch: u32,
    load: Load,
    dur: Duration,
    rt: u8,
) -> Result<(u64, Duration)> {
    ensure!(
        core_affinity::set_for_current(core_affinity::CoreId { id: cpu }),
        "cannot pin the generator thread to CPU {cpu}"
    );
    realtime(rt, procfs::current_tid()?, false)?;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut skipped = 0u64;
    loop {
        let el = start.elapsed();
        if el >= dur {
            break;
        }
        match load {
            Load::FlatOut => sent += g.run(ifindex, batch, FLAT_OUT_CHUNK)?,
            Load::Rate(r) => {
                let target = ((r * el.as_secs_f64()) as u64).saturating_sub(skipped);
                let mut deficit = target.saturating_sub(sent);
                if deficit > MAX_BACKLOG {
                    skipped += deficit - MAX_BACKLOG;
                    deficit = MAX_BACKLOG;
                }
                if deficit >= MIN_CHUNK.min(batch.into()) {
                    let n = u32::try_from(deficit.min(MAX_CHUNK)).unwrap_or(1);
                    sent += g.run(ifindex, batch.min(n), n)?;
                } else {
                    // Below one chunk ahead: yield the CPU briefly (timer slack ~50 µs).
                    let wait = (MIN_CHUNK - deficit) as f64 / r;
                    if wait > 100e-6 {
                        std::thread::sleep(Duration::from_secs_f64((wait / 2.0).min(1e-3)));
                    } else {
                        std::hint::spin_loop();
                    }
                }
            }
        }
    }
    Ok((sent, start.elapsed()))
}

/// HdrHistogram of the sink's bucket counts `after - before` (each bucket at its midpoint).
fn latency_of(before: &[u64], after: &[u64]) -> Result<Option<Latency>> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 1 << 42, 3)
        .map_err(|e| anyhow!("latency histogram: {e}"))?;
    let mut max = 0;
    for (b, (x, y)) in before.iter().zip(after).enumerate() {
        let n = y.saturating_sub(*x);
        if n == 0 {
            continue;
        }
        let (low, width) = latency_bucket_range(u32::try_from(b).unwrap_or(u32::MAX));
        let mid = (low + width / 2).max(1);
        h.record_n(mid, n)
            .map_err(|e| anyhow!("latency histogram: {e}"))?;
        max = low + width - 1;
    }
    if h.is_empty() {
        return Ok(None);
    }
    Ok(Some(Latency {
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: max.max(1),
        samples: h.len(),
    }))
}

impl Bed<'_> {
    /// xfwd's workers' stall count and nanoseconds so far; `None` for the other systems.
    fn worker_stalls(&self) -> Result<Option<(u64, u64)>> {
        let Some(x) = &self.xfwd else {
            return Ok(None);
        };
        let s = x.stats()?;
        Ok(Some(s.workers.iter().fold((0, 0), |(n, ns), w| {
            (n + w.stalls, ns + w.stall_ns)
        })))
    }

    fn trial(
        &mut self,
        plan: &Plan,
        load: Load,
        latency: bool,
        stop: &Stop,
    ) -> Result<(Trial, CpuPair)> {
        stop.check()?;
        let a = &plan.a;
        let s0 = self.sink.stats()?;
        let h0 = if latency {
            Some(self.sink.latency_counts()?)
        } else {
            None
        };
        let x0 = xdp_xmit_errors(self.topo.h1(), End::H1.ifname())?;
        let l0 = LossPoints::read(self.topo)?;
        let w0 = self.worker_stalls()?;
        let c0 = procfs::read_proc_stat()?;
        let (gen_cpu, batch, dur, h1_if, rt) =
            (a.gen_cpu, a.batch, plan.trial, self.h1_if, a.realtime);
        let g = &mut self.generator;
        let (sent, took) = self
            .topo
            .h1()
            .run(|| pace(g, h1_if, gen_cpu, batch, load, dur, rt))??;
        let c1 = procfs::read_proc_stat()?;
        stop.sleep(plan.drain)?;
        let s1 = self.sink.stats()?;
        let x1 = xdp_xmit_errors(self.topo.h1(), End::H1.ifname())?;
        let l1 = LossPoints::read(self.topo)?;
        let w1 = self.worker_stalls()?;
        let d = s1.since(&s0);
        let received = d.unique();
        let secs = took.as_secs_f64().max(1e-9);
        let latency_ns = match h0 {
            Some(h0) => latency_of(&h0, &self.sink.latency_counts()?)?,
            None => None,
        };
        let share = |c: usize| -> CpuShare {
            match (c0.get(&c), c1.get(&c)) {
                (Some(x), Some(y)) => y.since(x).shares(),
                _ => CpuTimes::default().shares(),
            }
        };
        Ok((
            Trial {
                target_pps: match load {
                    Load::FlatOut => None,
                    Load::Rate(r) => Some(r),
                },
                offered_pps: sent as f64 / secs,
                delivered_pps: received as f64 / secs,
                sent,
                received,
                lost: sent.saturating_sub(received),
                reordered: d.reordered,
                duplicates: d.duplicates + d.too_late,
                ingress_ring_full: x1.saturating_sub(x0),
                router_rx_drops: l1.router_rx.saturating_sub(l0.router_rx),
                router_tx_drops: l1.router_tx.saturating_sub(l0.router_tx),
                sink_rx_drops: l1.sink_rx.saturating_sub(l0.sink_rx),
                worker_stalls: w0
                    .zip(w1)
                    .map(|(a, b)| (b.0.saturating_sub(a.0), b.1.saturating_sub(a.1))),
                latency_ns,
            },
            CpuPair {
                generator: share(a.gen_cpu),
                forwarding: share(a.fwd_cpu),
            },
        ))
    }
}

/// Result of one system for one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct SystemResult {
    pub system: String,
    /// `ok`, `not run: WHY` or `failed: WHY`.
    pub status: String,
    /// RFC 2544 throughput (median over runs), frames/s.
    pub zero_loss_pps: Option<f64>,
    /// Delivered rate under overload (generator flat out), median, frames/s.
    pub max_pps: Option<f64>,
    /// The generator's flat-out rate in the same trials.
    pub offered_max_pps: Option<f64>,
    /// The system lost nothing even flat out: the throughput is the generator's.
    pub generator_bound: bool,
    /// One-way latency at 90 % of the throughput rate (the median run's).
    pub latency_ns: Option<Latency>,
    /// Latency at 10 / 50 / 90 % of the throughput rate (the median run's).
    pub latency_by_load: Vec<LoadLatency>,
    /// Loss at 110 % of the throughput rate, percent (the median run's).
    pub loss_pct_at_110: Option<f64>,
    /// Reordered and duplicated frames over all trials.
    pub reordered: u64,
    pub duplicates: u64,
    /// /proc/stat shares of the generator's and forwarding CPU under overload and at 90 %.
    pub cpu: BTreeMap<String, CpuPair>,
    /// Throughput of each run.
    pub runs_zero_loss_pps: Vec<f64>,
    /// Every trial of the median run.
    pub trials: Option<Outcome>,
}

/// Latency at one load.
#[derive(Clone, Debug, Serialize)]
pub struct LoadLatency {
    pub load_pct: u32,
    pub offered_pps: f64,
    pub loss_pct: f64,
    pub latency_ns: Option<Latency>,
}

impl SystemResult {
    fn unavailable(system: E2eSystem, status: String) -> SystemResult {
        SystemResult {
            system: system.name().to_owned(),
            status,
            zero_loss_pps: None,
            max_pps: None,
            offered_max_pps: None,
            generator_bound: false,
            latency_ns: None,
            latency_by_load: Vec::new(),
            loss_pct_at_110: None,
            reordered: 0,
            duplicates: 0,
            cpu: BTreeMap::new(),
            runs_zero_loss_pps: Vec::new(),
            trials: None,
        }
    }

    fn from_runs(system: E2eSystem, runs: Vec<(Outcome, BTreeMap<String, CpuPair>)>) -> Self {
        let mut r = SystemResult::unavailable(system, "ok".to_owned());
        if runs.is_empty() {
            r.status = "failed: no run completed".to_owned();
            return r;
        }
        let zl: Vec<f64> = runs.iter().map(|(o, _)| o.zero_loss_pps).collect();
        let med = summary::median(&zl).unwrap_or(0.0);
        // The run closest to the median carries the latency and CPU detail.
        let (o, cpu) = runs
            .iter()
            .min_by(|a, b| {
                (a.0.zero_loss_pps - med)
                    .abs()
                    .total_cmp(&(b.0.zero_loss_pps - med).abs())
            })
            .cloned()
            .unwrap_or_default();
        r.zero_loss_pps = Some(med);
        r.max_pps = summary::median_of(&runs, |(o, _)| o.overload.delivered_pps);
        r.offered_max_pps = summary::median_of(&runs, |(o, _)| o.overload.offered_pps);
        r.generator_bound = runs.iter().all(|(o, _)| o.generator_bound);
        r.latency_by_load = o
            .latency
            .iter()
            .map(|p| LoadLatency {
                load_pct: p.load_pct,
                offered_pps: p.trial.offered_pps,
                loss_pct: p.trial.loss_pct(),
                latency_ns: p.trial.latency_ns,
            })
            .collect();
        r.latency_ns = o
            .latency
            .iter()
            .find(|p| p.load_pct == 90)
            .and_then(|p| p.trial.latency_ns);
        r.loss_pct_at_110 = o.overload_110.as_ref().map(Trial::loss_pct);
        for (o, _) in &runs {
            let all = std::iter::once(&o.overload)
                .chain(&o.search)
                .chain(o.latency.iter().map(|p| &p.trial))
                .chain(&o.overload_110);
            for t in all {
                r.reordered += t.reordered;
                r.duplicates += t.duplicates;
            }
        }
        r.cpu = cpu;
        r.runs_zero_loss_pps = zl;
        r.trials = Some(o);
        r
    }
}

/// One scenario: a frame size and a route table.
#[derive(Clone, Debug, Serialize)]
pub struct Scenario {
    pub frame_size: u16,
    pub routes: String,
    pub route_count: usize,
    pub flows: u16,
    pub results: Vec<SystemResult>,
}

/// Everything `e2e` measured.
#[derive(Clone, Debug)]
pub struct E2eReport {
    pub command: String,
    pub date: String,
    pub machine: String,
    pub kernel: String,
    pub trial_s: f64,
    pub scenarios: Vec<Scenario>,
    pub interrupted: bool,
}

/// Sets up `system` on a fresh topology with `routes`.
fn setup<'t>(
    plan: &Plan,
    system: E2eSystem,
    topo: &'t Topology,
    routes: &[(u32, u8)],
    l3fwd: Option<&Path>,
    stop: &Stop,
) -> Result<Bed<'t>> {
    let a = &plan.a;
    let h1_if = ifindex(topo.h1(), End::H1.ifname())?;
    let h2_if = ifindex(topo.h2(), End::H2.ifname())?;
    let p0_if = ifindex(topo.router(), End::P0.ifname())?;
    let counted = SinkConfig {
        udp_port: Some(UDP_PORT),
        action: SinkAction::Drop,
    };
    let mut sink = Sink::load(&counted).context("loading the sink")?;
    sink.track_flows(u32::from(a.flows))?;
    topo.h2()
        .run(|| sink.attach(h2_if, AttachMode::Native))?
        .context("attaching the sink to h2's eth0")?;
    if matches!(system, E2eSystem::Xfwd | E2eSystem::Linux) && !routes.is_empty() {
        install_kernel_routes(topo, routes)?;
    }
    topo.resolve_neighbours()?;
    let (mut xfwd, mut dpdk_proc, mut p0_pass) = (None, None, None);
    match system {
        E2eSystem::Linux => {
            let mut pass = Sink::load(&SinkConfig {
                action: SinkAction::Pass,
                ..counted
            })?;
            topo.router()
                .run(|| pass.attach(p0_if, AttachMode::Native))?
                .context("attaching the pass-through program to p0")?;
            p0_pass = Some(pass);
        }
        E2eSystem::Xfwd => {
            let bin = match &plan.xfwd_bin {
                Some(Ok(b)) => b,
                Some(Err(e)) => bail!("{e}"),
                None => bail!("no xfwd binary resolved"),
            };
            let ready = Duration::from_secs(if routes.is_empty() { 20 } else { 300 });
            xfwd = Some(XfwdProc::start_within(bin, topo, a.fwd_cpu, &a.xfwd_arg, stop, ready)?.0);
        }
        E2eSystem::DpdkL3fwd => {
            let bin = l3fwd.context("l3fwd was not built")?;
            let dir = std::env::temp_dir().join(format!("{}-l3fwd", topo.router().name()));
            std::fs::create_dir_all(&dir)?;
            let rules = dpdk::write_l3fwd_rules(&dir, topo, routes)?;
            let started = DpdkProc::l3fwd(bin, topo, a.fwd_cpu, &rules, a.dpdk_queue_size);
            // l3fwd reads its rule files at start only (the 1 M one is ~20 MB).
            let _ = std::fs::remove_dir_all(&dir);
            dpdk_proc = Some(started?);
        }
        E2eSystem::DpdkTestpmd => {
            dpdk_proc = Some(DpdkProc::testpmd(
                topo,
                a.gen_cpu,
                a.fwd_cpu,
                a.dpdk_queue_size,
            )?);
        }
    }
    if plan.a.rx_napi == RxNapi::Threaded {
        let pid = napi::thread_and_pin(topo.router(), End::P0.ifname(), a.fwd_cpu)?;
        // Above the forwarders: a busy-polling forwarder at the same FIFO priority would never
        // let the receive path run (on a NIC, the receive DMA does not need the core).
        realtime(a.realtime.saturating_add(1).min(99), pid, false)?;
    }
    if let Some(x) = &xfwd {
        realtime(a.realtime, x.worker_tid()?, false)?;
    }
    if let Some(d) = &dpdk_proc {
        realtime(a.realtime, d.pid(), true)?;
    }
    if matches!(system, E2eSystem::Xfwd | E2eSystem::Linux) {
        let h2_addr = topo.iface(End::H2).addr;
        let ping = xfwd_testbed::ping(topo.h1(), h2_addr, 2, None)?;
        ensure!(
            ping.received > 0,
            "{} does not forward: no ping from h1 to {h2_addr} came back",
            system.name()
        );
    }
    let before = traffic::own_bpf_programs()?;
    let generator = Generator::load().context("loading the generator")?;
    let loaded: Vec<u32> = traffic::own_bpf_programs()?
        .difference(&before)
        .copied()
        .collect();
    match loaded.as_slice() {
        [id] => traffic::anchor_in_dispatcher(topo.h1(), *id)?,
        other => bail!("expected one new BPF program for the generator, found {other:?}"),
    }
    Ok(Bed {
        topo,
        sink,
        generator,
        h1_if,
        xfwd,
        _dpdk: dpdk_proc,
        _p0_pass: p0_pass,
    })
}

/// Why a system cannot run here, if it cannot.
fn unavailable(plan: &Plan, system: E2eSystem) -> Option<String> {
    let have = |bin: &str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    match system {
        E2eSystem::Xfwd => match &plan.xfwd_bin {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        },
        E2eSystem::Linux => None,
        E2eSystem::DpdkTestpmd => (!have("dpdk-testpmd"))
            .then(|| "dpdk-testpmd not installed (Debian package dpdk)".to_owned()),
        E2eSystem::DpdkL3fwd => (!have("pkg-config") || !have("make") || !have("cc"))
            .then(|| "pkg-config, make or cc missing to build l3fwd".to_owned()),
    }
}

/// Runs the benchmark.
///
/// # Errors
///
/// Bad options; a system that fails is reported in its results.
pub fn run(args: E2eArgs, command: String, stop: &Stop) -> Result<E2eReport> {
    let plan = Plan::new(args)?;
    let a = &plan.a;
    let mut report = E2eReport {
        command,
        date: summary::now_utc(),
        machine: machine(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        trial_s: plan.trial.as_secs_f64(),
        scenarios: Vec::new(),
        interrupted: false,
    };
    let total = (a.routes.len() * a.systems.len() * plan.sizes.len()) as u64 * u64::from(a.runs);
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let say = |m: String| {
        if pb.is_hidden() {
            eprintln!("xfwd-bench: {m}");
        } else {
            pb.println(m);
        }
    };
    // (routes, size) -> system -> runs
    type Runs = Vec<(Outcome, BTreeMap<String, CpuPair>)>;
    let mut results: BTreeMap<(Routes, u16), BTreeMap<E2eSystem, Result<Runs, String>>> =
        BTreeMap::new();
    let mut route_counts = BTreeMap::new();
    let mut l3fwd: Option<Result<PathBuf, String>> = None;
    'outer: for &routes in &a.routes {
        for &system in &a.systems {
            if let Some(why) = unavailable(&plan, system) {
                say(format!("{}: not run: {why}", system.name()));
                for &s in &plan.sizes {
                    results
                        .entry((routes, s))
                        .or_default()
                        .insert(system, Err(format!("not run: {why}")));
                }
                pb.inc(plan.sizes.len() as u64 * u64::from(a.runs));
                continue;
            }
            if system == E2eSystem::DpdkL3fwd && l3fwd.is_none() {
                pb.set_message("building DPDK l3fwd");
                l3fwd = Some(dpdk::build_l3fwd().map_err(|e| format!("{e:#}")));
            }
            for run in 1..=a.runs {
                let outcome = (|| -> Result<()> {
                    pb.set_message(format!(
                        "{} routes={}: setting up",
                        system.name(),
                        routes.name()
                    ));
                    let topo = Topology::builder("xe")
                        .router_forwarding(system == E2eSystem::Linux)
                        .build()?;
                    let table = match routes {
                        Routes::One => Vec::new(),
                        Routes::Full => {
                            let path = plan.route_file.as_deref().context("no route file")?;
                            read_routes(path, &topo)?
                        }
                    };
                    route_counts.insert(routes, table.len() + topo.behind_h2().len());
                    let l3 = match &l3fwd {
                        Some(Ok(p)) => Some(p.as_path()),
                        Some(Err(e)) if system == E2eSystem::DpdkL3fwd => {
                            bail!("building l3fwd: {e}")
                        }
                        _ => None,
                    };
                    let mut bed = setup(&plan, system, &topo, &table, l3, stop)?;
                    for &size in &plan.sizes {
                        let template = UdpTemplate {
                            dst_port: UDP_PORT,
                            frame_len: size - FCS,
                            flows: a.flows,
                            ..UdpTemplate::new(
                                topo.iface(End::H1).mac,
                                topo.iface(End::P0).mac,
                                topo.iface(End::H1).addr,
                                DST,
                            )
                        };
                        bed.generator.configure(&template)?;
                        bed.generator.set_timestamp_every(1)?;
                        // Liveness: something must get through before a search means anything.
                        let (probe, _) = bed.trial(
                            &Plan {
                                trial: Duration::from_millis(200),
                                ..plan.clone()
                            },
                            Load::FlatOut,
                            false,
                            stop,
                        )?;
                        ensure!(
                            probe.received > 0,
                            "{} forwarded none of {} frames of {size} bytes{}",
                            system.name(),
                            probe.sent,
                            bed._dpdk.as_ref().map_or(String::new(), |d| format!(
                                "; its log ends:\n{}",
                                d.log_tail(30)
                            ))
                        );
                        let mut cpu = BTreeMap::new();
                        let label = format!(
                            "{} {size}B routes={} run {run}",
                            system.name(),
                            routes.name()
                        );
                        let outcome = rfc2544::search(
                            plan.search,
                            |load, lat| {
                                let (t, c) = bed.trial(&plan, load, lat, stop)?;
                                match load {
                                    Load::FlatOut => {
                                        cpu.insert("overload".to_owned(), c);
                                    }
                                    Load::Rate(_) if lat => {
                                        cpu.insert("latency_last".to_owned(), c);
                                    }
                                    Load::Rate(_) => {}
                                }
                                Ok::<_, anyhow::Error>(t)
                            },
                            |what| pb.set_message(format!("{label}: {what}")),
                        )?;
                        if let Some(c) = cpu.remove("latency_last") {
                            cpu.insert("at_90pct".to_owned(), c);
                        }
                        let lowest_loss = outcome
                            .search
                            .iter()
                            .filter(|t| !t.zero_loss(plan.search.loss_tolerance))
                            .min_by(|a, b| a.offered_pps.total_cmp(&b.offered_pps))
                            .map(|t| {
                                format!(
                                    "; lowest lossy trial {:.3} Mpps: {}",
                                    t.offered_pps / 1e6,
                                    loss_points(t)
                                )
                            })
                            .unwrap_or_default();
                        say(format!(
                            "{label}: zero-loss {:.3} Mpps, overload {:.3} of {:.3} Mpps offered{}{lowest_loss}",
                            outcome.zero_loss_pps / 1e6,
                            outcome.overload.delivered_pps / 1e6,
                            outcome.overload.offered_pps / 1e6,
                            if outcome.generator_bound {
                                " (generator-bound)"
                            } else {
                                ""
                            }
                        ));
                        let slot = results
                            .entry((routes, size))
                            .or_default()
                            .entry(system)
                            .or_insert_with(|| Ok(Vec::new()));
                        if let Ok(v) = slot {
                            v.push((outcome, cpu));
                        }
                        pb.inc(1);
                    }
                    Ok(())
                })();
                match outcome {
                    Ok(()) => {}
                    Err(e) if e.is::<Interrupted>() => {
                        report.interrupted = true;
                        break 'outer;
                    }
                    Err(e) => {
                        say(format!("{} run {run} failed: {e:#}", system.name()));
                        for &s in &plan.sizes {
                            let slot = results
                                .entry((routes, s))
                                .or_default()
                                .entry(system)
                                .or_insert_with(|| Ok(Vec::new()));
                            if slot.as_ref().is_ok_and(Vec::is_empty) {
                                *slot = Err(format!("failed: {e:#}"));
                            }
                        }
                        break;
                    }
                }
            }
        }
    }
    pb.finish_and_clear();
    for ((routes, size), by_system) in results {
        let mut out = Vec::new();
        for &system in &a.systems {
            out.push(match by_system.get(&system) {
                Some(Ok(runs)) => SystemResult::from_runs(system, runs.clone()),
                Some(Err(why)) => SystemResult::unavailable(system, why.clone()),
                None => SystemResult::unavailable(system, "not run: interrupted".to_owned()),
            });
        }
        report.scenarios.push(Scenario {
            frame_size: size,
            routes: routes.name().to_owned(),
            route_count: route_counts.get(&routes).copied().unwrap_or(0),
            flows: a.flows,
            results: out,
        });
    }
    Ok(report)
}

fn mpps(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{:.3}", v / 1e6))
}

fn us(v: Option<u64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{:.1}", v as f64 / 1e3))
}

impl E2eReport {
    /// The table for people (Markdown).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "xfwd-bench e2e, {} ({}, kernel {}), trials of {} s\n",
            self.date, self.machine, self.kernel, self.trial_s
        );
        let _ = writeln!(
            s,
            "| routes | frame | system | zero-loss Mpps | overload Mpps (offered) | lat p50/p99/p99.9/max µs at 90 % | loss at 110 % | fwd CPU usr/sys/sirq at 90 % |"
        );
        let _ = writeln!(s, "|---|---:|---|---:|---:|---|---:|---|");
        for sc in &self.scenarios {
            for r in &sc.results {
                if r.status != "ok" {
                    let line = r.status.lines().next().unwrap_or_default();
                    let short: String = line.chars().take(160).collect();
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {}{} | | | | |",
                        sc.routes,
                        sc.frame_size,
                        r.system,
                        short.replace('|', "/"),
                        if short.len() < r.status.len() {
                            " (see JSON)"
                        } else {
                            ""
                        }
                    );
                    continue;
                }
                let l = r.latency_ns;
                let cpu = r.cpu.get("at_90pct").map_or("-".to_owned(), |c| {
                    format!(
                        "{:.0}/{:.0}/{:.0} %",
                        c.forwarding.user * 100.0,
                        c.forwarding.system * 100.0,
                        c.forwarding.softirq * 100.0
                    )
                });
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {}{} | {} ({}) | {}/{}/{}/{} | {} | {} |",
                    sc.routes,
                    sc.frame_size,
                    r.system,
                    mpps(r.zero_loss_pps),
                    if r.generator_bound {
                        " (gen-bound)"
                    } else {
                        ""
                    },
                    mpps(r.max_pps),
                    mpps(r.offered_max_pps),
                    us(l.map(|l| l.p50)),
                    us(l.map(|l| l.p99)),
                    us(l.map(|l| l.p999)),
                    us(l.map(|l| l.max)),
                    r.loss_pct_at_110
                        .map_or("-".to_owned(), |v| format!("{v:.1} %")),
                    cpu
                );
            }
        }
        s.push_str(&self.render_cpu());
        if self.interrupted {
            s.push_str("\n(interrupted: partial results)\n");
        }
        s
    }

    /// Where each system spends the two CPUs (`/proc/stat`, user/system/softirq/idle/steal %)
    /// flat out and at 90 % of its zero-loss rate, and where its lowest-rate lossy search trial
    /// lost frames (the median run's).
    fn render_cpu(&self) -> String {
        let share = |c: &CpuShare| {
            format!(
                "{:.0}/{:.0}/{:.0}/{:.0}/{:.0}",
                c.user * 100.0,
                c.system * 100.0,
                c.softirq * 100.0,
                c.idle * 100.0,
                c.steal * 100.0
            )
        };
        let mut s = String::from(
            "\nPer CPU, % user/system/softirq/idle/steal (generator CPU; forwarding CPU), and where \
             the lowest-rate lossy search trial lost its frames:\n\n\
             | routes | frame | system | flat out: gen | flat out: fwd | at 90 %: gen | at 90 %: fwd | lowest lossy trial |\n\
             |---|---:|---|---|---|---|---|---|\n",
        );
        for sc in &self.scenarios {
            for r in sc.results.iter().filter(|r| r.status == "ok") {
                let pair = |k: &str| {
                    r.cpu.get(k).map_or(["-".to_owned(), "-".to_owned()], |c| {
                        [share(&c.generator), share(&c.forwarding)]
                    })
                };
                let [og, of] = pair("overload");
                let [ng, nf] = pair("at_90pct");
                let lossy = r
                    .trials
                    .as_ref()
                    .and_then(|o| {
                        o.search
                            .iter()
                            .filter(|t| t.lost > 0)
                            .min_by(|a, b| a.offered_pps.total_cmp(&b.offered_pps))
                    })
                    .map_or("-".to_owned(), |t| {
                        format!("{:.3} Mpps, {}", t.offered_pps / 1e6, loss_points(t))
                    });
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {og} | {of} | {ng} | {nf} | {lossy} |",
                    sc.routes, sc.frame_size, r.system
                );
            }
        }
        s
    }

    /// The JSON array (one object per scenario).
    pub fn json(&self) -> serde_json::Value {
        serde_json::to_value(&self.scenarios).unwrap_or(serde_json::Value::Null)
    }

    /// Writes report.md, results.json and the plots into `dir`; returns the files written.
    ///
    /// # Errors
    ///
    /// When a file cannot be written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut files = Vec::new();
        let mut md = format!(
            "# xfwd-bench e2e\n\n`{}`\n\n{}",
            self.command,
            self.render()
        );
        let json = dir.join("results.json");
        std::fs::write(&json, format!("{:#}\n", self.json()))?;
        files.push(json);
        let systems: Vec<String> = {
            let mut v: Vec<String> = Vec::new();
            for sc in &self.scenarios {
                for r in &sc.results {
                    if !v.contains(&r.system) {
                        v.push(r.system.clone());
                    }
                }
            }
            v
        };
        let tables: Vec<String> = {
            let mut v: Vec<String> = self.scenarios.iter().map(|s| s.routes.clone()).collect();
            v.dedup();
            v
        };
        md.push_str("\n## Plots\n\n");
        for t in &tables {
            let scen: Vec<&Scenario> = self.scenarios.iter().filter(|s| &s.routes == t).collect();
            let chart = Chart {
                title: format!("RFC 2544 throughput, {t} route(s)"),
                x_label: "frame size (bytes)".into(),
                y_label: "zero-loss Mpps".into(),
                x_ticks: scen
                    .iter()
                    .map(|s| (f64::from(s.frame_size), s.frame_size.to_string()))
                    .collect(),
                series: systems
                    .iter()
                    .enumerate()
                    .map(|(i, sys)| Series {
                        name: sys.clone(),
                        points: scen
                            .iter()
                            .filter_map(|s| {
                                let r = s.results.iter().find(|r| &r.system == sys)?;
                                Some((f64::from(s.frame_size), r.zero_loss_pps? / 1e6))
                            })
                            .collect(),
                        dashed: false,
                        colour: i,
                    })
                    .collect(),
            };
            let name = format!("throughput-routes-{t}.svg");
            std::fs::write(dir.join(&name), chart.render())?;
            let _ = writeln!(md, "![throughput, {t} routes]({name})\n");
            files.push(dir.join(&name));
            for s in &scen {
                let mut series = Vec::new();
                for (i, sys) in systems.iter().enumerate() {
                    let Some(r) = s.results.iter().find(|r| &r.system == sys) else {
                        continue;
                    };
                    for (pname, dashed, f) in [
                        ("p50", false, (|l: &Latency| l.p50) as fn(&Latency) -> u64),
                        ("p99", true, |l: &Latency| l.p99),
                    ] {
                        series.push(Series {
                            name: format!("{sys} {pname}"),
                            points: r
                                .latency_by_load
                                .iter()
                                .filter_map(|p| {
                                    Some((f64::from(p.load_pct), f(&p.latency_ns?) as f64 / 1e3))
                                })
                                .collect(),
                            dashed,
                            colour: i,
                        });
                    }
                }
                let chart = Chart {
                    title: format!("One-way latency vs load, {} B, {t} route(s)", s.frame_size),
                    x_label: "load (% of each system's zero-loss rate)".into(),
                    y_label: "latency (µs)".into(),
                    x_ticks: rfc2544::LATENCY_LOADS
                        .iter()
                        .map(|p| (f64::from(*p), format!("{p} %")))
                        .collect(),
                    series,
                };
                let name = format!("latency-{}B-routes-{t}.svg", s.frame_size);
                std::fs::write(dir.join(&name), chart.render())?;
                let _ = writeln!(md, "![latency, {} B, {t} routes]({name})\n", s.frame_size);
                files.push(dir.join(&name));
            }
        }
        let mdp = dir.join("report.md");
        std::fs::write(&mdp, md)?;
        files.push(mdp);
        Ok(files)
    }
}

/// `--out`, else `target/xfwd-bench/e2e-DATE` in the workspace.
pub fn out_dir(a: &E2eArgs, date: &str) -> PathBuf {
    a.out.clone().unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/xfwd-bench")
            .join(format!("e2e-{}", date.replace([':', ' '], "")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_rx_drops_sum_queues_not_xdp_verdicts() {
        let text = "NIC statistics:\n     peer_ifindex: 7\n     rx_queue_0_drops: 12\n     \
                    rx_queue_0_xdp_drops: 900\n     rx_queue_1_drops: 3\n     \
                    tx_queue_0_xdp_xmit_errors: 5\n";
        let sum = |t| crate::forward::parse_ethtool_sum(t, is_rx_queue_drops);
        assert_eq!(sum(text), 15);
        assert_eq!(sum(""), 0);
    }

    #[test]
    fn latency_from_bucket_deltas() {
        let n = xfwd_ebpf::LAT_BUCKETS as usize;
        let before = vec![0u64; n];
        let mut after = vec![0u64; n];
        after[xfwd_ebpf::latency_bucket(10_000) as usize] = 98;
        after[xfwd_ebpf::latency_bucket(50_000) as usize] = 1;
        after[xfwd_ebpf::latency_bucket(1_000_000) as usize] = 1;
        let l = latency_of(&before, &after).unwrap().unwrap();
        assert_eq!(l.samples, 100);
        assert!((9_800..=10_300).contains(&l.p50), "{l:?}");
        assert!((9_800..=10_300).contains(&l.p90), "{l:?}");
        assert!((49_000..=51_000).contains(&l.p99), "{l:?}");
        assert!((980_000..=1_020_000).contains(&l.max), "{l:?}");
        assert!(latency_of(&before, &before).unwrap().is_none());
    }

    fn outcome(zl: f64) -> Outcome {
        Outcome {
            zero_loss_pps: zl,
            overload: Trial {
                delivered_pps: zl * 1.1,
                offered_pps: 5e6,
                ..Trial::default()
            },
            ..Outcome::default()
        }
    }

    #[test]
    fn medians_over_runs_and_json_shape() {
        let runs = vec![
            (outcome(1e6), BTreeMap::new()),
            (outcome(3e6), BTreeMap::new()),
            (outcome(2e6), BTreeMap::new()),
        ];
        let r = SystemResult::from_runs(E2eSystem::Xfwd, runs);
        assert_eq!(r.zero_loss_pps, Some(2e6));
        assert_eq!(r.max_pps, Some(2.2e6));
        assert_eq!(r.trials.as_ref().unwrap().zero_loss_pps, 2e6);
        let report = E2eReport {
            command: "x".into(),
            date: "d".into(),
            machine: "m".into(),
            kernel: "k".into(),
            trial_s: 1.0,
            scenarios: vec![Scenario {
                frame_size: 64,
                routes: "1".into(),
                route_count: 3,
                flows: 1,
                results: vec![
                    r,
                    SystemResult::unavailable(E2eSystem::DpdkL3fwd, "not run: why".into()),
                ],
            }],
            interrupted: false,
        };
        let j = report.json();
        let first = &j.as_array().unwrap()[0];
        assert_eq!(first["frame_size"], 64);
        assert_eq!(first["results"][0]["system"], "xfwd");
        assert_eq!(first["results"][0]["zero_loss_pps"], 2e6);
        assert_eq!(first["results"][1]["status"], "not run: why");
        let text = report.render();
        assert!(text.contains("| 1 | 64 | dpdk-l3fwd | not run: why |"));
        let dir = std::env::temp_dir().join(format!("xfwd-bench-e2e-{}", std::process::id()));
        let files = report.write(&dir).unwrap();
        assert!(files.iter().any(|f| f.ends_with("throughput-routes-1.svg")));
        assert!(files.iter().any(|f| f.ends_with("report.md")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn quick_plan_defaults() {
        let a = E2eArgs {
            systems: vec![E2eSystem::Linux],
            frame_sizes: Vec::new(),
            routes: vec![Routes::One],
            route_file: None,
            flows: 1,
            trial: None,
            drain: None,
            resolution: None,
            max_trials: None,
            loss_tolerance: 0.0,
            runs: 1,
            quick: true,
            gen_cpu: 0,
            fwd_cpu: 0,
            xfwd: None,
            xfwd_arg: Vec::new(),
            rx_napi: RxNapi::Threaded,
            realtime: 0,
            dpdk_queue_size: None,
            batch: 64,
            out: None,
            json: false,
        };
        let p = Plan::new(a.clone()).unwrap();
        assert_eq!(p.sizes, vec![64]);
        assert_eq!(p.trial, Duration::from_millis(500));
        assert!(
            Plan::new(E2eArgs {
                frame_sizes: vec![63],
                ..a.clone()
            })
            .is_err()
        );
        assert!(
            Plan::new(E2eArgs { quick: false, ..a })
                .unwrap()
                .sizes
                .len()
                == 7
        );
    }
}

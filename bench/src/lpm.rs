//! `xfwd-bench lpm`: the IPv4 longest-prefix-match structures on a full routing table, xfwd's
//! [`Dir16`] against the `prefix-trie` and `ip_network_table` crates and DPDK's `rte_lpm` and
//! `rte_fib` (through `dpdk-test-fib`, on the same route file and the same addresses) in one run.
//!
//! Measured, each the median of `--runs` runs:
//! - `ns_per_lookup_random`: batch lookups of addresses drawn uniformly from the IPv4 space;
//! - `ns_per_lookup_in_table`: batch lookups of addresses inside the table's routes, drawn the
//!   way `dpdk-test-fib` draws them (one random host in each route, routes in file order);
//! - `ns_per_lookup_dependent`: one lookup at a time, each address depending on the previous
//!   answer (latency, not throughput);
//! - `build_ms`: the whole table from scratch; `bytes`: the lookup structure;
//! - `updates_per_s`: route deletes and re-adds; for xfwd with a reader thread looking up
//!   concurrently (the baselines cannot be read while they are written: single-threaded).
//!
//! Batches are [`xfwd::node::BATCH`] addresses, as the pipeline looks them up. The crates have no
//! batch API: their "batch" figure is a loop over the batch.

use std::collections::HashSet;
use std::hint::black_box;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;
use xfwd::fib::Rib;
use xfwd::fib::dir16::Dir16;
use xfwd::node::BATCH;

use crate::summary::median;

/// `xfwd-bench lpm` options.
#[derive(Args, Debug)]
pub struct LpmArgs {
    /// Route file: one `a.b.c.d/len next_hop` a line, gzip-compressed when it ends in `.gz`.
    /// Without it (or when it does not exist), a generated table with an Internet table's
    /// prefix-length distribution is used, and the report says so.
    #[arg(long)]
    pub table: Option<PathBuf>,
    /// Routes of the generated table (when no `--table`).
    #[arg(long, default_value_t = 1_000_000)]
    pub generated_routes: usize,
    /// Lookups per measurement.
    #[arg(long, default_value_t = 4_000_000)]
    pub lookups: usize,
    /// Runs of each measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Route deletes + re-adds in the update measurement.
    #[arg(long, default_value_t = 1_000_000)]
    pub updates: usize,
    /// Skip DPDK even when `dpdk-test-fib` is installed.
    #[arg(long)]
    pub no_dpdk: bool,
    /// Also measure `rte_lpm` (`dpdk-test-fib -c`). Its route adds are O(n) each: on a 1 M
    /// table one run takes about 5 minutes per address set, so it is opt-in and run once.
    #[arg(long)]
    pub dpdk_lpm: bool,
    /// `dpdk-test-fib` binary.
    #[arg(long, default_value = "dpdk-test-fib")]
    pub dpdk_test_fib: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One implementation's results (medians); `None` where it cannot be measured.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ImplResult {
    #[serde(rename = "impl")]
    pub name: String,
    pub ns_per_lookup_random: Option<f64>,
    pub ns_per_lookup_in_table: Option<f64>,
    pub ns_per_lookup_dependent: Option<f64>,
    pub build_ms: Option<f64>,
    pub bytes: Option<u64>,
    pub updates_per_s: Option<f64>,
}

impl ImplResult {
    fn new(name: &str) -> Self {
        ImplResult {
            name: name.to_owned(),
            ns_per_lookup_random: None,
            ns_per_lookup_in_table: None,
            ns_per_lookup_dependent: None,
            build_ms: None,
            bytes: None,
            updates_per_s: None,
        }
    }
}

/// The whole report, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct LpmReport {
    pub table: String,
    pub routes: usize,
    pub results: Vec<ImplResult>,
    /// What the reader should know (generated table, DPDK missing, ...). Not part of the
    /// issue's schema; extra fields are additive.
    pub notes: Vec<String>,
}

type Route = (u32, u8, u32);

/// Runs the benchmark.
///
/// # Errors
///
/// An unreadable route file, or a structure that cannot be built.
pub fn run(args: &LpmArgs) -> Result<LpmReport> {
    let mut notes = Vec::new();
    let (table, routes) = match &args.table {
        Some(p) if p.exists() => (p.display().to_string(), read_table(p)?),
        other => {
            let why = match other {
                Some(p) => format!("{} does not exist", p.display()),
                None => "no --table given".to_owned(),
            };
            notes.push(format!(
                "{why}: using a generated table of {} routes with an Internet table's prefix-length distribution",
                args.generated_routes
            ));
            (
                format!("generated:{}", args.generated_routes),
                generate_table(args.generated_routes),
            )
        }
    };
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let random: Vec<u32> = (0..args.lookups).map(|_| rng.next_u32()).collect();
    // DPDK's generator (`dpdk-test-fib` without `-t`): route after route in file order, a random
    // host inside each. On a table sorted by address this sweeps the address space.
    let in_table: Vec<u32> = (0..args.lookups)
        .map(|i| {
            let (p, l, _) = routes[i % routes.len()];
            p | (rng.next_u32() & !mask(l))
        })
        .collect();
    let runs = args.runs.max(1);
    let (xfwd, dir) = bench_xfwd(&routes, &random, &in_table, runs, args.updates)?;
    let mut results = vec![
        xfwd,
        bench_prefix_trie(&routes, &random, &in_table, runs, args.updates),
        bench_ip_network_table(&routes, &random, &in_table, runs, args.updates),
    ];
    if args.no_dpdk {
        notes.push("DPDK skipped (--no-dpdk)".to_owned());
    } else {
        // One xfwd measurement right before each DPDK one: on a shared machine the load moves
        // between runs, and only pairs measured together compare fairly.
        let mut paired: Vec<(f64, f64)> = Vec::new();
        let probe = || {
            let b = |a: &[u32]| batched(a, |b, o| dir.lookup_batch(b, o));
            // Warm first: DPDK looks up right after building (its table is in cache); ours was
            // just evicted by the previous dpdk-test-fib process.
            black_box(b(&random));
            black_box(b(&in_table));
            (time_ns(3, &random, b), time_ns(3, &in_table, b))
        };
        let dpdk = bench_dpdk(args, &routes, runs, probe, &mut paired);
        if !paired.is_empty() {
            let x = &mut results[0];
            x.ns_per_lookup_random = median(&paired.iter().map(|p| p.0).collect::<Vec<_>>());
            x.ns_per_lookup_in_table = median(&paired.iter().map(|p| p.1).collect::<Vec<_>>());
            notes.push(format!(
                "xfwd's random and in-table figures are the medians of the {} measurements taken \
                 each right before a DPDK run",
                paired.len()
            ));
        }
        match dpdk {
            Ok((mut r, mut n)) => {
                results.append(&mut r);
                notes.append(&mut n);
            }
            Err(e) => notes.push(format!("DPDK not measured: {e:#}")),
        }
    }
    Ok(LpmReport {
        table,
        routes: routes.len(),
        results,
        notes,
    })
}

fn mask(len: u8) -> u32 {
    xfwd::fib::lpm::mask(len)
}

/// xorshift64*: deterministic, fast, good enough to spread addresses.
struct XorShift(u64);

impl XorShift {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}

/// Reads `a.b.c.d/len next_hop` lines (gzip when the name ends in `.gz`).
pub fn read_table(path: &Path) -> Result<Vec<Route>> {
    let text = if path.extension().is_some_and(|e| e == "gz") {
        let out = Command::new("gzip")
            .arg("-dc")
            .arg(path)
            .output()
            .context("running gzip -dc (is gzip installed?)")?;
        if !out.status.success() {
            bail!("gzip -dc {} failed", path.display());
        }
        String::from_utf8(out.stdout).context("route file is not UTF-8")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    parse_table(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Parses `a.b.c.d/len next_hop` lines.
pub fn parse_table(text: &str) -> Result<Vec<Route>> {
    let mut routes = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parse = || -> Option<Route> {
            let (pfx, nh) = line.split_once(char::is_whitespace)?;
            let (a, l) = pfx.split_once('/')?;
            let a: Ipv4Addr = a.parse().ok()?;
            let l: u8 = l.parse().ok().filter(|l| *l <= 32)?;
            let nh: u32 = nh.trim().parse().ok().filter(|v| *v < (1 << 24) - 1)?;
            Some((a.to_bits() & mask(l), l, nh))
        };
        routes.push(parse().with_context(|| format!("line {}: {line:?}", n + 1))?);
    }
    Ok(routes)
}

/// A table with the 2025 full table's length distribution (57.7 % /24, 16 % /23, 12 % /22, the
/// rest spread over /8../21 and a few longer), unique prefixes.
pub fn generate_table(n: usize) -> Vec<Route> {
    const DIST: &[(u8, u32)] = &[
        (24, 577),
        (23, 160),
        (22, 120),
        (21, 40),
        (20, 35),
        (19, 20),
        (18, 10),
        (17, 6),
        (16, 20),
        (15, 3),
        (14, 2),
        (13, 1),
        (12, 1),
        (11, 1),
        (10, 1),
        (8, 1),
        (25, 1),
        (28, 1),
        (32, 1),
    ];
    let total: u32 = DIST.iter().map(|d| d.1).sum();
    let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
    let mut seen = HashSet::new();
    let mut routes = Vec::with_capacity(n);
    while routes.len() < n {
        let mut pick = (rng.next_u64() % u64::from(total)) as u32;
        let len = DIST
            .iter()
            .find(|d| {
                if pick < d.1 {
                    true
                } else {
                    pick -= d.1;
                    false
                }
            })
            .map_or(24, |d| d.0);
        let p = rng.next_u32() & mask(len);
        if seen.insert((p, len)) {
            routes.push((p, len, (rng.next_u32() % 512)));
        }
    }
    routes
}

/// Median ns per lookup of `f` over `addrs`, `runs` times.
fn time_ns(runs: usize, addrs: &[u32], mut f: impl FnMut(&[u32]) -> u32) -> f64 {
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        black_box(f(black_box(addrs)));
        v.push(t.elapsed().as_nanos() as f64 / addrs.len() as f64);
    }
    median(&v).unwrap_or(f64::NAN)
}

/// Batch lookups in pipeline-sized batches; the answers are folded so none is optimised away.
fn batched(addrs: &[u32], mut lookup_batch: impl FnMut(&[u32], &mut [u32])) -> u32 {
    let mut out = [0u32; BATCH];
    let mut acc = 0u32;
    for b in addrs.chunks(BATCH) {
        lookup_batch(b, &mut out);
        acc = acc.wrapping_add(out[0] ^ out[b.len() - 1]);
    }
    acc
}

/// Dependent lookups: each address is perturbed by the previous answer, so lookups cannot
/// overlap.
fn dependent(addrs: &[u32], mut lookup: impl FnMut(u32) -> u32) -> u32 {
    let mut r = 0u32;
    for &a in addrs {
        r = lookup(a ^ (r & 1));
    }
    r
}

/// Times a baseline that has only single lookups: batches are loops of them, then dependent.
fn time_single_lookups(
    r: &mut ImplResult,
    runs: usize,
    random: &[u32],
    in_table: &[u32],
    lookup: impl Fn(u32) -> u32,
) {
    let loop_batch = |a: &[u32]| {
        batched(a, |b, o| {
            b.iter()
                .zip(o.iter_mut())
                .for_each(|(x, y)| *y = lookup(*x))
        })
    };
    r.ns_per_lookup_random = Some(time_ns(runs, random, loop_batch));
    r.ns_per_lookup_in_table = Some(time_ns(runs, in_table, loop_batch));
    r.ns_per_lookup_dependent = Some(time_ns(runs, in_table, |a| dependent(a, &lookup)));
}

fn bench_xfwd(
    routes: &[Route],
    random: &[u32],
    in_table: &[u32],
    runs: usize,
    updates: usize,
) -> Result<(ImplResult, Arc<Dir16>)> {
    let mut r = ImplResult::new("xfwd");
    let mut builds = Vec::new();
    let mut rib = None;
    for _ in 0..runs {
        drop(rib.take());
        let t = Instant::now();
        let built = Rib::build(routes.iter().copied()).context("building the xfwd table")?;
        builds.push(t.elapsed().as_secs_f64() * 1e3);
        rib = Some(built);
    }
    let mut rib = rib.context("no run")?;
    r.build_ms = median(&builds);
    let dir: Arc<Dir16> = rib.dir().clone();
    r.bytes = Some(dir.bytes() as u64);
    r.ns_per_lookup_random = Some(time_ns(runs, random, |a| {
        batched(a, |b, o| dir.lookup_batch(b, o))
    }));
    r.ns_per_lookup_in_table = Some(time_ns(runs, in_table, |a| {
        batched(a, |b, o| dir.lookup_batch(b, o))
    }));
    r.ns_per_lookup_dependent = Some(time_ns(runs, in_table, |a| dependent(a, |x| dir.lookup(x))));
    // Updates: delete and re-add routes while a reader thread looks up without pause, holding
    // a grace period as a worker holds its snapshot, and publishing one every 1024 changes as
    // the control plane does per netlink batch.
    let picks = update_picks(routes, updates);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (dir, stop, addrs) = (
            dir.clone(),
            stop.clone(),
            in_table[..in_table.len().min(1 << 16)].to_vec(),
        );
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _held = dir.grace();
                n += u64::from(batched(&addrs, |b, o| dir.lookup_batch(b, o)) & 1);
            }
            n
        })
    };
    let mut rates = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mut ops = 0usize;
        for chunk in picks.chunks(512) {
            for &(p, l, _) in chunk {
                rib.remove(p, l).context("xfwd remove")?;
            }
            for &(p, l, v) in chunk {
                rib.insert(p, l, v).context("xfwd insert")?;
            }
            ops += 2 * chunk.len();
            dir.publish_grace();
        }
        rates.push(ops as f64 / t.elapsed().as_secs_f64());
    }
    stop.store(true, Ordering::Relaxed);
    black_box(reader.join().ok());
    r.updates_per_s = median(&rates);
    Ok((r, dir))
}

/// The routes the update measurement deletes and re-adds: distinct, spread over the table.
fn update_picks(routes: &[Route], updates: usize) -> Vec<Route> {
    let n = (updates / 2).clamp(1, routes.len());
    let step = (routes.len() / n).max(1);
    let mut seen = HashSet::new();
    routes
        .iter()
        .step_by(step)
        .filter(|r| seen.insert((r.0, r.1)))
        .take(n)
        .copied()
        .collect()
}

fn bench_prefix_trie(
    routes: &[Route],
    random: &[u32],
    in_table: &[u32],
    runs: usize,
    updates: usize,
) -> ImplResult {
    use ipnet::Ipv4Net;
    use prefix_trie::PrefixMap;
    let net = |p: u32, l: u8| Ipv4Net::new_assert(Ipv4Addr::from_bits(p), l);
    let mut r = ImplResult::new("prefix-trie");
    let mut builds = Vec::new();
    let mut map = PrefixMap::<Ipv4Net, u32>::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mut m = PrefixMap::<Ipv4Net, u32>::new();
        for &(p, l, v) in routes {
            m.insert(net(p, l), v);
        }
        builds.push(t.elapsed().as_secs_f64() * 1e3);
        map = m;
    }
    r.build_ms = median(&builds);
    let lookup = |a: u32| map.get_lpm(&net(a, 32)).map_or(u32::MAX, |(_, v)| *v);
    time_single_lookups(&mut r, runs, random, in_table, lookup);
    let picks = update_picks(routes, updates);
    let mut rates = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        for &(p, l, _) in &picks {
            map.remove(&net(p, l));
        }
        for &(p, l, v) in &picks {
            map.insert(net(p, l), v);
        }
        rates.push(2.0 * picks.len() as f64 / t.elapsed().as_secs_f64());
    }
    r.updates_per_s = median(&rates);
    r
}

fn bench_ip_network_table(
    routes: &[Route],
    random: &[u32],
    in_table: &[u32],
    runs: usize,
    updates: usize,
) -> ImplResult {
    use ip_network::Ipv4Network;
    use ip_network_table::IpNetworkTable;
    let net = |p: u32, l: u8| Ipv4Network::new_truncate(Ipv4Addr::from_bits(p), l).ok();
    let mut r = ImplResult::new("ip_network_table");
    let mut builds = Vec::new();
    let mut table = IpNetworkTable::<u32>::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mut m = IpNetworkTable::<u32>::new();
        for &(p, l, v) in routes {
            if let Some(n) = net(p, l) {
                m.insert(n, v);
            }
        }
        builds.push(t.elapsed().as_secs_f64() * 1e3);
        table = m;
    }
    r.build_ms = median(&builds);
    let lookup = |a: u32| {
        table
            .longest_match_ipv4(Ipv4Addr::from_bits(a))
            .map_or(u32::MAX, |(_, v)| *v)
    };
    time_single_lookups(&mut r, runs, random, in_table, lookup);
    let picks = update_picks(routes, updates);
    let mut rates = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        for &(p, l, _) in &picks {
            if let Some(n) = net(p, l) {
                table.remove(n);
            }
        }
        for &(p, l, v) in &picks {
            if let Some(n) = net(p, l) {
                table.insert(n, v);
            }
        }
        rates.push(2.0 * picks.len() as f64 / t.elapsed().as_secs_f64());
    }
    r.updates_per_s = median(&rates);
    r
}

/// What one `dpdk-test-fib` run printed, in TSC cycles.
#[derive(Debug, Default, PartialEq)]
pub struct DpdkRun {
    pub fib_add: Vec<f64>,
    pub fib_lookup: Option<f64>,
    pub fib_delete: Vec<f64>,
    pub lpm_add: Vec<f64>,
    pub lpm_lookup: Option<f64>,
    pub lpm_delete: Vec<f64>,
    pub mismatch: bool,
}

/// Parses `dpdk-test-fib`'s `AVG FIB add 1234` / `AVG LPM lookup 7.9` lines.
pub fn parse_dpdk(out: &str) -> DpdkRun {
    let mut r = DpdkRun::default();
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if let ["AVG", which, op, v] = w.as_slice() {
            let Ok(v) = v.parse::<f64>() else { continue };
            match (*which, *op) {
                ("FIB", "add") => r.fib_add.push(v),
                ("FIB", "lookup") => r.fib_lookup = Some(v),
                ("FIB", "delete") => r.fib_delete.push(v),
                ("LPM", "add") => r.lpm_add.push(v),
                ("LPM", "lookup") => r.lpm_lookup = Some(v),
                ("LPM", "delete") => r.lpm_delete.push(v),
                _ => {}
            }
        }
        if line.contains("FIB and LPM lookup returns different values") {
            r.mismatch = true;
        }
    }
    r
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// TSC ticks per second, measured against the monotonic clock.
fn tsc_hz() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        let t = Instant::now();
        // SAFETY: RDTSC reads a counter; it has no memory effects.
        let c0 = unsafe { std::arch::x86_64::_rdtsc() };
        std::thread::sleep(std::time::Duration::from_millis(200));
        // SAFETY: as above.
        let c1 = unsafe { std::arch::x86_64::_rdtsc() };
        Some((c1 - c0) as f64 / t.elapsed().as_secs_f64())
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// DIR-24-8 bytes for a table: the 2^24-entry first level plus one 256-entry group per /24 that
/// holds longer prefixes, 4-byte entries (rte_lpm's and rte_fib's with `-e 4`). The smallest
/// footprint either can have for this table; `dpdk-test-fib -g` reserves more.
pub fn dir24_8_bytes(routes: &[Route]) -> u64 {
    let groups: HashSet<u32> = routes
        .iter()
        .filter(|r| r.1 > 24)
        .map(|r| r.0 >> 8)
        .collect();
    ((1u64 << 24) + groups.len() as u64 * 256) * 4
}

fn bench_dpdk(
    args: &LpmArgs,
    routes: &[Route],
    runs: usize,
    mut probe: impl FnMut() -> (f64, f64),
    paired: &mut Vec<(f64, f64)>,
) -> Result<(Vec<ImplResult>, Vec<String>)> {
    let lookups = args.lookups;
    let found = Command::new(&args.dpdk_test_fib)
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        bail!(
            "{} is not installed (Debian/Ubuntu: apt-get install dpdk-dev)",
            args.dpdk_test_fib
        );
    }
    let hz = tsc_hz().context("no TSC on this architecture")?;
    let dir = std::env::temp_dir().join(format!("xfwd-bench-lpm-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = RemoveOnDrop(dir.clone());
    let rt = dir.join("routes.txt");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&rt)?);
    for &(p, l, v) in routes {
        writeln!(w, "{}/{l} {v}", Ipv4Addr::from_bits(p))?;
    }
    w.flush()?;
    drop(w);
    // tbl8 groups: what the table needs (see `dir24_8_bytes`), and at least the issue's 65536.
    let tbl8 = (dir24_8_bytes(routes) / 1024 - (1 << 16) + 1024).max(65_536);
    // `-r 99`: uniformly random addresses (1 % from the routes: it accepts 1..=99); no `-r`:
    // inside the routes (its own generator, as
    // ours above). `-t FILE` would feed the very same addresses, but dpdk-test-fib reads them
    // into a slower path than its generated ones, which would not be a like-for-like figure.
    let run = |random_pct: u32, lpm: bool| -> Result<DpdkRun> {
        let mut cmd = Command::new(&args.dpdk_test_fib);
        cmd.args([
            "--no-huge",
            "-m",
            "3000",
            "--no-pci",
            "-l",
            "1",
            "--file-prefix",
        ])
        .arg(format!("xfwd-bench-{}", std::process::id()))
        .args(["--", "-f"])
        .arg(&rt)
        .args(["-l", &lookups.to_string()])
        .args(["-g", &tbl8.to_string()]);
        if random_pct > 0 {
            cmd.args(["-r", &random_pct.to_string()]);
        }
        if lpm {
            cmd.arg("-c");
        }
        let out = cmd.output().context("running dpdk-test-fib")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let parsed = parse_dpdk(&text);
        if !out.status.success() || parsed.fib_lookup.is_none() {
            bail!(
                "dpdk-test-fib failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
        }
        Ok(parsed)
    };
    let ns = |cycles: f64| cycles / hz * 1e9;
    let mut fib = ImplResult::new("dpdk-rte_fib");
    let mut lpm = ImplResult::new("dpdk-rte_lpm");
    let bytes = dir24_8_bytes(routes);
    fib.bytes = Some(bytes);
    lpm.bytes = Some(bytes);
    let mut fib_random = Vec::new();
    let mut fib_in = Vec::new();
    let mut fib_build = Vec::new();
    let mut fib_upd = Vec::new();
    for _ in 0..runs {
        paired.push(probe());
        let r = run(99, false)?;
        fib_random.extend(r.fib_lookup.map(ns));
        let r = run(0, false)?;
        fib_in.extend(r.fib_lookup.map(ns));
        if let (Some(add), Some(del)) = (mean(&r.fib_add), mean(&r.fib_delete)) {
            fib_build.push(add * routes.len() as f64 / hz * 1e3);
            fib_upd.push(hz / ((add + del) / 2.0));
        }
    }
    fib.ns_per_lookup_random = median(&fib_random);
    fib.ns_per_lookup_in_table = median(&fib_in);
    fib.build_ms = median(&fib_build);
    fib.updates_per_s = median(&fib_upd);
    let mut notes = vec![format!(
        "DPDK: {} with --no-huge, TSC {:.3} GHz; build_ms = mean add cycles x routes, \
         updates_per_s = single-threaded add/delete rate, bytes = the minimal DIR-24-8 footprint \
         for this table (2^24 + one 256-entry group per /24 with longer prefixes, 4-byte entries)",
        args.dpdk_test_fib,
        hz / 1e9
    )];
    if args.dpdk_lpm {
        for (pct, slot) in [(99, 0), (0, 1)] {
            let r = run(pct, true)?;
            if r.mismatch {
                notes.push("DPDK: rte_fib and rte_lpm disagreed on some lookups".to_owned());
            }
            let v = r.lpm_lookup.map(ns);
            if slot == 0 {
                lpm.ns_per_lookup_random = v;
            } else {
                lpm.ns_per_lookup_in_table = v;
                if let (Some(add), Some(del)) = (mean(&r.lpm_add), mean(&r.lpm_delete)) {
                    lpm.build_ms = Some(add * routes.len() as f64 / hz * 1e3);
                    lpm.updates_per_s = Some(hz / ((add + del) / 2.0));
                }
            }
        }
        notes.push("DPDK rte_lpm: one run per address set (its adds are O(n): minutes)".to_owned());
    } else {
        notes.push(
            "DPDK rte_lpm: not run (add --dpdk-lpm: about 5 minutes per address set on a 1 M table)"
                .to_owned(),
        );
    }
    Ok((vec![lpm, fib], notes))
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl LpmReport {
    /// The report as a table for people.
    pub fn render(&self) -> String {
        let mut s = format!(
            "LPM on {} ({} routes); ns per lookup, medians\n\n",
            self.table, self.routes
        );
        s += &format!(
            "{:<18} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12}\n",
            "impl", "random", "in-table", "dependent", "build ms", "MiB", "updates/s"
        );
        let f = |v: Option<f64>, p: usize| v.map_or("-".to_owned(), |v| format!("{v:.p$}"));
        for r in &self.results {
            s += &format!(
                "{:<18} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12}\n",
                r.name,
                f(r.ns_per_lookup_random, 2),
                f(r.ns_per_lookup_in_table, 2),
                f(r.ns_per_lookup_dependent, 2),
                f(r.build_ms, 0),
                f(r.bytes.map(|b| b as f64 / (1 << 20) as f64), 1),
                f(r.updates_per_s, 0),
            );
        }
        let xfwd = self.results.iter().find(|r| r.name == "xfwd");
        for base in ["dpdk-rte_lpm", "dpdk-rte_fib"] {
            let b = self.results.iter().find(|r| r.name == base);
            if let (Some(x), Some(b)) = (xfwd, b)
                && let (Some(xi), Some(bi)) = (x.ns_per_lookup_in_table, b.ns_per_lookup_in_table)
            {
                s += &format!("\nxfwd / {base} (in-table, batch): {:.2}x", xi / bi);
                if let (Some(xr), Some(br)) = (x.ns_per_lookup_random, b.ns_per_lookup_random) {
                    s += &format!(", random: {:.2}x", xr / br);
                }
            }
        }
        s += "\n";
        for n in &self.notes {
            s += &format!("note: {n}\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dpdk_output() {
        let out = "Routes total: 3\nAVG FIB add 3158\nAVG FIB add 4564\nAVG FIB lookup 12.8\n\
                   AVG LPM add 754688\nAVG LPM lookup 7.9\nFIB and LPM lookup returns same values\n\
                   AVG FIB delete 1054\nAVG LPM delete 542512\n";
        let r = parse_dpdk(out);
        assert_eq!(r.fib_add, vec![3158.0, 4564.0]);
        assert_eq!(r.fib_lookup, Some(12.8));
        assert_eq!(r.lpm_lookup, Some(7.9));
        assert_eq!(r.fib_delete, vec![1054.0]);
        assert_eq!(r.lpm_delete, vec![542_512.0]);
        assert!(!r.mismatch);
        assert_eq!(
            parse_dpdk("garbage\nAVG FIB lookup x\n"),
            DpdkRun::default()
        );
    }

    #[test]
    fn parses_route_lines() {
        let t = parse_table("1.0.0.0/8 368\n\n10.1.2.3/24 5\n").unwrap();
        assert_eq!(t, vec![(0x0100_0000, 8, 368), (0x0a01_0200, 24, 5)]);
        assert!(parse_table("1.0.0.0/33 1\n").is_err());
        assert!(parse_table("1.0.0.0 1\n").is_err());
    }

    #[test]
    fn generated_table_is_unique_and_sized() {
        let t = generate_table(5000);
        assert_eq!(t.len(), 5000);
        let u: HashSet<_> = t.iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(u.len(), 5000);
        assert!(t.iter().filter(|r| r.1 == 24).count() > 2000);
    }

    #[test]
    fn dir24_8_footprint() {
        assert_eq!(dir24_8_bytes(&[(0, 8, 1)]), 64 << 20);
        assert_eq!(
            dir24_8_bytes(&[
                (0x0a00_0000, 25, 1),
                (0x0a00_0080, 25, 1),
                (0x0b00_0000, 32, 1)
            ]),
            (64 << 20) + 2 * 1024
        );
    }
}

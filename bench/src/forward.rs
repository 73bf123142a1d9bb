//! `xfwd-bench forward`: forwarding throughput on the netns topology, xfwd against the Linux
//! kernel, in the same invocation.
//!
//! ```text
//!  netns h1                         netns router                          netns h2
//!  xfwd_gen ─XDP_TX─► eth0 ══veth══ p0 ─► xfwd (AF_XDP)       ─► p1 ══veth══ eth0 ─► xfwd_sink
//!  BPF_PROG_RUN live                    or Linux ip_forward                       count + XDP_DROP
//!  frames, CPU gen                      (receive NAPI on CPU fwd when threaded)
//! ```
//!
//! Per system and run: a fresh topology; the sink on h2 (counting only UDP to the benchmark's
//! port); for `xfwd`, `xfwd run --iface p0 --iface p1 --cpus FWD` in the router with kernel
//! forwarding off; for `linux`, `ip_forward=1` and a counting `XDP_PASS` program on p0 (a veth
//! drops frames redirected into it unless it runs an XDP program, and the generator's frames
//! are redirected into p0). Then neighbours are resolved and one ping crosses the router (so
//! the router knows h2's MAC and is proven to forward), the generator runs flat out on the
//! generator CPU, and after a warm-up the window opens: offered rate (generator count), rate at
//! the sink, and `/proc/stat` per-CPU time, plus xfwd's own counters.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::{Args, ValueEnum};
use xfwd::control::report::StatsReport;
use xfwd::control::server::{self, Request};
use xfwd_ebpf::{AttachMode, Generator, Sink, SinkAction, SinkConfig, UdpTemplate};
use xfwd_testbed::{Daemon, End, NetNs, Signal, Topology};

use crate::napi;
use crate::procfs::{self, CpuTimes, TaskTimes};
use crate::report::{
    CpuReport, CpuUse, ForwardReport, RunResult, SystemResult, ThreadUse, XfwdRun,
};
use crate::summary;
use crate::traffic::{self, Boundary, GenShared, Probed};

/// Generator frames per `BPF_PROG_RUN` call: about 5-10 ms at this VM's rates, which bounds
/// how late the generator notices the end of a run (see [`traffic`] for why short runs need
/// the generator anchored in the XDP dispatcher).
const GEN_REPEAT: u32 = 32_768;
/// How long `xfwd run` may take to print its ready line.
const XFWD_READY: Duration = Duration::from_secs(20);
/// How long `xfwd run` may take to exit after SIGTERM.
const XFWD_STOP: Duration = Duration::from_secs(10);
/// Ethernet frame check sequence, counted in `--frame-size` but not generated.
pub(crate) const FCS: u16 = 4;

/// A forwarding system under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum System {
    /// `xfwd run` in the router namespace, kernel forwarding off.
    Xfwd,
    /// The router namespace's kernel (`ip_forward=1`), no xfwd.
    Linux,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Xfwd => "xfwd",
            System::Linux => "linux",
        }
    }
}

/// Where the router's receive NAPI (on p0) runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RxNapi {
    /// veth's default: in the softirq of the CPU that transmitted, i.e. the generator's CPU.
    /// Linux then forwards entirely on the generator's CPU; xfwd's XDP program and the copy
    /// into its socket run there too, and its worker on the forwarding CPU.
    Softirq,
    /// Threaded NAPI pinned to the forwarding CPU, as a NIC queue's interrupt would run on the
    /// core that owns the queue: each system's whole router path is on the forwarding CPU.
    Threaded,
}

impl RxNapi {
    fn name(self) -> &'static str {
        match self {
            RxNapi::Threaded => "threaded",
            RxNapi::Softirq => "softirq",
        }
    }
}

/// Options of `xfwd-bench forward`.
#[derive(Args, Debug, Clone)]
pub struct ForwardArgs {
    /// Systems to measure, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "xfwd,linux")]
    pub systems: Vec<System>,
    /// Seconds measured per run (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Runs per system; the report gives the median.
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// Ethernet frame size including the 4-byte FCS (64 = 60 bytes generated), 64..=1518.
    #[arg(long, default_value_t = 64)]
    pub frame_size: u16,
    /// UDP flows (distinct source ports).
    #[arg(long, default_value_t = 1)]
    pub flows: u16,
    /// CPU for the generator.
    #[arg(long, default_value_t = 0)]
    pub gen_cpu: usize,
    /// CPU for forwarding (xfwd's worker; the router's receive NAPI when threaded).
    #[arg(long, default_value_t = 1)]
    pub fwd_cpu: usize,
    /// Where the router's receive NAPI runs.
    #[arg(long, value_enum, default_value_t = RxNapi::Softirq)]
    pub rx_napi: RxNapi,
    /// Seconds of traffic before each window opens.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// The xfwd binary [default: target/release/xfwd in the workspace].
    #[arg(long, value_name = "PATH")]
    pub xfwd: Option<PathBuf>,
    /// Extra argument for `xfwd run` (repeat for several), e.g. `--xfwd-arg=--busy-poll`.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub xfwd_arg: Vec<String>,
    /// Frames per generator round (1..=256).
    #[arg(long, default_value_t = 64)]
    pub batch: u32,
    /// UDP destination port of the generated traffic (the sink counts only it).
    #[arg(long, default_value_t = 9)]
    pub udp_port: u16,
    /// Destination address (must be routed towards h2; default: behind h2).
    #[arg(long, default_value = "198.18.0.2")]
    pub dst: Ipv4Addr,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "PATH")]
    pub save_json: Option<PathBuf>,
}

/// Ctrl-C (or SIGTERM) was received: stop, clean up, report what was measured.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// The interrupt flag set by the signal handlers.
#[derive(Clone, Debug)]
pub struct Stop(pub Arc<AtomicBool>);

impl Stop {
    pub(crate) fn check(&self) -> Result<()> {
        if self.0.load(Ordering::Relaxed) {
            return Err(Interrupted.into());
        }
        Ok(())
    }

    /// Sleeps `d`, waking early (with [`Interrupted`]) when interrupted.
    pub(crate) fn sleep(&self, d: Duration) -> Result<()> {
        let end = Instant::now() + d;
        loop {
            self.check()?;
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

/// Validated settings for the runs.
#[derive(Clone, Debug)]
struct Plan {
    args: ForwardArgs,
    xfwd_bin: Option<PathBuf>,
    duration: Duration,
    warmup: Duration,
}

impl Plan {
    fn new(args: ForwardArgs) -> Result<Plan> {
        ensure!(!args.systems.is_empty(), "--systems names no system");
        ensure!(
            args.duration.is_finite() && (0.1..=3600.0).contains(&args.duration),
            "--duration {} is not in 0.1..=3600 seconds",
            args.duration
        );
        ensure!(
            args.warmup.is_finite() && (0.0..=60.0).contains(&args.warmup),
            "--warmup {} is not in 0..=60 seconds",
            args.warmup
        );
        ensure!(
            (1..=100).contains(&args.runs),
            "--runs {} is not in 1..=100",
            args.runs
        );
        ensure!(
            (64..=1518).contains(&args.frame_size),
            "--frame-size {} is not in 64..=1518 (bytes including the 4-byte FCS)",
            args.frame_size
        );
        ensure!(args.flows >= 1, "--flows must be at least 1");
        ensure!(
            (1..=256).contains(&args.batch),
            "--batch {} is not in 1..=256",
            args.batch
        );
        ensure!(args.udp_port != 0, "--udp-port 0 is not a port");
        check_cpus(args.gen_cpu, args.fwd_cpu)?;
        if args.gen_cpu == args.fwd_cpu {
            eprintln!(
                "xfwd-bench: warning: generator and forwarding share CPU {}",
                args.gen_cpu
            );
        }
        let xfwd_bin = if args.systems.contains(&System::Xfwd) {
            Some(find_xfwd(args.xfwd.as_deref())?)
        } else {
            None
        };
        Ok(Plan {
            duration: Duration::from_secs_f64(args.duration),
            warmup: Duration::from_secs_f64(args.warmup),
            xfwd_bin,
            args,
        })
    }
}

/// The xfwd binary: `--xfwd PATH`, else `target/release/xfwd` in this workspace.
pub(crate) fn find_xfwd(given: Option<&Path>) -> Result<PathBuf> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/xfwd"),
    };
    ensure!(
        path.is_file(),
        "xfwd binary not found at {}: build it with `cargo build --release -p xfwd` or pass \
         --xfwd PATH",
        path.display()
    );
    // `ip netns exec` runs it from another working directory.
    path.canonicalize()
        .with_context(|| format!("resolving {}", path.display()))
}

/// Runs the benchmark and returns its report; errors only for bad options or an interrupt
/// before anything could be measured. A system that fails is reported in its result.
///
/// # Errors
///
/// Invalid options or a missing xfwd binary.
pub fn run(args: ForwardArgs, command: String, stop: &Stop) -> Result<ForwardReport> {
    let plan = Plan::new(args)?;
    let a = &plan.args;
    let mut report = ForwardReport {
        command,
        date: summary::now_utc(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        machine: machine(),
        frame_size: a.frame_size,
        duration_s: a.duration,
        warmup_s: a.warmup,
        runs: a.runs,
        flows: a.flows,
        gen_cpu: a.gen_cpu,
        fwd_cpu: a.fwd_cpu,
        rx_napi: a.rx_napi.name().to_owned(),
        xfwd_binary: plan.xfwd_bin.as_ref().map(|p| p.display().to_string()),
        results: Vec::new(),
        ratio_xfwd_linux: None,
        interrupted: false,
    };
    for &system in &a.systems {
        let mut runs = Vec::new();
        let mut error = None;
        let mut ready = None;
        for n in 1..=a.runs {
            eprintln!("xfwd-bench: {} run {n}/{} ...", system.name(), a.runs);
            match run_once(&plan, system, n, stop) {
                Ok((r, line)) => {
                    eprintln!(
                        "xfwd-bench: {} run {n}: offered {:.3} Mpps, delivered {:.3} Mpps",
                        system.name(),
                        r.offered_pps / 1e6,
                        r.delivered_pps / 1e6
                    );
                    runs.push(r);
                    ready = ready.or(line);
                }
                Err(e) if e.is::<Interrupted>() => {
                    report.interrupted = true;
                    break;
                }
                Err(e) => {
                    eprintln!("xfwd-bench: {} run {n} failed: {e:#}", system.name());
                    error = Some(format!("run {n}: {e:#}"));
                    break;
                }
            }
        }
        report
            .results
            .push(SystemResult::new(system.name(), runs, error, ready));
        if report.interrupted {
            break;
        }
    }
    let median = |name: &str| {
        report
            .results
            .iter()
            .find(|r| r.system == name)
            .and_then(|r| r.delivered_pps_median)
    };
    report.ratio_xfwd_linux = match (median("xfwd"), median("linux")) {
        (Some(x), Some(l)) if l > 0.0 => Some(x / l),
        _ => None,
    };
    Ok(report)
}

/// CPU model and count from `/proc/cpuinfo`.
pub(crate) fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim());
    let n = info.lines().filter(|l| l.starts_with("processor")).count();
    format!("{n} x {model}")
}

/// `xfwd run` in the router namespace; asked to stop with SIGTERM on drop.
pub(crate) struct XfwdProc {
    daemon: Daemon,
    control: PathBuf,
}

impl XfwdProc {
    fn start(
        bin: &Path,
        topo: &Topology,
        cpu: usize,
        extra: &[String],
        stop: &Stop,
    ) -> Result<(XfwdProc, String)> {
        XfwdProc::start_within(bin, topo, cpu, extra, stop, XFWD_READY)
    }

    /// As `start`, waiting up to `ready` for the ready line (a 1 M route table takes longer).
    pub(crate) fn start_within(
        bin: &Path,
        topo: &Topology,
        cpu: usize,
        extra: &[String],
        stop: &Stop,
        ready: Duration,
    ) -> Result<(XfwdProc, String)> {
        let control = std::env::temp_dir().join(format!("{}.sock", topo.router().name()));
        let bin_s = bin.to_string_lossy().into_owned();
        let control_s = control.to_string_lossy().into_owned();
        let cpu_s = cpu.to_string();
        let mut argv: Vec<&str> = vec![
            &bin_s,
            "run",
            "--iface",
            "p0",
            "--iface",
            "p1",
            "--cpus",
            &cpu_s,
            "--control",
            &control_s,
        ];
        argv.extend(extra.iter().map(String::as_str));
        let mut daemon = Daemon::spawn(topo.router(), &argv)?;
        let deadline = Instant::now() + ready;
        let line = loop {
            match daemon.wait_for_line("xfwd: ready", Duration::from_millis(200)) {
                Ok(line) => break line,
                Err(e) => {
                    if let Ok(status) = daemon.wait_exit(Duration::ZERO) {
                        bail!("xfwd failed to start ({status}): {e:#}");
                    }
                    if Instant::now() >= deadline {
                        bail!("xfwd not ready after {ready:?}: {e:#}");
                    }
                    stop.check()?;
                }
            }
        };
        Ok((XfwdProc { daemon, control }, line))
    }

    pub(crate) fn stats(&self) -> Result<StatsReport> {
        let v = server::request(&self.control, &Request::Stats)?;
        serde_json::from_value(v).context("decoding xfwd's stats")
    }

    /// The first worker thread (`xfwd-w0`).
    pub(crate) fn worker_tid(&self) -> Result<u32> {
        let tids = procfs::threads_named(self.daemon.pid(), "xfwd-w0")?;
        tids.first()
            .copied()
            .ok_or_else(|| anyhow!("xfwd has no thread named xfwd-w0"))
    }
}

impl Drop for XfwdProc {
    fn drop(&mut self) {
        if self.daemon.signal(Signal::Term).is_ok()
            && let Err(e) = self.daemon.wait_exit(XFWD_STOP)
        {
            eprintln!("xfwd-bench: xfwd did not stop on SIGTERM, killing it: {e:#}");
        }
        // Daemon's own drop kills whatever is left.
    }
}

/// What is read at each end of the window.
struct Snapshot {
    at: Instant,
    /// End of the generator's latest run, with the sink's and router's counts then.
    gen_last: Boundary,
    gen_busy_ns: u64,
    cpus: BTreeMap<usize, CpuTimes>,
    gen_task: TaskTimes,
    worker_task: Option<TaskTimes>,
    napi_task: Option<TaskTimes>,
}

/// Process ids of the tasks measured per thread.
struct Tasks {
    gen_tid: u32,
    worker: Option<(u32, u32)>,
    napi: Option<u32>,
}

/// One run of one system; returns the result and, for xfwd, its ready line.
fn run_once(
    plan: &Plan,
    system: System,
    n: u32,
    stop: &Stop,
) -> Result<(RunResult, Option<String>)> {
    let a = &plan.args;
    stop.check()?;
    let topo = Topology::builder("xb")
        .router_forwarding(system == System::Linux)
        .build()?;
    stop.check()?;
    let h1_if = ifindex(topo.h1(), End::H1.ifname())?;
    let h2_if = ifindex(topo.h2(), End::H2.ifname())?;
    let p0_if = ifindex(topo.router(), End::P0.ifname())?;

    let counted = SinkConfig {
        udp_port: Some(a.udp_port),
        action: SinkAction::Drop,
    };
    let mut sink = Sink::load(&counted).context("loading the sink")?;
    topo.h2()
        .run(|| sink.attach(h2_if, AttachMode::Native))?
        .context("attaching the sink to h2's eth0")?;

    // Linux: a counting pass-through program on p0 (see the module doc).
    let mut p0_pass = None;
    let mut xfwd = None;
    let mut ready = None;
    match system {
        System::Linux => {
            let mut pass = Sink::load(&SinkConfig {
                action: SinkAction::Pass,
                ..counted
            })
            .context("loading the pass-through counter for p0")?;
            topo.router()
                .run(|| pass.attach(p0_if, AttachMode::Native))?
                .context("attaching the pass-through counter to p0")?;
            p0_pass = Some(pass);
        }
        System::Xfwd => {
            let bin = plan
                .xfwd_bin
                .as_deref()
                .context("no xfwd binary resolved")?;
            let (proc_, line) = XfwdProc::start(bin, &topo, a.fwd_cpu, &a.xfwd_arg, stop)?;
            xfwd = Some(proc_);
            ready = Some(line);
        }
    }

    topo.resolve_neighbours()?;
    let h2_addr = topo.iface(End::H2).addr;
    let ping = xfwd_testbed::ping(topo.h1(), h2_addr, 2, None)?;
    ensure!(
        ping.received > 0,
        "{} does not forward: no ping from h1 to {h2_addr} came back ({ping:?})",
        system.name()
    );
    stop.check()?;

    let napi_pid = match a.rx_napi {
        RxNapi::Threaded => Some(napi::thread_and_pin(
            topo.router(),
            End::P0.ifname(),
            a.fwd_cpu,
        )?),
        RxNapi::Softirq => None,
    };

    let before = traffic::own_bpf_programs()?;
    let mut generator = Generator::load().context("loading the generator")?;
    let loaded: Vec<u32> = traffic::own_bpf_programs()?
        .difference(&before)
        .copied()
        .collect();
    match loaded.as_slice() {
        [id] => traffic::anchor_in_dispatcher(topo.h1(), *id)?,
        other => bail!("expected one new BPF program after loading the generator, found {other:?}"),
    }
    let h1 = topo.iface(End::H1);
    let template = UdpTemplate {
        dst_port: a.udp_port,
        frame_len: a.frame_size - FCS,
        flows: a.flows,
        ..UdpTemplate::new(h1.mac, topo.iface(End::P0).mac, h1.addr, a.dst)
    };
    generator.configure(&template)?;
    generator.set_timestamp_every(0)?;

    let shared = GenShared::default();
    let measured = std::thread::scope(|s| {
        let gen_thread = s.spawn(|| {
            topo.h1()
                .run(|| {
                    traffic::generate(
                        &mut generator,
                        h1_if,
                        a.gen_cpu,
                        a.batch,
                        GEN_REPEAT,
                        &shared,
                        || {
                            Ok(Probed {
                                delivered: sink.counters()?.0,
                                router_rx: p0_pass
                                    .as_ref()
                                    .map(|p| p.counters())
                                    .transpose()?
                                    .map(|c| c.0),
                            })
                        },
                    )
                })
                .and_then(|r| r)
        });
        let result = measure(plan, &topo, xfwd.as_ref(), napi_pid, &shared, stop, || {
            gen_thread.is_finished()
        });
        shared.stop.store(true, Ordering::Relaxed);
        let generated = gen_thread
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        match (result, generated) {
            (Err(e), _) if e.is::<Interrupted>() => Err(e),
            (_, Err(e)) => Err(e.context("generator")),
            (r, Ok(())) => r,
        }
    })?;
    let result = RunResult { run: n, ..measured };
    // Stop xfwd and drop the sinks before the namespaces go.
    drop(xfwd);
    drop(p0_pass);
    drop(sink);
    drop(topo);
    Ok((result, ready))
}

/// Opens and closes the window while the generator runs.
fn measure(
    plan: &Plan,
    topo: &Topology,
    xfwd: Option<&XfwdProc>,
    napi_pid: Option<u32>,
    shared: &GenShared,
    stop: &Stop,
    gen_finished: impl Fn() -> bool,
) -> Result<RunResult> {
    let a = &plan.args;
    // Wait for the generator to start.
    let deadline = Instant::now() + Duration::from_secs(5);
    while shared.last().is_none() {
        ensure!(!gen_finished(), "the generator stopped before sending");
        ensure!(
            Instant::now() < deadline,
            "the generator sent nothing within 5 s"
        );
        stop.sleep(Duration::from_millis(10))?;
    }
    let tasks = Tasks {
        gen_tid: shared.tid.load(Ordering::Acquire),
        worker: match xfwd {
            Some(x) => Some((x.daemon.pid(), x.worker_tid()?)),
            None => None,
        },
        napi: napi_pid,
    };
    stop.sleep(plan.warmup)?;
    ensure!(!gen_finished(), "the generator stopped during the warm-up");

    // Slow readings (processes, sockets) just outside the window.
    let xfwd_a = xfwd.map(XfwdProc::stats).transpose()?;
    let ring_a = xdp_xmit_errors(topo.h1(), End::H1.ifname())?;
    let snap_a = snapshot(shared, &tasks)?;
    stop.sleep(plan.duration)?;
    let snap_b = snapshot(shared, &tasks)?;
    let ring_b = xdp_xmit_errors(topo.h1(), End::H1.ifname())?;
    let xfwd_b = xfwd.map(XfwdProc::stats).transpose()?;
    ensure!(!gen_finished(), "the generator stopped during the window");

    let secs = snap_b.at.duration_since(snap_a.at).as_secs_f64();
    // Traffic is counted between the ends of the generator runs nearest the window's ends (runs
    // last milliseconds), where sent, delivered and router counts were read together.
    let (g0, g1) = (snap_a.gen_last, snap_b.gen_last);
    let gen_secs = g1.at.duration_since(g0.at).as_secs_f64();
    ensure!(
        gen_secs > 0.0,
        "the generator completed no run in the window"
    );
    let rate = |a: u64, b: u64| b.wrapping_sub(a) as f64 / gen_secs;
    let offered = rate(g0.sent, g1.sent);
    let delivered = rate(g0.probed.delivered, g1.probed.delivered);
    let generator_busy =
        (snap_b.gen_busy_ns.wrapping_sub(snap_a.gen_busy_ns) as f64 / 1e9 / secs).min(1.0);
    let xfwd_run = match (&xfwd_a, &xfwd_b) {
        (Some(x), Some(y)) => Some(xfwd_delta(x, y)),
        _ => None,
    };
    let router_rx = match (g0.probed.router_rx, g1.probed.router_rx, &xfwd_a, &xfwd_b) {
        (Some(x), Some(y), _, _) => Some(rate(x, y)),
        (_, _, Some(x), Some(y)) => {
            let rx = |s: &StatsReport| {
                s.interfaces
                    .iter()
                    .find(|i| i.name == "p0")
                    .map(|i| i.rx_packets)
            };
            let up = y.uptime_s - x.uptime_s;
            match (rx(x), rx(y)) {
                (Some(p), Some(q)) if up > 0.0 => Some(q.wrapping_sub(p) as f64 / up),
                _ => None,
            }
        }
        _ => None,
    };
    let ticks = secs * procfs::USER_HZ;
    let thread = |name: &str, x: &TaskTimes, y: &TaskTimes| {
        let (u, s) = y.since(x);
        ThreadUse {
            name: name.to_owned(),
            user: u as f64 / ticks,
            system: s as f64 / ticks,
        }
    };
    let gen_thread = thread("generator", &snap_a.gen_task, &snap_b.gen_task);
    let xfwd_worker = match (&snap_a.worker_task, &snap_b.worker_task) {
        (Some(x), Some(y)) => Some(thread("xfwd-w0", x, y)),
        _ => None,
    };
    let napi_thread = match (&snap_a.napi_task, &snap_b.napi_task) {
        (Some(x), Some(y)) => Some(thread(&y.comm, x, y)),
        _ => None,
    };
    let cpu_use = |cpu: usize, own_user: f64| -> Result<CpuUse> {
        let (Some(x), Some(y)) = (snap_a.cpus.get(&cpu), snap_b.cpus.get(&cpu)) else {
            bail!("CPU {cpu} missing from /proc/stat");
        };
        let share = y.since(x).shares();
        Ok(CpuUse {
            cpu,
            share,
            foreign_user: (share.user - own_user).max(0.0),
        })
    };
    let fwd_own_user = xfwd_worker.as_ref().map_or(0.0, |t| t.user);
    let cpu = CpuReport {
        generator: cpu_use(a.gen_cpu, gen_thread.user)?,
        forwarding: cpu_use(a.fwd_cpu, fwd_own_user)?,
        gen_thread,
        napi_thread,
        xfwd_worker,
    };
    Ok(RunResult {
        run: 0,
        window_s: secs,
        offered_pps: offered,
        generator_busy,
        router_rx_pps: router_rx,
        ingress_ring_full_pps: ring_b.saturating_sub(ring_a) as f64 / secs,
        delivered_pps: delivered,
        delivered_bps: delivered * f64::from(a.frame_size) * 8.0,
        loss_pct: if offered > 0.0 {
            100.0 * (1.0 - delivered / offered)
        } else {
            0.0
        },
        cpu,
        xfwd: xfwd_run,
    })
}

fn snapshot(shared: &GenShared, tasks: &Tasks) -> Result<Snapshot> {
    let at = Instant::now();
    let gen_last = shared
        .last()
        .context("the generator has not completed a run")?;
    let gen_busy_ns = shared.busy_ns();
    let cpus = procfs::read_proc_stat()?;
    let gen_task = procfs::read_task(std::process::id(), tasks.gen_tid)?;
    let worker_task = tasks
        .worker
        .map(|(pid, tid)| procfs::read_task(pid, tid))
        .transpose()?;
    let napi_task = tasks
        .napi
        .map(|pid| procfs::read_task(pid, pid))
        .transpose()?;
    Ok(Snapshot {
        at,
        gen_last,
        gen_busy_ns,
        cpus,
        gen_task,
        worker_task,
        napi_task,
    })
}

/// xfwd's counters between two reports.
fn xfwd_delta(a: &StatsReport, b: &StatsReport) -> XfwdRun {
    let nonzero = |x: &BTreeMap<String, u64>, y: &BTreeMap<String, u64>| {
        y.iter()
            .map(|(k, v)| (k.clone(), v.wrapping_sub(x.get(k).copied().unwrap_or(0))))
            .filter(|(_, d)| *d != 0)
            .collect::<BTreeMap<_, _>>()
    };
    let forwarded = b.forwarded.wrapping_sub(a.forwarded);
    let up = b.uptime_s - a.uptime_s;
    // The report gives busy_ratio = busy_ns / run_ns since the worker started, and run_ns is
    // within milliseconds of the uptime: undo the cumulative ratio over the window.
    let busy: Vec<f64> = b
        .workers
        .iter()
        .filter_map(|wb| {
            let wa = a.workers.iter().find(|w| w.id == wb.id)?;
            (up > 0.0).then(|| {
                ((wb.busy_ratio * b.uptime_s - wa.busy_ratio * a.uptime_s) / up).clamp(0.0, 1.0)
            })
        })
        .collect();
    let batches: u64 = b
        .workers
        .iter()
        .map(|wb| {
            let before = a
                .workers
                .iter()
                .find(|w| w.id == wb.id)
                .map_or(0, |w| w.batches);
            wb.batches.wrapping_sub(before)
        })
        .sum();
    let kicks: u64 = b
        .workers
        .iter()
        .map(|wb| {
            let before = a
                .workers
                .iter()
                .find(|w| w.id == wb.id)
                .map_or(0, |w| w.tx_kicks);
            wb.tx_kicks.wrapping_sub(before)
        })
        .sum();
    let rx: u64 = b
        .interfaces
        .iter()
        .map(|ib| {
            let before = a
                .interfaces
                .iter()
                .find(|i| i.name == ib.name)
                .map_or(0, |i| i.rx_packets);
            ib.rx_packets.wrapping_sub(before)
        })
        .sum();
    let xsk: BTreeMap<String, BTreeMap<String, u64>> = b
        .interfaces
        .iter()
        .map(|ib| {
            let empty = Default::default();
            let before = a
                .interfaces
                .iter()
                .find(|i| i.name == ib.name)
                .map_or(&empty, |i| &i.xsk);
            (ib.name.clone(), nonzero(before, &ib.xsk))
        })
        .collect();
    let xsk_rx_drops: u64 = xsk
        .values()
        .flat_map(|m: &BTreeMap<String, u64>| {
            ["rx_dropped", "rx_ring_full"].map(|k| m.get(k).copied().unwrap_or(0))
        })
        .sum();
    XfwdRun {
        xsk_rx_drop_pps: if up > 0.0 {
            xsk_rx_drops as f64 / up
        } else {
            0.0
        },
        forwarded,
        busy_ratio: summary::median(&busy).unwrap_or(0.0),
        packets_per_batch: if batches == 0 {
            0.0
        } else {
            rx as f64 / batches as f64
        },
        tx_kicks_per_packet: if forwarded == 0 {
            0.0
        } else {
            kicks as f64 / forwarded as f64
        },
        drops: nonzero(&a.drops, &b.drops),
        xsk,
        xdp: nonzero(&a.xdp, &b.xdp),
    }
}

/// The interface index of `dev` inside `ns` (`ip netns exec` mounts that namespace's sysfs).
pub(crate) fn ifindex(ns: &NetNs, dev: &str) -> Result<u32> {
    let out = ns.exec(&["cat", &format!("/sys/class/net/{dev}/ifindex")])?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .with_context(|| format!("ifindex of {dev} in {}", ns.name()))
}

/// Frames a veth failed to pass to its peer's XDP ring (`*_xdp_xmit_errors` in `ethtool -S`):
/// on h1's end, the generator's frames refused because the router's ring was full.
pub(crate) fn xdp_xmit_errors(ns: &NetNs, dev: &str) -> Result<u64> {
    ethtool_sum(ns, dev, is_xdp_xmit_errors)
}

fn is_xdp_xmit_errors(key: &str) -> bool {
    key.ends_with("_xdp_xmit_errors")
}

/// The sum of the `ethtool -S DEV` counters whose name `pick` accepts.
pub(crate) fn ethtool_sum(ns: &NetNs, dev: &str, pick: fn(&str) -> bool) -> Result<u64> {
    let out = ns
        .exec(&["ethtool", "-S", dev])
        .context("ethtool (Debian package ethtool)")?;
    Ok(parse_ethtool_sum(
        &String::from_utf8_lossy(&out.stdout),
        pick,
    ))
}

/// Sums the counters of `ethtool -S` output whose name `pick` accepts.
pub(crate) fn parse_ethtool_sum(text: &str, pick: fn(&str) -> bool) -> u64 {
    text.lines()
        .filter_map(|l| l.trim().split_once(": "))
        .filter(|(k, _)| pick(k))
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .sum()
}

/// Both CPUs (`--gen-cpu`, `--fwd-cpu`) are ones this process may run on.
pub(crate) fn check_cpus(gen_cpu: usize, fwd_cpu: usize) -> Result<()> {
    let cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .iter()
        .map(|c| c.id)
        .collect();
    for (flag, cpu) in [("--gen-cpu", gen_cpu), ("--fwd-cpu", fwd_cpu)] {
        ensure!(
            cpus.contains(&cpu),
            "{flag} {cpu}: this process may run on CPUs {cpus:?} only"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use xfwd::control::report::{InterfaceReport, WorkerReport};

    #[test]
    fn ethtool_xmit_errors_summed_over_queues() {
        let text = "NIC statistics:\n     peer_ifindex: 5\n     rx_queue_0_xdp_packets: 10\n     \
                    tx_queue_0_xdp_xmit: 900\n     tx_queue_0_xdp_xmit_errors: 123\n     \
                    tx_queue_1_xdp_xmit_errors: 7\n";
        assert_eq!(parse_ethtool_sum(text, is_xdp_xmit_errors), 130);
        assert_eq!(parse_ethtool_sum("", is_xdp_xmit_errors), 0);
    }

    #[test]
    fn xfwd_window_from_cumulative_reports() {
        let worker = |busy_ratio, batches, tx_kicks| WorkerReport {
            id: 0,
            busy_ratio,
            batches,
            tx_kicks,
            ..WorkerReport::default()
        };
        let iface = |name: &str, rx, dropped| InterfaceReport {
            name: name.into(),
            rx_packets: rx,
            xsk: [("rx_dropped".to_owned(), dropped)].into(),
            ..InterfaceReport::default()
        };
        let a = StatsReport {
            uptime_s: 10.0,
            forwarded: 1000,
            drops: [("no_route".to_owned(), 5), ("ttl_expired".to_owned(), 1)].into(),
            interfaces: vec![iface("p0", 1000, 0), iface("p1", 0, 0)],
            workers: vec![worker(0.1, 100, 50)],
            ..StatsReport::default()
        };
        let b = StatsReport {
            uptime_s: 20.0,
            forwarded: 11_000,
            drops: [("no_route".to_owned(), 9), ("ttl_expired".to_owned(), 1)].into(),
            interfaces: vec![iface("p0", 11_000, 40), iface("p1", 0, 0)],
            workers: vec![worker(0.5, 600, 2550)],
            ..StatsReport::default()
        };
        let d = xfwd_delta(&a, &b);
        assert_eq!(d.forwarded, 10_000);
        // busy: 0.5 * 20 - 0.1 * 10 = 9 s of 10.
        assert!((d.busy_ratio - 0.9).abs() < 1e-9, "{d:?}");
        assert!((d.packets_per_batch - 20.0).abs() < 1e-9);
        assert!((d.tx_kicks_per_packet - 0.25).abs() < 1e-9);
        assert!((d.xsk_rx_drop_pps - 4.0).abs() < 1e-9);
        assert_eq!(d.drops, [("no_route".to_owned(), 4)].into());
        assert_eq!(d.xsk["p0"], [("rx_dropped".to_owned(), 40)].into());
        assert!(d.xsk["p1"].is_empty());
    }

    fn args(systems: Vec<System>) -> ForwardArgs {
        ForwardArgs {
            systems,
            duration: 10.0,
            runs: 3,
            frame_size: 64,
            flows: 1,
            gen_cpu: 0,
            fwd_cpu: 0,
            rx_napi: RxNapi::Softirq,
            warmup: 1.0,
            xfwd: None,
            xfwd_arg: vec![],
            batch: 64,
            udp_port: 9,
            dst: Ipv4Addr::new(198, 18, 0, 2),
            json: false,
            save_json: None,
        }
    }

    fn no_stop() -> Stop {
        Stop(Arc::new(AtomicBool::new(false)))
    }

    #[test]
    fn linux_forwards_and_is_measured() -> Result<()> {
        xfwd_testbed::require_privileges!();
        let last = core_affinity::get_core_ids()
            .unwrap_or_default()
            .len()
            .max(1)
            - 1;
        let a = ForwardArgs {
            duration: 0.5,
            warmup: 0.2,
            runs: 1,
            fwd_cpu: last,
            ..args(vec![System::Linux])
        };
        let report = run(a, "test".into(), &no_stop())?;
        let linux = &report.results[0];
        assert_eq!(linux.error, None);
        let r = &linux.runs[0];
        assert!(r.delivered_pps > 1000.0, "{r:?}");
        assert!(r.offered_pps >= r.delivered_pps * 0.99, "{r:?}");
        assert!((-1.0..=100.0).contains(&r.loss_pct), "{r:?}");
        assert_eq!(r.router_rx_pps.map(|p| p > 0.0), Some(true), "{r:?}");
        assert!(r.generator_busy > 0.5, "generator anchored: {r:?}");
        assert!(report.ratio_xfwd_linux.is_none());
        Ok(())
    }

    #[test]
    fn a_system_that_does_not_start_is_reported() -> Result<()> {
        xfwd_testbed::require_privileges!();
        let a = ForwardArgs {
            duration: 0.5,
            warmup: 0.2,
            runs: 2,
            xfwd: Some("/bin/false".into()),
            ..args(vec![System::Xfwd])
        };
        let report = run(a, "test".into(), &no_stop())?;
        let xfwd = &report.results[0];
        let e = xfwd.error.as_deref().unwrap_or_default();
        assert!(e.starts_with("run 1: xfwd failed to start"), "{e}");
        assert!(xfwd.runs.is_empty());
        assert_eq!(xfwd.delivered_pps_median, None);
        assert!(
            report
                .render()
                .contains("xfwd   FAILED: run 1: xfwd failed to start")
        );
        Ok(())
    }

    #[test]
    fn plan_rejects_bad_options() {
        let base = args(vec![System::Linux]);
        assert!(Plan::new(base.clone()).is_ok());
        let bad = [
            ForwardArgs {
                frame_size: 63,
                ..base.clone()
            },
            ForwardArgs {
                frame_size: 1519,
                ..base.clone()
            },
            ForwardArgs {
                duration: 0.0,
                ..base.clone()
            },
            ForwardArgs {
                duration: f64::NAN,
                ..base.clone()
            },
            ForwardArgs {
                runs: 0,
                ..base.clone()
            },
            ForwardArgs {
                flows: 0,
                ..base.clone()
            },
            ForwardArgs {
                batch: 257,
                ..base.clone()
            },
            ForwardArgs {
                udp_port: 0,
                ..base.clone()
            },
            ForwardArgs {
                gen_cpu: 4096,
                ..base.clone()
            },
            ForwardArgs {
                systems: vec![],
                ..base.clone()
            },
        ];
        for args in bad {
            assert!(Plan::new(args.clone()).is_err(), "{args:?}");
        }
        let missing = ForwardArgs {
            systems: vec![System::Xfwd],
            xfwd: Some("/nonexistent/xfwd".into()),
            ..base
        };
        let e = Plan::new(missing).unwrap_err().to_string();
        assert!(e.contains("cargo build --release -p xfwd"), "{e}");
    }
}

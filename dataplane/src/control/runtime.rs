//! `xfwd run`: start in an order that never blackholes traffic, follow the kernel, stop cleanly.
//!
//! ```text
//!  start: capabilities ─► netlink dump ─► tables ─► XDP program attached (no sockets yet: every
//!         frame still XDP_PASSes to the kernel) ─► local addresses in the XDP map ─► UMEMs and
//!         sockets ─► workers running ─► sockets into the XSKMAP (transit IPv4 now reaches xfwd)
//!         ─► control socket ─► "ready"
//!  run:   netlink events ─► mirror ─► rebuild the touched half of the FIB ─► publish;
//!         resolution requests from workers ─► RTM_NEWNEIGH NTF_USE
//!  stop:  sockets out of the XSKMAP and XDP detached (traffic back to the kernel) ─► workers
//!         drain and stop ─► control socket removed ─► exit 0
//! ```

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arc_swap::ArcSwap;
use crossbeam_channel::Receiver;
use crossbeam_utils::CachePadded;
use xfwd_ebpf::{AttachMode, Steer};

use super::config::{BindMode, RunConfig, XdpMode};
use super::mirror::{Change, KernelState};
use super::netlink::{KernelEvent, Netlink};
use super::report::{
    ErrorsReport, FibReport, InterfaceReport, NeighboursReport, PortCounts, RoutesReport,
    StatsReport, WorkerReport,
};
use super::server::{Handler, Request, Server};
use super::tables::TableBuilder;
use crate::drop::DropReason;
use crate::fib::{Fib, NextHopKey};
use crate::ops::config::{ReloadOutcome, Settings, Source, diff};
use crate::ops::metrics::MetricsServer;
use crate::stats::WorkerStats;
use crate::worker::{self, WorkerSetup};
use crate::xsk::{self, SocketConfig, Umem, UmemConfig, XskSocket};

/// Pending resolution requests the control thread accepts before workers retry later.
const RESOLVE_QUEUE: usize = 4096;
/// The same next hop is asked of the kernel at most this often.
const RESOLVE_EVERY: Duration = Duration::from_millis(500);

/// Runs until SIGINT or SIGTERM, with the default service settings (no metrics, no reload).
///
/// # Errors
///
/// As [`run_service`].
pub fn run(cfg: RunConfig) -> Result<()> {
    run_service(
        Settings {
            run: cfg,
            ..Settings::default()
        },
        None,
    )
}

/// Moves the calling (control) thread, and so every thread it starts from now on, off the
/// workers' CPUs when the process may run elsewhere too (DPDK's control threads do the same):
/// netlink bursts, control requests and metrics scrapes then never take a worker's CPU while
/// its RX ring fills. Workers pin themselves to their own CPU. With no CPU left over (workers
/// on every allowed CPU) nothing changes.
fn keep_off_worker_cpus(workers: &[usize]) {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
    // Counted before the move, for reloads.
    super::config::process_cpus();
    let Ok(allowed) = sched_getaffinity(None) else {
        return;
    };
    let mut rest = CpuSet::new();
    let mut cpus = Vec::new();
    for c in (0..CpuSet::MAX_CPU).filter(|&c| allowed.is_set(c) && !workers.contains(&c)) {
        rest.set(c);
        cpus.push(c);
    }
    if cpus.is_empty() {
        tracing::info!("control threads share the workers' CPUs (no other CPU allowed)");
        return;
    }
    match sched_setaffinity(None, &rest) {
        Ok(()) => tracing::debug!(?cpus, "control threads kept off the workers' CPUs"),
        Err(e) => tracing::warn!("could not move control threads off the workers' CPUs: {e}"),
    }
}

/// Runs until SIGINT or SIGTERM. `source` is where `settings` came from, re-read on SIGHUP or
/// `xfwd reload` (`None`: reload is refused).
///
/// # Errors
///
/// Setup failures (missing capabilities, unknown interfaces, XDP or AF_XDP refused), each
/// naming what failed; whatever was attached is detached before returning.
pub fn run_service(settings: Settings, source: Option<Source>) -> Result<()> {
    let cfg = settings.run.clone();
    crate::privileges::check()?;
    let signalled = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while shutting down exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, signalled.clone())
            .and_then(|_| signal_hook::flag::register(sig, signalled.clone()))
            .context("installing signal handlers")?;
    }
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .context("installing the SIGHUP handler")?;

    let mut nl = Netlink::open().context("opening netlink")?;
    let t0 = Instant::now();
    let mut state = KernelState::from_dump(nl.dump().context("dumping the kernel's tables")?);
    let mut tables = TableBuilder::new(&state, &cfg.interfaces)?;
    tracing::info!(
        routes = state.route_count(),
        neighbours = state.neighs().len(),
        took_ms = t0.elapsed().as_millis() as u64,
        "mirrored the kernel's tables"
    );
    let ports = tables.ports().clone();
    for p in ports.iter() {
        let queues =
            xsk::queue_count(p.ifindex).with_context(|| format!("reading {}'s queues", p.name))?;
        if (queues as usize) < cfg.cpus.len() {
            bail!(
                "{} has {queues} rx queue(s) but {} workers need one each (ethtool -L {} combined {})",
                p.name,
                cfg.cpus.len(),
                p.name,
                cfg.cpus.len()
            );
        }
        if queues as usize > cfg.cpus.len() {
            tracing::warn!(
                "{} has {queues} rx queues and xfwd runs {} worker(s): traffic on queues {}.. stays \
                 with the kernel (ethtool -L {} combined {}, or --cpus with more CPUs)",
                p.name,
                cfg.cpus.len(),
                cfg.cpus.len(),
                p.name,
                cfg.cpus.len()
            );
        }
    }

    // XDP first, without sockets: every frame still goes to the kernel.
    let mut steer = Steer::load().context("loading the XDP program")?;
    steer
        .set_local_addrs(state.local_addrs())
        .context("filling the XDP local-address map")?;
    let mode = match cfg.xdp_mode {
        XdpMode::Auto => AttachMode::Auto,
        XdpMode::Native => AttachMode::Native,
        XdpMode::Generic => AttachMode::Generic,
    };
    let mut xdp_modes = Vec::new();
    for (slot, p) in ports.iter().enumerate() {
        let got = match steer.attach(p.ifindex, slot as u32, mode) {
            Err(xfwd_ebpf::Error::XdpBusy { .. })
                if crate::ops::takeover::remove_stale(&p.name) =>
            {
                steer.attach(p.ifindex, slot as u32, mode)
            }
            r => r,
        }
        .with_context(|| format!("attaching XDP to {}", p.name))?;
        xdp_modes.push(got.as_str().to_owned());
    }

    // Workers: one UMEM each, one socket per port on the worker's queue.
    let sock_cfg = SocketConfig {
        rx_size: cfg.ring_size,
        tx_size: cfg.ring_size,
        fill_size: cfg.ring_size,
        comp_size: cfg.ring_size,
        mode: match cfg.bind_mode {
            BindMode::Auto => xsk::BindMode::Auto,
            BindMode::ZeroCopy => xsk::BindMode::ZeroCopy,
            BindMode::Copy => xsk::BindMode::Copy,
        },
        need_wakeup: true,
        busy_poll: cfg.busy_poll.then_some(xsk::BusyPoll {
            usecs: 20,
            budget: crate::node::BATCH as u16,
            prefer: true,
        }),
        tx_budget: None,
    };
    let fib = tables.published();
    let stop_workers = Arc::new(AtomicBool::new(false));
    let (resolve_tx, resolve_rx) = crossbeam_channel::bounded::<NextHopKey>(RESOLVE_QUEUE);
    let mut setups = Vec::new();
    let mut stats = Vec::new();
    let tracer = Arc::new(crate::ops::trace::Tracer::default());
    let live = Arc::new(crate::ops::live::LiveLimits::new(&cfg.pending));
    let mut zero_copy = vec![true; ports.len()];
    let mut xsk_fds: Vec<Vec<OwnedFd>> = (0..ports.len()).map(|_| Vec::new()).collect();
    for (w, &cpu) in cfg.cpus.iter().enumerate() {
        let (umem, free) = Umem::new(UmemConfig {
            frame_size: cfg.frame_size,
            frame_count: cfg.frames_per_worker(),
            headroom: 0,
            huge_pages: cfg.huge_pages,
        })
        .with_context(|| format!("allocating worker {w}'s UMEM"))?;
        let mut sockets = Vec::new();
        for (port, p) in ports.iter().enumerate() {
            let s = bind_socket(&umem, p.ifindex, &p.name, w as u32, &sock_cfg)?;
            // One kick can send a whole ring in copy mode (Linux 6.17+); older kernels send 32
            // per kick and the worker kicks again.
            if !s.zero_copy()
                && let Err(e) = s.set_tx_budget(cfg.ring_size)
            {
                tracing::debug!("{} queue {w}: keeping the kernel's TX budget: {e}", p.name);
            }
            zero_copy[port] &= s.zero_copy();
            if let Some(why) = s.zero_copy_refused() {
                tracing::info!("{} queue {w}: copy mode ({why})", p.name);
            }
            xsk_fds[port].push(s.as_fd().try_clone_to_owned()?);
            sockets.push(s);
        }
        let st = Arc::new(WorkerStats::new(ports.len()));
        stats.push(st.clone());
        setups.push(WorkerSetup {
            id: w,
            cpu: Some(cpu),
            umem,
            free,
            sockets,
            fib: fib.clone(),
            stats: st,
            resolve: resolve_tx.clone(),
            idle: cfg.idle,
            busy_poll: cfg.busy_poll,
            pending: cfg.pending,
            forward: cfg.forward_config(),
            workers: cfg.cpus.len(),
            stop: stop_workers.clone(),
            trace: tracer.clone(),
            live: live.clone(),
        });
    }
    drop(resolve_tx);
    let mut socket_slots = Vec::new();
    for setup in &setups {
        let w = setup.id as u32;
        for (slot, s) in setup.sockets.iter().enumerate() {
            socket_slots.push((slot as u32, w, s.as_fd().try_clone_to_owned()?));
        }
    }
    let steer = Arc::new(Mutex::new(steer));
    let (query_tx, query_rx) = crossbeam_channel::bounded::<Query>(16);
    let instance = Arc::new(Instance {
        started: Instant::now(),
        cpus: cfg.cpus.clone(),
        workers: stats,
        fib: fib.clone(),
        xdp_modes: xdp_modes.clone(),
        zero_copy: zero_copy.clone(),
        xsk_fds,
        steer: steer.clone(),
        baseline: Mutex::new(None),
        neighbour_states: Mutex::new(neighbour_states(&state, &ports)),
        queries: query_tx,
        tracer,
        live,
    });
    // The metrics endpoint binds before capabilities are dropped (a port below 1024 needs
    // CAP_NET_BIND_SERVICE); a failure here is a setup failure like any other.
    let metrics_listener = match settings.metrics.map(MetricsServer::bind).transpose() {
        Ok(l) => l,
        Err(e) => {
            shutdown(&steer, &socket_slots, &stop_workers, Vec::new());
            return Err(e);
        }
    };
    // Everything that needs privileges is done: threads started from here on (workers, control
    // socket, metrics) inherit the reduced set.
    if let Err(e) = crate::privileges::drop_after_setup() {
        tracing::warn!("could not drop capabilities: {e:#}");
    }
    keep_off_worker_cpus(&cfg.cpus);
    let mut metrics = match metrics_listener
        .map(|l| MetricsServer::serve(l, metrics_render(&instance)))
        .transpose()
    {
        Ok(m) => m,
        Err(e) => {
            shutdown(&steer, &socket_slots, &stop_workers, Vec::new());
            return Err(e);
        }
    };
    let mut handles = Vec::new();
    for setup in setups {
        handles.push(worker::spawn(setup).context("starting a worker thread")?);
    }
    // Workers run: let transit traffic in.
    let redirect = (|| -> Result<()> {
        let mut steer = lock(&steer);
        for (slot, queue, fd) in &socket_slots {
            steer.set_socket(*slot, *queue, fd.as_fd())?;
        }
        Ok(())
    })();
    let server = redirect.and_then(|()| Server::start(&cfg.control, instance.clone()));
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            shutdown(&steer, &socket_slots, &stop_workers, handles);
            return Err(e);
        }
    };
    let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
    eprintln!(
        "xfwd: ready: forwarding IPv4 between {} with {} worker(s) on CPU {:?} (XDP {}, {} mode); control socket {}",
        names.join(", "),
        cfg.cpus.len(),
        cfg.cpus,
        xdp_modes.join("/"),
        if zero_copy.iter().all(|z| *z) {
            "zero-copy"
        } else {
            "copy"
        },
        cfg.control.display()
    );
    crate::ops::sdnotify::notify_or_log(&format!(
        "READY=1\nSTATUS=forwarding between {}",
        names.join(", ")
    ));

    let mut svc = ServiceState {
        settings,
        source,
        metrics: metrics.take(),
        instance: instance.clone(),
        watchdog: crate::ops::sdnotify::Watchdog::from_env(),
        hup,
        queries: query_rx,
    };
    let result = follow_kernel(
        &mut nl,
        &mut state,
        &mut tables,
        &steer,
        &resolve_rx,
        &signalled,
        &mut svc,
    );
    crate::ops::sdnotify::notify_or_log("STOPPING=1");
    shutdown(&steer, &socket_slots, &stop_workers, handles);
    drop(server);
    drop(svc);
    let drops: u64 = instance
        .workers
        .iter()
        .flat_map(|w| w.drops.iter())
        .map(|c| c.get())
        .sum();
    let forwarded: u64 = instance.workers.iter().map(|w| w.forwarded.get()).sum();
    match &result {
        Ok(()) => {
            eprintln!("xfwd: stopped: forwarded {forwarded} packets, dropped {drops}; XDP detached")
        }
        Err(e) => eprintln!("xfwd: stopping after error: {e:#}"),
    }
    result
}

fn bind_socket(
    umem: &Umem,
    ifindex: u32,
    name: &str,
    queue: u32,
    cfg: &SocketConfig,
) -> Result<XskSocket> {
    XskSocket::bind_ifindex(umem, ifindex, queue, cfg)
        .with_context(|| format!("binding an AF_XDP socket to {name} queue {queue}"))
}

/// The control loop: mirror kernel changes into the tables and resolve next hops, until a signal.
fn follow_kernel(
    nl: &mut Netlink,
    state: &mut KernelState,
    tables: &mut TableBuilder,
    steer: &Mutex<Steer>,
    resolve_rx: &Receiver<NextHopKey>,
    signalled: &AtomicBool,
    svc: &mut ServiceState,
) -> Result<()> {
    let mut events = Vec::new();
    let mut asked: HashMap<NextHopKey, Instant> = HashMap::new();
    while !signalled.load(Ordering::Relaxed) {
        if let Some(w) = &mut svc.watchdog {
            w.tick(Instant::now());
        }
        if svc.hup.swap(false, Ordering::Relaxed) {
            match svc.reload() {
                Ok(out) => tracing::info!("SIGHUP: {}", out.render()),
                Err(e) => tracing::error!(
                    "SIGHUP: reload failed, keeping the running configuration: {e:#}"
                ),
            }
        }
        for q in svc.queries.try_iter().collect::<Vec<_>>() {
            let answer = match &q.req {
                Request::Reload => svc.reload().and_then(|o| Ok(serde_json::to_value(o)?)),
                Request::Routes { lookup } => {
                    routes_report(state, &svc.instance, tables.ports(), lookup.as_deref())
                        .and_then(|r| Ok(serde_json::to_value(r)?))
                }
                Request::Neighbours => Ok(serde_json::to_value(neighbours_report(
                    state,
                    tables.ports(),
                ))?),
                other => Err(anyhow::anyhow!("{other:?} is not a control-thread query")),
            };
            let _ = q.reply.send(answer);
        }
        events.clear();
        match nl.recv(&mut events, Duration::from_millis(5)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading netlink events"),
        }
        let mut change = Change::NONE;
        // The main-table prefixes these events touch: route changes are applied per prefix.
        let mut touched: Vec<(std::net::Ipv4Addr, u8)> = Vec::new();
        for ev in events.drain(..) {
            if let KernelEvent::NewRoute(r, _) | KernelEvent::DelRoute(r) = &ev
                && r.table == super::tables::MAIN_TABLE
                && r.dst_len <= 32
            {
                let dst = r.dst.to_bits() & crate::fib::lpm::mask(r.dst_len);
                touched.push((dst.into(), r.dst_len));
            }
            if matches!(ev, KernelEvent::Overrun) {
                tracing::warn!(
                    "netlink events were lost (socket overrun): resynchronising with a full dump"
                );
                let dump = nl.dump().context("resynchronising with the kernel")?;
                change |= state.replace_all(dump) | Change::ALL;
            } else {
                change |= state.apply(ev);
            }
        }
        if !change.is_empty() {
            touched.sort_unstable();
            touched.dedup();
            tables.update(state, change, &touched);
            if change.intersects(Change::NEIGHS | Change::LINKS) {
                *lock(&svc.instance.neighbour_states) = neighbour_states(state, tables.ports());
            }
            if change.intersects(Change::ADDRS) {
                let local = state.local_addrs();
                if let Err(e) = lock(steer).set_local_addrs(&local) {
                    tracing::error!("updating the XDP local-address map: {e}");
                }
            }
        }
        let now = Instant::now();
        asked.retain(|_, t| now.duration_since(*t) < RESOLVE_EVERY);
        let ports = tables.ports().clone();
        for key in resolve_rx.try_iter() {
            if asked.contains_key(&key) {
                continue;
            }
            asked.insert(key, now);
            let Some(port) = ports.get(usize::from(key.port)) else {
                continue;
            };
            let ip = Ipv4Addr::from_bits(key.ip);
            if !needs_kernel_resolution(state, port.ifindex, ip) {
                continue;
            }
            if let Err(e) = nl.resolve_neigh(port.ifindex, ip) {
                tracing::debug!("asking the kernel to resolve {ip} on {}: {e}", port.name);
            }
        }
    }
    Ok(())
}

/// Whether asking the kernel to resolve (`NTF_USE`) this neighbour is useful and safe: when it is
/// absent, incomplete, failed or `STALE` (Linux's `neigh_event_send` moves STALE to DELAY and
/// probes it). Never for PERMANENT or NOARP entries, which `NTF_USE` would turn into INCOMPLETE,
/// and not while the kernel is already confirming one (REACHABLE, DELAY, PROBE).
fn needs_kernel_resolution(state: &KernelState, ifindex: u32, ip: Ipv4Addr) -> bool {
    use super::netlink::NudState;
    let Some(n) = state.neigh(ifindex, ip) else {
        return true;
    };
    let busy = NudState::PERMANENT.bits()
        | NudState::NOARP.bits()
        | NudState::REACHABLE.bits()
        | NudState::DELAY.bits()
        | NudState::PROBE.bits();
    n.state.bits() & busy == 0
}

/// Hands traffic back to the kernel, then stops the workers.
fn shutdown(
    steer: &Mutex<Steer>,
    socket_slots: &[(u32, u32, OwnedFd)],
    stop_workers: &AtomicBool,
    handles: Vec<std::thread::JoinHandle<()>>,
) {
    {
        let mut steer = lock(steer);
        for (slot, queue, _) in socket_slots {
            let _ = steer.clear_socket(*slot, *queue);
        }
        let attached: Vec<u32> = steer.attachments().map(|(ifindex, _)| ifindex).collect();
        for ifindex in attached {
            if let Err(e) = steer.detach(ifindex) {
                tracing::error!("detaching XDP from ifindex {ifindex}: {e}");
            }
        }
    }
    stop_workers.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A request only the control thread can answer (it owns the kernel mirror and the service
/// settings), with where to send the answer.
struct Query {
    req: Request,
    reply: crossbeam_channel::Sender<Result<serde_json::Value>>,
}

/// The service side of the control loop: settings, reload, watchdog, metrics.
struct ServiceState {
    settings: Settings,
    source: Option<Source>,
    metrics: Option<MetricsServer>,
    instance: Arc<Instance>,
    watchdog: Option<crate::ops::sdnotify::Watchdog>,
    hup: Arc<AtomicBool>,
    queries: Receiver<Query>,
}

impl ServiceState {
    /// Re-reads the configuration; applies what can change live, reports what cannot.
    fn reload(&mut self) -> Result<ReloadOutcome> {
        let source = self
            .source
            .as_ref()
            .context("xfwd was started without a configuration source; nothing to reload")?;
        let new = source.load()?;
        let out = diff(&self.settings, &new);
        for key in &out.applied {
            match key.as_str() {
                "service.log_level" => {
                    crate::ops::log::set_level(&new.log_level)?;
                    self.settings.log_level = new.log_level.clone();
                }
                "service.metrics" => {
                    // Close the old endpoint first: the new one may reuse its port.
                    self.metrics = None;
                    if let Some(addr) = new.metrics {
                        self.metrics =
                            Some(MetricsServer::start(addr, metrics_render(&self.instance))?);
                    }
                    self.settings.metrics = new.metrics;
                }
                "neighbour.unres_qlen" | "neighbour.resolve_timeout_ms" => {
                    let p = &mut self.settings.run.pending;
                    p.per_nexthop = new.run.pending.per_nexthop.min(p.total);
                    p.timeout = new.run.pending.timeout;
                    self.instance.live.set(p);
                }
                other => bail!("reload: {other} is marked live but has no live handler"),
            }
            let name = crate::ops::config::key(key).map(|k| k.name);
            if let Some(name) = name {
                match new.values.get(name) {
                    Some(v) => self.settings.values.insert(name, v.clone()),
                    None => self.settings.values.remove(name),
                };
            }
        }
        if !out.needs_restart.is_empty() {
            tracing::warn!(
                "reload: changed but only applied after a restart: {}",
                out.needs_restart.join(", ")
            );
        }
        Ok(out)
    }
}

fn metrics_render(instance: &Arc<Instance>) -> crate::ops::metrics::Render {
    let inst = instance.clone();
    Arc::new(move || crate::ops::metrics::render(&inst.raw_stats()))
}

/// Kernel neighbour entries on xfwd's ports, by lower-case NUD state name.
fn neighbour_states(
    state: &KernelState,
    ports: &[crate::fib::PortInfo],
) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for n in state.neighs().values() {
        if ports.iter().any(|p| p.ifindex == n.ifindex) {
            *out.entry(format!("{:?}", n.state).to_lowercase())
                .or_insert(0) += 1;
        }
    }
    out
}

fn link_name(state: &KernelState, ifindex: u32) -> String {
    state
        .link(ifindex)
        .map_or_else(|| format!("if{ifindex}"), |l| l.name.clone())
}

fn routes_report(
    state: &KernelState,
    instance: &Instance,
    _ports: &[crate::fib::PortInfo],
    lookup: Option<&str>,
) -> Result<RoutesReport> {
    use super::report::RouteRow;
    let row = |r: &super::netlink::Route| RouteRow {
        prefix: format!("{}/{}", r.dst, r.dst_len),
        kind: format!("{:?}", r.kind).to_lowercase(),
        paths: match state.resolve(r) {
            super::mirror::Resolved::Paths(p) => p
                .iter()
                .map(|h| match h.gateway {
                    Some(g) => format!("via {g} dev {}", link_name(state, h.ifindex)),
                    None => format!("dev {}", link_name(state, h.ifindex)),
                })
                .collect(),
            super::mirror::Resolved::Blackhole => vec!["blackhole".to_owned()],
            super::mirror::Resolved::Missing(id) => vec![format!("nhid {id} (missing)")],
        },
        metric: r.priority,
        protocol: match r.protocol {
            2 => "kernel".to_owned(),
            3 => "boot".to_owned(),
            4 => "static".to_owned(),
            186 => "bgp".to_owned(),
            188 => "ospf".to_owned(),
            12 => "bird".to_owned(),
            n => n.to_string(),
        },
        table: r.table,
    };
    let mut report = RoutesReport::default();
    let Some(arg) = lookup else {
        report.routes = state.main_routes().map(row).collect();
        return Ok(report);
    };
    let (addr, len) = match arg.split_once('/') {
        Some((a, l)) => (
            a.parse::<Ipv4Addr>()
                .with_context(|| format!("{a:?} is not an IPv4 address"))?,
            Some(
                l.parse::<u8>()
                    .ok()
                    .filter(|l| *l <= 32)
                    .with_context(|| format!("{l:?} is not a prefix length"))?,
            ),
        ),
        None => (
            arg.parse::<Ipv4Addr>()
                .with_context(|| format!("{arg:?} is not an IPv4 address or prefix"))?,
            None,
        ),
    };
    let covers = |r: &super::netlink::Route| {
        let m = if r.dst_len == 0 {
            0
        } else {
            u32::MAX << (32 - r.dst_len)
        };
        u32::from(addr) & m == u32::from(r.dst) & m
    };
    let mut matches: Vec<&super::netlink::Route> = match len {
        Some(l) => state
            .main_routes()
            .filter(|r| r.dst_len == l && u32::from(r.dst) == u32::from(addr))
            .collect(),
        None => state.main_routes().filter(|r| covers(r)).collect(),
    };
    matches.sort_by_key(|r| (std::cmp::Reverse(r.dst_len), r.priority));
    if len.is_none() {
        report.lookup = Some(addr.to_string());
        let fib = instance.fib.load();
        report.fib_entry = fib.routes.describe(fib.routes.lookup(addr.to_bits()));
    }
    report.routes = matches.into_iter().map(row).collect();
    Ok(report)
}

fn neighbours_report(state: &KernelState, ports: &[crate::fib::PortInfo]) -> NeighboursReport {
    let mut rows: Vec<_> = state
        .neighs()
        .values()
        .filter(|n| ports.iter().any(|p| p.ifindex == n.ifindex))
        .map(|n| super::report::NeighbourRow {
            ip: n.ip.to_string(),
            interface: link_name(state, n.ifindex),
            mac: n.mac.map(|m| {
                m.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            }),
            state: format!("{:?}", n.state),
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.interface, a.ip.parse::<Ipv4Addr>().ok())
            .cmp(&(&b.interface, b.ip.parse::<Ipv4Addr>().ok()))
    });
    NeighboursReport { neighbours: rows }
}

/// What the control socket reads from the running instance.
struct Instance {
    started: Instant,
    cpus: Vec<usize>,
    workers: Vec<Arc<CachePadded<WorkerStats>>>,
    fib: Arc<ArcSwap<Fib>>,
    xdp_modes: Vec<String>,
    zero_copy: Vec<bool>,
    /// Duplicates of each port's socket fds (one per worker), for `XDP_STATISTICS`.
    xsk_fds: Vec<Vec<OwnedFd>>,
    steer: Arc<Mutex<Steer>>,
    /// Counters at the last `xfwd clear counters`, subtracted from what `show` prints (never
    /// from metrics: Prometheus counters only go up).
    baseline: Mutex<Option<StatsReport>>,
    /// Neighbour entries by state, refreshed by the control thread when neighbours change.
    neighbour_states: Mutex<std::collections::BTreeMap<String, u64>>,
    /// Requests for the control thread.
    queries: crossbeam_channel::Sender<Query>,
    /// The workers' packet tracer.
    tracer: Arc<crate::ops::trace::Tracer>,
    /// Neighbour-queue limits the workers re-read.
    live: Arc<crate::ops::live::LiveLimits>,
}

impl Instance {
    /// Counters since the last `clear counters`.
    fn stats(&self) -> StatsReport {
        let mut s = self.raw_stats();
        if let Some(base) = lock(&self.baseline).as_ref() {
            s.subtract(base);
        }
        s
    }

    /// Asks the control thread and waits for its answer.
    fn ask(&self, req: &Request) -> Result<serde_json::Value> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.queries
            .send_timeout(
                Query {
                    req: req.clone(),
                    reply: tx,
                },
                Duration::from_secs(5),
            )
            .map_err(|_| anyhow::anyhow!("the control thread is busy"))?;
        rx.recv_timeout(Duration::from_secs(30))
            .map_err(|_| anyhow::anyhow!("the control thread did not answer"))?
    }

    /// Counters since start, summed over workers now.
    fn raw_stats(&self) -> StatsReport {
        // XDP_STATISTICS of each (port, worker) socket, read once.
        let xsk_stats: Vec<Vec<std::collections::BTreeMap<String, u64>>> = self
            .xsk_fds
            .iter()
            .map(|fds| {
                fds.iter()
                    .map(|fd| {
                        xsk::statistics(fd.as_fd())
                            .map(|s| {
                                s.named()
                                    .into_iter()
                                    .map(|(k, v)| (k.to_owned(), v))
                                    .collect()
                            })
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .collect();
        let fib = self.fib.load_full();
        let workers: Vec<&WorkerStats> = self.workers.iter().map(|w| &***w).collect();
        let drops = DropReason::ALL
            .iter()
            .map(|r| {
                (
                    r.name().to_owned(),
                    workers.iter().map(|w| w.drops[*r as usize].get()).sum(),
                )
            })
            .collect();
        let events = crate::drop::Event::ALL
            .iter()
            .map(|e| {
                (
                    e.name().to_owned(),
                    workers.iter().map(|w| w.events[*e as usize].get()).sum(),
                )
            })
            .collect();
        let nonzero = |counts: &dyn Fn(DropReason) -> u64| {
            DropReason::ALL
                .iter()
                .filter_map(|r| {
                    let n = counts(*r);
                    (n > 0).then(|| (r.name().to_owned(), n))
                })
                .collect::<std::collections::BTreeMap<String, u64>>()
        };
        let interfaces = fib
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let [rx_packets, rx_bytes, tx_packets, tx_bytes] =
                    crate::stats::port_totals(&workers, i);
                let mut xsk = std::collections::BTreeMap::new();
                for per_queue in &xsk_stats[i] {
                    for (k, v) in per_queue {
                        *xsk.entry(k.clone()).or_insert(0) += v;
                    }
                }
                InterfaceReport {
                    name: p.name.clone(),
                    ifindex: p.ifindex,
                    rx_packets,
                    rx_bytes,
                    tx_packets,
                    tx_bytes,
                    xdp_mode: self.xdp_modes[i].clone(),
                    zero_copy: self.zero_copy[i],
                    xsk,
                    drops: nonzero(&|r| {
                        workers
                            .iter()
                            .filter_map(|w| w.ports.get(i))
                            .map(|p| p.drops[r as usize].get())
                            .sum()
                    }),
                }
            })
            .collect();
        let workers_report = workers
            .iter()
            .enumerate()
            .map(|(id, w)| {
                let rx: u64 = w.ports.iter().map(|p| p.rx_packets.get()).sum();
                WorkerReport {
                    id,
                    cpu: self.cpus.get(id).copied(),
                    forwarded: w.forwarded.get(),
                    batches: w.batches.get(),
                    pending: w.pending.get(),
                    tx_kicks: w.tx_kicks.get(),
                    packets: rx,
                    run_ns: w.run_ns.get(),
                    busy_ns: w.busy_ns.get(),
                    stalls: w.stalls.get(),
                    stall_ns: w.stall_ns.get(),
                    longest_stall_ns: w.longest_stall_ns.get(),
                    ports: w
                        .ports
                        .iter()
                        .enumerate()
                        .map(|(port, p)| PortCounts {
                            rx_packets: p.rx_packets.get(),
                            rx_bytes: p.rx_bytes.get(),
                            tx_packets: p.tx_packets.get(),
                            tx_bytes: p.tx_bytes.get(),
                            xsk: xsk_stats
                                .get(port)
                                .and_then(|q| q.get(id))
                                .cloned()
                                .unwrap_or_default(),
                        })
                        .collect(),
                    drops: nonzero(&|r| w.drops[r as usize].get()),
                    ..WorkerReport::default()
                }
            })
            .collect();
        let xdp = lock(&self.steer)
            .counters()
            .map(|c| c.iter().map(|(v, n)| (v.name().to_owned(), n)).collect())
            .unwrap_or_default();
        let mut report = StatsReport {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_s: self.started.elapsed().as_secs_f64(),
            forwarded: workers.iter().map(|w| w.forwarded.get()).sum(),
            drops,
            events,
            interfaces,
            workers: workers_report,
            xdp,
            fib: FibReport {
                generation: fib.generation,
                prefixes: fib.routes.prefixes() as u64,
                neighbours: fib.adj.neighbours() as u64,
                neighbour_states: lock(&self.neighbour_states).clone(),
            },
        };
        report.derive();
        report
    }
}

impl Handler for Instance {
    fn handle(&self, req: &Request) -> Result<serde_json::Value> {
        Ok(match req {
            Request::Stats | Request::Runtime | Request::Interfaces => {
                serde_json::to_value(self.stats())?
            }
            Request::Errors => serde_json::to_value(ErrorsReport::from_stats(&self.stats()))?,
            Request::ClearCounters => {
                *lock(&self.baseline) = Some(self.raw_stats());
                serde_json::json!({"cleared": true})
            }
            Request::Routes { .. } | Request::Neighbours | Request::Reload => self.ask(req)?,
            Request::Trace {
                count,
                drop_reason,
                timeout_ms,
            } => {
                let records = self.tracer.capture(
                    *count,
                    drop_reason.as_deref(),
                    Duration::from_millis((*timeout_ms).min(600_000)),
                )?;
                let interfaces = self
                    .fib
                    .load()
                    .ports
                    .iter()
                    .map(|p| p.name.clone())
                    .collect();
                serde_json::to_value(crate::ops::trace::TraceReport {
                    interfaces,
                    records,
                })?
            }
        })
    }
}

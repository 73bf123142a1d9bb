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
use super::report::{ErrorsReport, FibReport, InterfaceReport, StatsReport, WorkerReport};
use super::server::{Handler, Request, Server};
use super::tables::TableBuilder;
use crate::drop::DropReason;
use crate::fib::{Fib, NextHopKey};
use crate::stats::WorkerStats;
use crate::worker::{self, WorkerSetup};
use crate::xsk::{self, SocketConfig, Umem, UmemConfig, XskSocket};

/// Pending resolution requests the control thread accepts before workers retry later.
const RESOLVE_QUEUE: usize = 4096;
/// The same next hop is asked of the kernel at most this often.
const RESOLVE_EVERY: Duration = Duration::from_millis(500);

/// Runs until SIGINT or SIGTERM.
///
/// # Errors
///
/// Setup failures (missing capabilities, unknown interfaces, XDP or AF_XDP refused), each
/// naming what failed; whatever was attached is detached before returning.
pub fn run(cfg: RunConfig) -> Result<()> {
    crate::privileges::check()?;
    let signalled = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while shutting down exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, signalled.clone())
            .and_then(|_| signal_hook::flag::register(sig, signalled.clone()))
            .context("installing signal handlers")?;
    }

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
        let got = steer
            .attach(p.ifindex, slot as u32, mode)
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
        });
    }
    drop(resolve_tx);
    let mut handles = Vec::new();
    let mut socket_slots = Vec::new();
    for setup in setups {
        let w = setup.id as u32;
        for (slot, s) in setup.sockets.iter().enumerate() {
            socket_slots.push((slot as u32, w, s.as_fd().try_clone_to_owned()?));
        }
        handles.push(worker::spawn(setup).context("starting a worker thread")?);
    }
    // Workers run: let transit traffic in.
    let redirect = (|| -> Result<()> {
        for (slot, queue, fd) in &socket_slots {
            steer.set_socket(*slot, *queue, fd.as_fd())?;
        }
        Ok(())
    })();
    let steer = Arc::new(Mutex::new(steer));
    let instance = Arc::new(Instance {
        started: Instant::now(),
        cpus: cfg.cpus.clone(),
        workers: stats,
        fib: fib.clone(),
        xdp_modes: xdp_modes.clone(),
        zero_copy: zero_copy.clone(),
        xsk_fds,
        steer: steer.clone(),
    });
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

    let result = follow_kernel(
        &mut nl,
        &mut state,
        &mut tables,
        &steer,
        &resolve_rx,
        &signalled,
    );
    shutdown(&steer, &socket_slots, &stop_workers, handles);
    drop(server);
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
) -> Result<()> {
    let mut events = Vec::new();
    let mut asked: HashMap<NextHopKey, Instant> = HashMap::new();
    while !signalled.load(Ordering::Relaxed) {
        events.clear();
        match nl.recv(&mut events, Duration::from_millis(5)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading netlink events"),
        }
        let mut change = Change::NONE;
        for ev in events.drain(..) {
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
            tables.rebuild(state, change);
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
}

impl Instance {
    fn stats(&self) -> StatsReport {
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
                for fd in &self.xsk_fds[i] {
                    if let Ok(s) = xsk::statistics(fd.as_fd()) {
                        for (k, v) in s.named() {
                            *xsk.entry(k.to_owned()).or_insert(0) += v;
                        }
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
                let batches = w.batches.get();
                let rx: u64 = w.ports.iter().map(|p| p.rx_packets.get()).sum();
                let run = w.run_ns.get();
                WorkerReport {
                    id,
                    cpu: self.cpus.get(id).copied(),
                    forwarded: w.forwarded.get(),
                    batches,
                    packets_per_batch: if batches == 0 {
                        0.0
                    } else {
                        rx as f64 / batches as f64
                    },
                    busy_ratio: if run == 0 {
                        0.0
                    } else {
                        w.busy_ns.get() as f64 / run as f64
                    },
                    pending: w.pending.get(),
                    tx_kicks: w.tx_kicks.get(),
                    drops: nonzero(&|r| w.drops[r as usize].get()),
                }
            })
            .collect();
        let xdp = lock(&self.steer)
            .counters()
            .map(|c| c.iter().map(|(v, n)| (v.name().to_owned(), n)).collect())
            .unwrap_or_default();
        StatsReport {
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
            },
        }
    }
}

impl Handler for Instance {
    fn handle(&self, req: &Request) -> Result<serde_json::Value> {
        Ok(match req {
            Request::Stats => serde_json::to_value(self.stats())?,
            Request::Errors => serde_json::to_value(ErrorsReport::from_stats(&self.stats()))?,
        })
    }
}

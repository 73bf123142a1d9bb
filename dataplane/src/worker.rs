//! The per-core run-to-completion loop (DPDK l3fwd's `main_loop`, a VPP worker thread).
//!
//! Worker `w` owns queue `w` of every port through one AF_XDP socket per port, all sharing the
//! worker's one UMEM, so a frame received on one port is transmitted on another by moving its
//! descriptor. One iteration:
//!
//! ```text
//!  load the FIB snapshot (one atomic load; a new one is noticed by its generation)
//!  for each port p:  completion ring ─► free list ─► fill ring        (recycle, no allocator)
//!                    rx ring ─► batch ─► ip4_forward_batch ─► Tx(q): stage on port q
//!                                                            Resolve: park until ARP answers
//!                                                            Drop(r): count r, recycle
//!  for each port q:  staged ─► tx ring ─► sendto kick (copy mode: the kernel transmits here)
//!  settle parked packets when the snapshot changed; publish counters; idle policy
//! ```
//!
//! Nothing on this path allocates, locks or makes a syscall per packet: the vectors are
//! preallocated, counters are local until the end of the iteration, and the only syscalls are
//! the TX kick per port per iteration and, when the kernel asks for it, an RX wakeup.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam_channel::Sender;
use crossbeam_utils::CachePadded;

use crate::control::config::IdleMode;
use crate::drop::{DropReason, Event};
use crate::fib::{AdjState, FastMap, Fib, L2_LEN, NextHopKey, PortId};
use crate::neigh::{Parked, Pending, PendingLimits};
use crate::node::icmp::{FRAME_ROOM, IcmpError};
use crate::node::ip4_fragment::Fragmenter;
use crate::node::{self, BATCH, ForwardConfig, Ip4Ctx, Outcome, PacketBatch};
use crate::stats::{LocalStats, WorkerStats};
use crate::xsk::{Frame, Kick, Umem, XskSocket};

/// Empty iterations an adaptive worker spins through before it sleeps in `poll(2)`.
const SPIN_BEFORE_SLEEP: u32 = 20_000;
/// How long an idle adaptive worker sleeps at most (bounds shutdown and resolution latency).
const SLEEP_MS: i32 = 10;
/// How often parked packets are re-examined when no new snapshot arrives (timeouts).
const SETTLE_EVERY: Duration = Duration::from_millis(50);
/// A gap this long between two loop iterations (not spent asleep in `poll(2)` on purpose) is a
/// stall: the worker's CPU was taken away (another task, a long system call, the hypervisor)
/// while its RX ring filled. At 1 Mpps, 4 ms fills a 4096-slot ring.
const STALL: Duration = Duration::from_millis(1);

/// Everything a worker needs, built on the main thread and moved into the worker's thread.
#[derive(Debug)]
pub struct WorkerSetup {
    /// Worker number = the queue it owns on every port.
    pub id: usize,
    /// CPU to pin to.
    pub cpu: Option<usize>,
    /// The worker's packet memory.
    pub umem: Umem,
    /// All frames not yet given to the kernel.
    pub free: Vec<Frame>,
    /// One socket per port, index = port id, all on `umem`.
    pub sockets: Vec<XskSocket>,
    /// The published forwarding snapshot.
    pub fib: Arc<ArcSwap<Fib>>,
    /// Where the worker publishes its counters.
    pub stats: Arc<CachePadded<WorkerStats>>,
    /// Resolution requests to the control thread (bounded; a full channel is retried later).
    pub resolve: Sender<NextHopKey>,
    /// Idle behaviour.
    pub idle: IdleMode,
    /// Busy polling configured on the sockets: drive the RX path with a wakeup every iteration.
    pub busy_poll: bool,
    /// Limits of the queue of packets awaiting resolution.
    pub pending: PendingLimits,
    /// Forwarding policy (martians, rp_filter, options, ICMP errors).
    pub forward: ForwardConfig,
    /// Number of workers (the global ICMP budget is split between them).
    pub workers: usize,
    /// Set to stop the loop.
    pub stop: Arc<AtomicBool>,
    /// Packet tracing (`xfwd trace`): checked once per RX batch.
    pub trace: Arc<crate::ops::trace::Tracer>,
    /// Neighbour-queue limits `xfwd reload` can change, read every [`SETTLE_EVERY`].
    pub live: Arc<crate::ops::live::LiveLimits>,
}

/// Starts the worker's thread (`xfwd-w{id}`).
///
/// # Errors
///
/// When the thread cannot be created.
pub fn spawn(setup: WorkerSetup) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("xfwd-w{}", setup.id))
        .spawn(move || run(setup))
}

/// One port's socket and the frames staged for its TX ring during the current iteration.
struct Port {
    sock: XskSocket,
    tx: Vec<Frame>,
    /// The last kick left descriptors in the TX ring: kick again even without new frames.
    kick_again: bool,
}

/// A received batch seen through the pipeline's [`PacketBatch`] interface.
struct UmemBatch<'a> {
    umem: &'a Umem,
    frames: &'a mut [Frame],
}

impl PacketBatch for UmemBatch<'_> {
    fn len(&self) -> usize {
        self.frames.len()
    }

    fn packet_mut(&mut self, i: usize) -> &mut [u8] {
        self.umem.data_mut(&mut self.frames[i])
    }

    fn truncate(&mut self, i: usize, len: usize) {
        let f = &mut self.frames[i];
        if len < f.len() {
            // Shortening within the frame cannot leave its bounds.
            let _ = f.set_len(len);
        }
    }

    fn set_len(&mut self, i: usize, len: usize) -> bool {
        self.frames[i].set_len(len).is_ok()
    }
}

/// Parks `frame` until `key` resolves, counting what the queue refuses or evicts.
#[allow(
    clippy::too_many_arguments,
    reason = "the worker loop's state, passed apart to keep borrows disjoint"
)]
fn park(
    parked: &mut Pending<Frame>,
    key: NextHopKey,
    frame: Frame,
    now: Instant,
    generation: u64,
    resolve: &Sender<NextHopKey>,
    local: &mut LocalStats,
    free: &mut Vec<Frame>,
) {
    match parked.park(key, frame, now, generation) {
        Parked::Held { request, evicted } => {
            if request {
                // Full channel: the control thread is busy; the next packet for this next hop
                // asks again after the retry interval.
                let _ = resolve.try_send(key);
            }
            if let Some(old) = evicted {
                local.drop_at(usize::from(key.port), DropReason::NeighQueueFull);
                free.push(old);
            }
        }
        Parked::Refused(frame, reason) => {
            local.drop_at(usize::from(key.port), reason);
            free.push(frame);
        }
    }
}

/// Splits a packet too big for `key`'s port (DF clear, TTL already decremented) into fragments
/// in frames from `free` (Linux `ip_do_fragment`), and sends or parks them. The original frame
/// goes back to `free`.
#[allow(
    clippy::too_many_arguments,
    reason = "the worker loop's state, passed apart to keep borrows disjoint"
)]
#[cold]
#[inline(never)]
fn fragment(
    umem: &Umem,
    fib: &Fib,
    key: NextHopKey,
    mtu: usize,
    frame: Frame,
    ingress: usize,
    free: &mut Vec<Frame>,
    ports: &mut [Port],
    parked: &mut Pending<Frame>,
    now: Instant,
    resolve: &Sender<NextHopKey>,
    local: &mut LocalStats,
) {
    let data = umem.data(&frame);
    let ip = &data[L2_LEN..];
    let fr = Fragmenter::new(ip, mtu);
    let Some(mut fr) = fr.filter(|f| f.count() <= free.len()) else {
        local.drop_at(ingress, DropReason::FragNoFrame);
        free.push(frame);
        return;
    };
    let adj = fib.neighbour(key);
    let resolved = adj.state == AdjState::Resolved;
    local.events[Event::Fragmented as usize] += 1;
    let n = fr.count();
    let mut made = 0;
    for _ in 0..n {
        let Some(mut f) = free.pop() else { break };
        let room = (L2_LEN + mtu).min(f.chunk_size() - f.headroom());
        if f.set_len(room).is_err() {
            free.push(f);
            break;
        }
        let out = umem.data_mut(&mut f);
        let Some(len) = fr.next_into(ip, &mut out[L2_LEN..]) else {
            free.push(f);
            break;
        };
        out[..L2_LEN].copy_from_slice(&adj.l2);
        let _ = f.set_len(L2_LEN + len);
        local.events[Event::FragmentsCreated as usize] += 1;
        made += 1;
        if resolved {
            ports[usize::from(key.port)].tx.push(f);
        } else {
            park(parked, key, f, now, fib.generation, resolve, local, free);
        }
    }
    // Frames were counted up front, so this only happens if a frame cannot hold a fragment:
    // the datagram is incomplete downstream, so count it as not forwarded.
    if made < n {
        local.drop_at(ingress, DropReason::FragNoFrame);
    }
    free.push(frame);
}

/// The loop. Returns when `stop` is set.
fn run(setup: WorkerSetup) {
    let WorkerSetup {
        id,
        cpu,
        umem,
        mut free,
        sockets,
        fib,
        stats,
        resolve,
        idle,
        busy_poll,
        pending,
        forward,
        workers,
        stop,
        trace,
        live,
    } = setup;
    if let Some(cpu) = cpu {
        if core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
            tracing::debug!(worker = id, cpu, "pinned");
        } else {
            tracing::warn!(
                worker = id,
                cpu,
                "could not pin worker to its CPU; running unpinned"
            );
        }
    }
    let nports = sockets.len();
    let stage_cap = BATCH * nports + pending.total;
    let mut ports: Vec<Port> = sockets
        .into_iter()
        .map(|sock| Port {
            sock,
            tx: Vec::with_capacity(stage_cap),
            kick_again: false,
        })
        .collect();
    let mut fib_cache = arc_swap::Cache::new(fib);
    let mut local = LocalStats::new(nports);
    let mut parked: Pending<Frame> = Pending::new(pending);
    let mut confirm = Confirm::default();
    let mut rx: Vec<Frame> = Vec::with_capacity(BATCH);
    // Copies of received frames while a trace runs (allocated only then).
    let mut traced: Vec<Vec<u8>> = Vec::new();
    let mut out = [Outcome::Drop(DropReason::NoRoute); BATCH];
    let mut ctx = Ip4Ctx::new(forward, workers, id);
    let mut reparks: Vec<(NextHopKey, bool, Frame)> = Vec::with_capacity(pending.total);
    let started = Instant::now();
    let mut last_settle = started;
    let mut last_housekeeping = started;
    let mut last_live = started;
    let mut generation_seen = 0;
    let mut idle_loops = 0u32;
    let mut last_t0 = started;
    let mut slept = false;

    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        let gap = t0.duration_since(last_t0);
        if gap >= STALL && !slept {
            stats.stall(gap);
        }
        (last_t0, slept) = (t0, false);
        let fib: &Arc<Fib> = fib_cache.load();
        let mut work = 0usize;
        ctx.now_ms = t0.duration_since(started).as_millis() as u64;

        for p in 0..nports {
            let port = &mut ports[p];
            port.sock.complete(&mut free, usize::MAX);
            port.sock.fill(&mut free, usize::MAX);
            if busy_poll || port.sock.fill_needs_wakeup() {
                let _ = port.sock.wake_rx();
            }
            let n = port.sock.recv(&mut rx, BATCH);
            if n == 0 {
                continue;
            }
            work += n;
            local.batches += 1;
            let counts = &mut local.ports[p];
            counts[0] += n as u64;
            counts[1] += rx.iter().map(|f| f.len() as u64).sum::<u64>();

            let tracing = trace.is_armed();
            if tracing {
                traced.clear();
                traced.extend(rx.iter().map(|f| umem.data(f).to_vec()));
            }
            let mut batch = UmemBatch {
                umem: &umem,
                frames: &mut rx,
            };
            node::ip4_forward_batch(fib, &mut ctx, p as PortId, &mut batch, &mut out);
            if tracing {
                for ((f, o), before) in rx.iter().zip(out.iter()).zip(&traced) {
                    trace.offer(id, p as PortId, before, umem.data(f), *o);
                }
            }

            for (frame, outcome) in rx.drain(..).zip(out.iter()) {
                // Packets (or the ICMP errors built in their place) whose next hop is not
                // resolved yet wait in `parked`.
                let to_park = match *outcome {
                    Outcome::Tx(q) => {
                        ports[usize::from(q)].tx.push(frame);
                        None
                    }
                    Outcome::TxStale(key) => {
                        ports[usize::from(key.port)].tx.push(frame);
                        confirm.ask(key, t0, &resolve);
                        None
                    }
                    Outcome::Drop(reason) => {
                        local.drop_at(p, reason);
                        free.push(frame);
                        None
                    }
                    Outcome::Resolve(key) => Some((key, frame)),
                    Outcome::Icmp {
                        reason,
                        key,
                        resolved,
                    } => {
                        local.drop_at(p, reason);
                        if resolved {
                            ports[usize::from(key.port)].tx.push(frame);
                            None
                        } else {
                            Some((key, frame))
                        }
                    }
                    Outcome::Fragment { key, mtu } => {
                        fragment(
                            &umem,
                            fib,
                            key,
                            usize::from(mtu),
                            frame,
                            p,
                            &mut free,
                            &mut ports,
                            &mut parked,
                            t0,
                            &resolve,
                            &mut local,
                        );
                        None
                    }
                };
                if let Some((key, frame)) = to_park {
                    park(
                        &mut parked,
                        key,
                        frame,
                        t0,
                        fib.generation,
                        &resolve,
                        &mut local,
                        &mut free,
                    );
                }
            }
        }

        if t0.duration_since(last_live) >= SETTLE_EVERY {
            last_live = t0;
            let (per_nexthop, timeout) = live.get();
            let cur = parked.limits();
            if cur.per_nexthop != per_nexthop || cur.timeout != timeout {
                parked.set_limits(per_nexthop, timeout);
            }
        }
        if !confirm.asked.is_empty() && t0.duration_since(last_housekeeping) >= SETTLE_EVERY {
            last_housekeeping = t0;
            confirm.forget_before(t0);
        }
        // Release or give up on parked packets when the tables changed, and now and then for
        // timeouts.
        if !parked.is_empty()
            && (fib.generation != generation_seen || t0.duration_since(last_settle) >= SETTLE_EVERY)
        {
            last_settle = t0;
            parked.settle(
                t0,
                fib.generation,
                |key| fib.neighbour(key).state,
                |key, mut frame| {
                    let adj = fib.neighbour(key);
                    debug_assert_eq!(adj.state, AdjState::Resolved);
                    node::ip4_rewrite::ip4_rewrite(umem.data_mut(&mut frame), &adj.l2);
                    ports[usize::from(adj.port)].tx.push(frame);
                },
                |key, mut frame, reason| {
                    local.drop_at(usize::from(key.port), reason);
                    // Linux: neighbour failure → ip_link_failure → ICMP host unreachable.
                    if reason == DropReason::NeighFailed {
                        let ip_len = frame.len().saturating_sub(L2_LEN);
                        if ip_len >= 20 && frame.set_len(frame.len().max(FRAME_ROOM)).is_ok() {
                            let data = umem.data_mut(&mut frame);
                            let sent =
                                ctx.icmp_error(fib, None, data, ip_len, IcmpError::HOST_UNREACH);
                            if let Some(sent) = sent {
                                let _ = frame.set_len(sent.len);
                                reparks.push((sent.key, sent.resolved, frame));
                                return;
                            }
                        }
                    }
                    free.push(frame);
                },
            );
            for (key, resolved, frame) in reparks.drain(..) {
                if resolved {
                    ports[usize::from(key.port)].tx.push(frame);
                    continue;
                }
                park(
                    &mut parked,
                    key,
                    frame,
                    t0,
                    fib.generation,
                    &resolve,
                    &mut local,
                    &mut free,
                );
            }
        }
        generation_seen = fib.generation;

        for (q, port) in ports.iter_mut().enumerate() {
            work += flush_tx(port, &mut free, &mut local, q);
        }

        local.take_events(&mut ctx.events);
        local.publish(&stats);
        stats.pending.set(parked.len() as u64);
        stats.loops.add(1);
        let now = Instant::now();
        stats
            .run_ns
            .set(now.duration_since(started).as_nanos() as u64);
        if work > 0 {
            stats.busy_ns.add(now.duration_since(t0).as_nanos() as u64);
            idle_loops = 0;
        } else if idle == IdleMode::Adaptive {
            idle_loops += 1;
            if idle_loops >= SPIN_BEFORE_SLEEP {
                let timeout = if parked.is_empty() { SLEEP_MS } else { 1 };
                let _ = crate::xsk::poll_rx_any(ports.iter().map(|p| &p.sock), timeout);
                slept = true;
            } else {
                // Nothing to do: let whatever else is runnable on this CPU go first. When the
                // kernel's receive processing (a threaded NAPI poller, ksoftirqd) shares the
                // worker's core, spinning would starve the very thread that fills our RX ring;
                // on a dedicated core sched_yield returns at once.
                std::thread::yield_now();
            }
        } else {
            std::hint::spin_loop();
        }
    }

    // Shutdown: send what is staged, then hand every parked frame back.
    for (q, port) in ports.iter_mut().enumerate() {
        flush_tx(port, &mut free, &mut local, q);
    }
    parked.clear(|f| {
        local.drop(DropReason::NeighFailed);
        free.push(f);
    });
    local.publish(&stats);
    stats.pending.set(0);
    tracing::debug!(worker = id, "stopped");
}

/// Rate limit for asking the kernel to confirm `STALE` neighbours that traffic is using: at most
/// once per next hop per [`CONFIRM_EVERY`] from this worker (the control thread dedups across
/// workers). The kernel moves the entry to DELAY, probes it, and reports REACHABLE (or FAILED);
/// until a snapshot says so, every packet through it lands here, so this must stay cheap.
#[derive(Default)]
struct Confirm {
    asked: FastMap<u64, Instant>,
}

/// How often one worker asks for the same stale neighbour to be confirmed.
const CONFIRM_EVERY: Duration = Duration::from_secs(1);

impl Confirm {
    #[inline]
    fn ask(&mut self, key: NextHopKey, now: Instant, resolve: &Sender<NextHopKey>) {
        match self.asked.get_mut(&key.packed()) {
            Some(last) if now.duration_since(*last) < CONFIRM_EVERY => return,
            Some(last) => *last = now,
            None => {
                self.asked.insert(key.packed(), now);
            }
        }
        // A full channel: the next packet through this neighbour asks again.
        let _ = resolve.try_send(key);
    }

    fn forget_before(&mut self, now: Instant) {
        self.asked
            .retain(|_, t| now.duration_since(*t) < CONFIRM_EVERY);
    }
}

/// Moves port `q`'s staged frames onto its TX ring and kicks the kernel. Frames the ring cannot
/// take even after reclaiming completions are dropped as [`DropReason::TxRingFull`]: staging is
/// bounded, and a congested egress must not hold frames the RX side needs.
fn flush_tx(port: &mut Port, free: &mut Vec<Frame>, local: &mut LocalStats, q: usize) -> usize {
    if port.tx.is_empty() && !port.kick_again {
        return 0;
    }
    let staged = port.tx.len();
    let mut bytes: u64 = port.tx.iter().map(|f| f.len() as u64).sum();
    port.sock.send(&mut port.tx);
    let mut dropped = 0;
    if !port.tx.is_empty() {
        // The ring is full: let the kernel transmit, reclaim what it finished, try once more.
        kick(port, local);
        port.sock.complete(free, usize::MAX);
        port.sock.send(&mut port.tx);
        dropped = port.tx.len();
        for f in port.tx.drain(..) {
            bytes -= f.len() as u64;
            local.drop_at(q, DropReason::TxRingFull);
            free.push(f);
        }
    }
    let sent = (staged - dropped) as u64;
    if sent > 0 || port.kick_again {
        kick(port, local);
    }
    local.forwarded += sent;
    local.ports[q][2] += sent;
    local.ports[q][3] += bytes;
    staged
}

/// Wakes the kernel to transmit when it asked for it (need_wakeup), remembering whether it left
/// work behind.
fn kick(port: &mut Port, local: &mut LocalStats) {
    if !port.sock.tx_needs_wakeup() {
        port.kick_again = false;
        return;
    }
    local.tx_kicks += 1;
    port.kick_again = match port.sock.kick_tx() {
        Ok(Kick::Done) => false,
        Ok(Kick::Again | Kick::Busy | Kick::NoBufs) => true,
        // The link is down: descriptors wait in the ring; stop kicking until new frames come.
        Ok(Kick::NetDown) => false,
        Err(e) => {
            tracing::warn!("TX kick on ifindex {} failed: {e}", port.sock.ifindex());
            false
        }
    };
}

//! Pipeline stages, named after the Linux path a packet takes, and the batch pipeline that runs
//! them.
//!
//! ```text
//!  rx batch ─► eth_input ─► ip4_input ─► ip4_lookup ─► ip4_forward ─► ip4_rewrite ─► Outcome
//!             (eth_type_   (ip_rcv_core, (bulk LPM,   (TTL, MTU,     (prebuilt      Tx(port)
//!              trans)       RFC 1812)     next hop)    TTL-1, csum)   L2 header)    Resolve(nh)
//!                                                                                   Drop(reason)
//! ```
//!
//! [`ip4_forward_batch`] is what the workers run, and what the in-memory pipeline benchmark and
//! the tests run too: it sees packets only through [`PacketBatch`], so it does not know whether
//! they sit in a UMEM or in `Vec<u8>`s. Each stage is a pass over the whole batch (VPP-style), so
//! the bulk lookup sees every destination at once.

pub mod eth_input;
pub mod icmp;
pub mod ip4_forward;
pub mod ip4_fragment;
pub mod ip4_input;
pub mod ip4_lookup;
pub mod ip4_options;
pub mod ip4_rewrite;

use crate::drop::{DropReason, Event};
pub use crate::fib::MultipathHash;
use crate::fib::{Fib, FibEntry, L2_LEN, NO_ROUTE, NextHopKey, PortId, Verdict};
use crate::wire::{EthernetAddress, Ipv4Packet, ethernet, ipv4};
use icmp::{IcmpConfig, IcmpError, IcmpState};

/// Packets per batch: the most a worker takes from one RX ring per pass.
pub const BATCH: usize = 64;

/// A batch of received frames the pipeline can read and rewrite in place.
pub trait PacketBatch {
    /// Number of packets, at most [`BATCH`].
    fn len(&self) -> usize;

    /// Whether the batch is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of packet `i`, starting at its Ethernet header.
    fn packet_mut(&mut self, i: usize) -> &mut [u8];

    /// Shortens packet `i` to `len` bytes (drops link-layer padding).
    fn truncate(&mut self, i: usize, len: usize);

    /// Sets packet `i`'s length, growing it into the buffer's tailroom if needed (to build an
    /// ICMP error in place). Returns `false` when the buffer is too small.
    fn set_len(&mut self, i: usize, len: usize) -> bool;
}

/// Reverse-path filtering, Linux `rp_filter` (`fib_validate_source`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RpFilter {
    /// No source validation (a fresh Linux namespace: `rp_filter=0`).
    #[default]
    Off,
    /// RFC 3704 strict: the route back to the source must leave by the ingress interface.
    Strict,
    /// RFC 3704 loose: some unicast route back to the source must exist.
    Loose,
}

/// Which addresses count as martians.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Martians {
    /// RFC 1812 §5.3.7 and RFC 3927: class E and 169.254/16 too, as sources and destinations.
    #[default]
    Rfc1812,
    /// Linux `ip_route_input_slow`: class E and link-local addresses are forwarded.
    Linux,
}

/// The forwarding policy knobs (Linux sysctls) the pipeline obeys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForwardConfig {
    /// `--rp-filter`.
    pub rp_filter: RpFilter,
    /// `--martians`.
    pub martians: Martians,
    /// `--accept-source-route`.
    pub accept_source_route: bool,
    /// `--multipath-hash`: what multipath routes hash to pick a path.
    pub multipath_hash: MultipathHash,
    /// ICMP errors.
    pub icmp: IcmpConfig,
}

/// One worker's pipeline state: the policy, ICMP rate-limit buckets, event counts.
#[derive(Debug)]
pub struct Ip4Ctx {
    /// The policy.
    pub cfg: ForwardConfig,
    /// Milliseconds on a monotonic clock; the caller sets it before each batch.
    pub now_ms: u64,
    /// ICMP state.
    pub icmp: IcmpState,
    /// Events counted since the caller last took them, index = [`Event`].
    pub events: [u64; Event::COUNT],
    /// The options of the packet being processed, once received (for ICMP errors about it).
    opts: Option<ip4_options::Options>,
}

impl Ip4Ctx {
    /// State for worker `worker` of `workers`.
    pub fn new(cfg: ForwardConfig, workers: usize, worker: usize) -> Self {
        Ip4Ctx {
            cfg,
            now_ms: 0,
            icmp: IcmpState::new(cfg.icmp, workers, worker),
            events: [0; Event::COUNT],
            opts: None,
        }
    }

    /// Counts an event.
    #[inline]
    pub fn event(&mut self, e: Event) {
        self.events[e as usize] += 1;
    }

    /// Builds ICMP error `err` in place in `frame` (Ethernet header first, the offending
    /// datagram of `ip_len` bytes after it, at least [`icmp::FRAME_ROOM`] bytes long).
    #[cold]
    pub fn icmp_error(
        &mut self,
        fib: &Fib,
        ingress: Option<PortId>,
        frame: &mut [u8],
        ip_len: usize,
        err: IcmpError,
    ) -> Option<icmp::Sent> {
        let events = &mut self.events;
        let opts = self.opts.take();
        icmp::send_error(
            &mut self.icmp,
            fib,
            self.now_ms,
            ingress,
            frame,
            ip_len,
            err,
            opts.as_ref(),
            &mut |e| events[e as usize] += 1,
        )
    }
}

/// What happens to one packet of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Rewritten and ready to send on this port.
    Tx(PortId),
    /// Rewritten and ready to send on `key.port`, through a `STALE` neighbour entry: the kernel
    /// should be asked to confirm it (Linux `neigh_event_send` on its own output path).
    TxStale(NextHopKey),
    /// Forwardable, but the next hop's MAC is not known: TTL already decremented, the L2 header
    /// is written when the neighbour resolves.
    Resolve(NextHopKey),
    /// Not forwarded; the frame now holds an ICMP error for the sender, to go to `key` (L2
    /// header written when `resolved`, else park it like [`Outcome::Resolve`]). Count `reason`.
    Icmp {
        /// Why the original packet was not forwarded.
        reason: DropReason,
        /// Next hop towards the sender.
        key: NextHopKey,
        /// Whether `key`'s MAC is known and written.
        resolved: bool,
    },
    /// Forwardable (TTL decremented, options processed) but larger than the egress MTU with DF
    /// clear: the worker splits it into fragments ([`ip4_fragment`]) for next hop `key`.
    Fragment {
        /// The next hop.
        key: NextHopKey,
        /// The forwarding MTU (the route's, else the device's).
        mtu: u16,
    },
    /// Not forwarded.
    Drop(DropReason),
}

/// First octets that need a closer look as source or destination: 0, 127, 169 (169.254/16),
/// 224–255 (multicast, class E, limited broadcast).
const fn exceptional_octets() -> [bool; 256] {
    let mut t = [false; 256];
    t[0] = true;
    t[127] = true;
    t[169] = true;
    let mut i = 224;
    while i < 256 {
        t[i] = true;
        i += 1;
    }
    t
}
static EXCEPTIONAL: [bool; 256] = exceptional_octets();

/// Linux `ip_route_input_slow`'s address checks (plus RFC 1812's with `Martians::Rfc1812`),
/// in Linux's order. `None`: nothing wrong.
#[cold]
#[inline(never)]
fn martian(src: u32, dst: u32, mode: Martians) -> Option<DropReason> {
    use DropReason::*;
    if ipv4::is_multicast(src) {
        return Some(MartianSrcMulticast);
    }
    if ipv4::is_lbcast(src) {
        return Some(MartianSrcBroadcast);
    }
    if ipv4::is_lbcast(dst) {
        return Some(MartianDstLbcast);
    }
    // Linux (since 5.3) treats 0/8 other than 0.0.0.0 as unicast.
    let zeronet = |a: u32| match mode {
        Martians::Rfc1812 => ipv4::is_zeronet(a),
        Martians::Linux => a == 0,
    };
    if zeronet(src) {
        return Some(MartianSrcZeronet);
    }
    if zeronet(dst) {
        return Some(MartianDstZeronet);
    }
    if ipv4::is_loopback(dst) {
        return Some(MartianDstLoopback);
    }
    if ipv4::is_loopback(src) {
        return Some(MartianSrcLoopback);
    }
    if ipv4::is_multicast(dst) {
        return Some(MulticastDst);
    }
    if mode == Martians::Rfc1812 {
        if ipv4::is_class_e(src) {
            return Some(MartianSrcClassE);
        }
        if ipv4::is_link_local(src) {
            return Some(MartianSrcLinkLocal);
        }
        if ipv4::is_class_e(dst) {
            return Some(MartianDstClassE);
        }
        if ipv4::is_link_local(dst) {
            return Some(MartianDstLinkLocal);
        }
    }
    None
}

/// A source that is one of the router's addresses (Linux `fib_validate_source`:
/// `inet_lookup_ifaddr_rcu`) or, under RFC 1812, a directed broadcast address.
#[cold]
#[inline(never)]
fn special_source(fib: &Fib, src: u32, mode: Martians) -> Option<DropReason> {
    if fib.addrs.is_local(src) {
        return Some(DropReason::MartianSrcLocal);
    }
    (mode == Martians::Rfc1812 && fib.addrs.is_bcast(src))
        .then_some(DropReason::MartianSrcBroadcast)
}

/// Linux `__fib_validate_source` for a forwarded packet with `rp_filter` on: the route back to
/// `src` must be unicast (else martian), and with `Strict` leave by `ingress`.
#[cold]
#[inline(never)]
fn rp_check(fib: &Fib, src: u32, ingress: PortId, mode: RpFilter) -> Option<DropReason> {
    let back = fib.routes.entry(fib.routes.lookup(src));
    match back {
        None => Some(DropReason::RpFilter),
        Some(FibEntry::Gateway { nh }) => (mode == RpFilter::Strict
            && fib.routes.nexthops()[nh as usize].port != ingress)
            .then_some(DropReason::RpFilter),
        Some(FibEntry::Attached { port }) => {
            (mode == RpFilter::Strict && port != ingress).then_some(DropReason::RpFilter)
        }
        Some(FibEntry::NotManaged) => (mode == RpFilter::Strict).then_some(DropReason::RpFilter),
        // Linux `fib_info_nh_uses_dev`: any path of the route may lead back by `ingress`.
        Some(FibEntry::Multipath { group }) => (mode == RpFilter::Strict
            && !fib.routes.groups()[group as usize]
                .members()
                .iter()
                .any(|&(nh, _)| fib.routes.nexthops()[nh as usize].port == ingress))
        .then_some(DropReason::RpFilter),
        Some(FibEntry::Local | FibEntry::Broadcast) => Some(DropReason::MartianSrcLocal),
        Some(FibEntry::Blackhole | FibEntry::Unreachable | FibEntry::Prohibit) => {
            Some(DropReason::RpFilter)
        }
    }
}

/// Builds the ICMP error for a packet that will not be forwarded, or falls back to a plain drop.
#[cold]
#[inline(never)]
#[allow(
    clippy::too_many_arguments,
    reason = "cold helper called from several stages"
)]
fn reject<B: PacketBatch + ?Sized>(
    ctx: &mut Ip4Ctx,
    fib: &Fib,
    ingress: PortId,
    batch: &mut B,
    i: usize,
    ip_len: usize,
    reason: DropReason,
    err: Option<IcmpError>,
) -> Outcome {
    let Some(err) = err else {
        return Outcome::Drop(reason);
    };
    let cur = L2_LEN + ip_len;
    // Room for the error: headers (options echoed: up to 40 bytes) and the quote, at most
    // a 576-byte datagram.
    let room = cur.max((L2_LEN + 20 + 40 + 8 + ip_len).min(icmp::FRAME_ROOM));
    if !batch.set_len(i, room) {
        return Outcome::Drop(reason);
    }
    let frame = batch.packet_mut(i);
    match ctx.icmp_error(fib, Some(ingress), frame, ip_len, err) {
        Some(sent) => {
            batch.truncate(i, sent.len);
            Outcome::Icmp {
                reason,
                key: sent.key,
                resolved: sent.resolved,
            }
        }
        None => {
            batch.truncate(i, cur);
            Outcome::Drop(reason)
        }
    }
}

/// The ICMP error Linux sends for a route lookup that gave `reason` (`ip_error`).
fn route_icmp(reason: DropReason) -> Option<IcmpError> {
    match reason {
        DropReason::NoRoute => Some(IcmpError::NET_UNREACH),
        DropReason::RouteUnreachable => Some(IcmpError::HOST_UNREACH_ROUTE),
        DropReason::RouteProhibit => Some(IcmpError::PROHIBITED),
        _ => None,
    }
}

/// Options processing for one packet with options (see [`ip4_options`]). `Err` = the outcome.
#[cold]
#[inline(never)]
fn options<B: PacketBatch + ?Sized>(
    ctx: &mut Ip4Ctx,
    fib: &Fib,
    ingress: PortId,
    batch: &mut B,
    i: usize,
    m: &ip4_input::Ip4Meta,
) -> Result<ip4_options::Options, Outcome> {
    let frame = batch.packet_mut(i);
    let hdr = &frame[L2_LEN..L2_LEN + m.header_len];
    match ip4_options::compile(hdr) {
        Err(ptr) => Err(reject(
            ctx,
            fib,
            ingress,
            batch,
            i,
            m.total_len,
            DropReason::Ip4BadOption,
            Some(IcmpError::param_problem(ptr)),
        )),
        Ok(o) if o.srr != 0 && !ctx.cfg.accept_source_route => {
            Err(Outcome::Drop(DropReason::Ip4SourceRoute))
        }
        Ok(o) if o.srr != 0 && o.strict => Err(reject(
            ctx,
            fib,
            ingress,
            batch,
            i,
            m.total_len,
            DropReason::Ip4SourceRoute,
            Some(IcmpError::param_problem(16)),
        )),
        Ok(mut o) => {
            // Linux `fib_compute_spec_dst`: the router's address towards the sender.
            let spec_dst = match fib.verdict(fib.routes.lookup(m.src), m.src) {
                Verdict::Forward(adj) => fib.addrs.select(adj.port, adj.ip),
                Verdict::Resolve { key, .. } => fib.addrs.select(key.port, key.ip),
                Verdict::Drop(_) => None,
            }
            .or_else(|| fib.addrs.select(ingress, m.src))
            .unwrap_or(0);
            let frame = batch.packet_mut(i);
            ip4_options::receive(
                &mut frame[L2_LEN..L2_LEN + m.header_len],
                &mut o,
                spec_dst,
                |a| fib.addrs.is_local(a),
                ip4_options::now_ms_since_midnight(),
            );
            ctx.opts = Some(o);
            Ok(o)
        }
    }
}

/// Record route / timestamp on the way out, then the header checksum.
#[cold]
#[inline(never)]
fn forward_options(
    ctx: &mut Ip4Ctx,
    fib: &Fib,
    frame: &mut [u8],
    hl: usize,
    o: &ip4_options::Options,
    port: PortId,
    nh: u32,
) {
    ctx.opts = None;
    let addr = if o.rr_needaddr || o.ts_needaddr {
        fib.addrs.select(port, nh).unwrap_or(0)
    } else {
        0
    };
    let hdr = &mut frame[L2_LEN..L2_LEN + hl];
    if ip4_options::forward(hdr, o, addr) {
        hdr[10..12].copy_from_slice(&[0, 0]);
        let c = crate::wire::checksum::checksum(hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
    }
}

/// Runs the IPv4 forwarding pipeline over a batch received on `ingress`, writing one
/// [`Outcome`] per packet into `out`.
///
/// Two passes over the batch, with the bulk route lookup between them:
///
/// 1. receive (`eth_input` + `ip4_input`): a dropped packet gets its `Outcome::Drop` now; a
///    live one sets its bit in a 64-bit mask and leaves its destination for the lookup;
/// 2. forward (`ip_route_input` checks, `ip_forward`, `ip4_rewrite`) over the set bits only, each
///    packet's outcome written once.
///
/// Each pass tries the common packet first in one straight sequence (a 20-byte header to this
/// interface's MAC; then: ordinary addresses, a resolved next hop, TTL > 1, fits the MTU) and
/// hands anything else to a cold function that runs every check in Linux's order and finds the
/// packet's outcome (an error, an option, a neighbour to resolve, a fragment...). The fast paths
/// decide nothing the slow ones would decide differently: a unit test runs both, and the
/// differential test runs the whole against the Linux kernel.
///
/// # Panics
///
/// If the batch holds more than [`BATCH`] packets or `ingress` is not a port of `fib`.
pub fn ip4_forward_batch<B: PacketBatch + ?Sized>(
    fib: &Fib,
    ctx: &mut Ip4Ctx,
    ingress: PortId,
    batch: &mut B,
    out: &mut [Outcome; BATCH],
) {
    const _: () = assert!(BATCH <= 64, "the live mask is a u64");
    let n = batch.len();
    assert!(n <= BATCH, "batch of {n} exceeds BATCH");
    let dev_mac = fib.ports[usize::from(ingress)].mac;
    let key = mac_key(&dev_mac);
    let mut dsts = [0u32; BATCH];
    let mut live = 0u64;

    // eth_input + ip4_input: classify and validate; keep each live packet's destination.
    for i in 0..n {
        let frame = batch.packet_mut(i);
        let checked = match receive_fast(frame, key) {
            Some(ok) => Ok(ok),
            None => receive_slow(frame, &dev_mac),
        };
        match checked {
            Ok((dst, len)) => {
                batch.truncate(i, len);
                dsts[i] = dst;
                live |= 1 << i;
            }
            // A dead slot's destination stays 0; its lookup result is ignored.
            Err(reason) => out[i] = Outcome::Drop(reason),
        }
    }

    // ip4_lookup: one bulk lookup for the whole batch.
    let mut entries = [NO_ROUTE; BATCH];
    ip4_lookup::ip4_lookup(fib, &dsts[..n], &mut entries[..n]);

    // ip_route_input + ip_forward + ip4_rewrite, live packets in order.
    let cfg = ctx.cfg;
    while live != 0 {
        // `% BATCH` is a no-op (the bit is below `n`) that lets the compiler drop bounds checks.
        let i = live.trailing_zeros() as usize % BATCH;
        live &= live - 1;
        let (dst, entry) = (dsts[i], entries[i]);
        if !forward_fast(
            fib,
            &cfg,
            ingress,
            batch.packet_mut(i),
            dst,
            entry,
            &mut out[i],
        ) {
            out[i] = forward_slow(fib, ctx, ingress, batch, i, dst, entry);
        }
    }
}

/// The receive fast path: an untagged IPv4 frame to the port's MAC (`mac_key`, see [`mac_key`])
/// whose 20-byte header (no options) is valid and whose total length fits the frame. Returns the
/// destination (host order) and the frame length without link padding; `None` for anything
/// else, which [`receive_slow`] sorts out (`eth_input` then `ip_rcv_core`, which give the same
/// answer for a frame this accepts).
#[inline(always)]
fn receive_fast(frame: &[u8], mac_key: u64) -> Option<(u32, usize)> {
    let f = frame.first_chunk::<{ L2_LEN + ipv4::HEADER_LEN }>()?;
    let ip: &[u8; ipv4::HEADER_LEN] = f[L2_LEN..].try_into().ok()?;
    // The destination MAC (the two bytes after it masked off), then the EtherType and the
    // version/IHL byte in one 4-byte compare.
    let dst_mac = u64::from_le_bytes([f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]]);
    let type_ver = u32::from_le_bytes([f[12], f[13], f[14], 0]);
    let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let ok = dst_mac & 0xffff_ffff_ffff == mac_key
        && type_ver == IPV4_NO_OPTIONS
        // 20 <= total_len <= the bytes after the Ethernet header, in one compare.
        && total_len.wrapping_sub(ipv4::HEADER_LEN) <= frame.len() - (L2_LEN + ipv4::HEADER_LEN)
        && crate::wire::checksum::ipv4_header_valid(ip);
    ok.then(|| {
        let dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
        (dst, L2_LEN + total_len)
    })
}

/// EtherType IPv4, then version 4 with IHL 5, as [`receive_fast`] reads them.
const IPV4_NO_OPTIONS: u32 = u32::from_le_bytes([
    (ethernet::ethertype::IPV4 >> 8) as u8,
    ethernet::ethertype::IPV4 as u8,
    0x45,
    0,
]);

/// A port's MAC as [`receive_fast`] compares it: the six bytes, little-endian, in a u64.
#[inline(always)]
fn mac_key(mac: &[u8; 6]) -> u64 {
    u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0])
}

/// `eth_input` and `ip_rcv_core` for a frame [`receive_fast`] did not take: the reason of the
/// first failed check, or (options, an L2 broadcast...) the destination and the length.
#[cold]
#[inline(never)]
fn receive_slow(frame: &[u8], dev_mac: &[u8; 6]) -> Result<(u32, usize), DropReason> {
    let eth = eth_input::eth_input(frame, &EthernetAddress(*dev_mac))?;
    if eth.l3_offset != L2_LEN {
        // Tagged frames are the kernel's (the rewrite assumes an untagged header).
        return Err(DropReason::EthNotIpv4);
    }
    let m = ip4_input::ip_rcv_core(&frame[eth.l3_offset..], eth.pkt_type)?;
    Ok((m.dst, L2_LEN + m.total_len))
}

/// The forwarding fast path for a received packet to `dst` whose lookup gave `entry`: no
/// options, source and destination neither exceptional nor possibly the router's, a resolved
/// next hop (multipath included), rp_filter satisfied, TTL > 1, fits the MTU. Then it decrements
/// the TTL, writes the L2 header, sets `out` to `Tx`/`TxStale` and returns `true`. `false`, the
/// frame and `out` untouched, for anything else: [`forward_slow`] decides.
#[inline(always)]
fn forward_fast(
    fib: &Fib,
    cfg: &ForwardConfig,
    ingress: PortId,
    frame: &mut [u8],
    dst: u32,
    entry: u32,
    out: &mut Outcome,
) -> bool {
    let Some(f) = frame.first_chunk::<{ L2_LEN + ipv4::HEADER_LEN }>() else {
        return false;
    };
    let ip = &f[L2_LEN..];
    let src = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]);
    if ip[0] != 0x45
        || EXCEPTIONAL[(src >> 24) as usize] | EXCEPTIONAL[(dst >> 24) as usize]
        || fib.addrs.maybe_special(src)
    {
        return false;
    }
    let policy = cfg.multipath_hash;
    let hash = || {
        let ip = &frame[L2_LEN..];
        let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
        let l4 = crate::fib::multipath::l4_key(policy, ip, ipv4::HEADER_LEN, ip[9], frag);
        crate::fib::flow_hash(src, dst, l4)
    };
    let Verdict::Forward(adj) = ip4_lookup::ip4_next_hop_hashed(fib, entry, dst, hash) else {
        return false;
    };
    let mtu = fib.routes.mtu(entry, adj.mtu);
    // Read after the next hop, not kept across it (fewer registers spilled).
    let Some(f) = frame.first_chunk_mut::<{ L2_LEN + ipv4::HEADER_LEN }>() else {
        return false;
    };
    let (ttl, total_len) = (
        f[L2_LEN + 8],
        u16::from_be_bytes([f[L2_LEN + 2], f[L2_LEN + 3]]),
    );
    if ttl <= 1
        || u32::from(total_len) > mtu
        || (cfg.rp_filter != RpFilter::Off && rp_check(fib, src, ingress, cfg.rp_filter).is_some())
    {
        return false;
    }
    // Decided: forward. `ip_decrease_ttl` (RFC 1624 incremental checksum), then `ip4_rewrite`.
    let check = u16::from_be_bytes([f[L2_LEN + 10], f[L2_LEN + 11]]);
    f[L2_LEN + 10..L2_LEN + 12]
        .copy_from_slice(&crate::wire::checksum::ip_decrease_ttl(check).to_be_bytes());
    f[L2_LEN + 8] = ttl - 1;
    f[..L2_LEN].copy_from_slice(&adj.l2);
    *out = Outcome::Tx(adj.port);
    if adj.stale {
        *out = Outcome::TxStale(adj.key());
    }
    true
}

/// Every check between the route lookup and the rewrite, in Linux's order, for packet `i` (to
/// `dst`, lookup result `entry`) that [`forward_fast`] did not take: martians, a local source,
/// no route, rp_filter, options, TTL, MTU, an unresolved next hop.
#[cold]
#[inline(never)]
fn forward_slow<B: PacketBatch + ?Sized>(
    fib: &Fib,
    ctx: &mut Ip4Ctx,
    ingress: PortId,
    batch: &mut B,
    i: usize,
    dst: u32,
    entry: u32,
) -> Outcome {
    let m = ip4_input::Ip4Meta::of_accepted(&batch.packet_mut(i)[L2_LEN..]);
    debug_assert_eq!(m.dst, dst);
    if EXCEPTIONAL[(m.src >> 24) as usize] | EXCEPTIONAL[(m.dst >> 24) as usize]
        && let Some(reason) = martian(m.src, m.dst, ctx.cfg.martians)
    {
        return Outcome::Drop(reason);
    }
    if fib.addrs.maybe_special(m.src)
        && let Some(reason) = special_source(fib, m.src, ctx.cfg.martians)
    {
        return Outcome::Drop(reason);
    }
    let policy = ctx.cfg.multipath_hash;
    let hash = || {
        let ip = &batch.packet_mut(i)[L2_LEN..];
        let frag = m.mf || m.frag_offset != 0;
        let l4 = crate::fib::multipath::l4_key(policy, ip, m.header_len, m.protocol, frag);
        crate::fib::flow_hash(m.src, m.dst, l4)
    };
    let (mtu, next) = match ip4_lookup::ip4_next_hop_hashed(fib, entry, m.dst, hash) {
        Verdict::Drop(reason) => {
            let err = route_icmp(reason);
            return reject(ctx, fib, ingress, batch, i, m.total_len, reason, err);
        }
        Verdict::Forward(adj) => (fib.routes.mtu(entry, adj.mtu), Ok(adj)),
        Verdict::Resolve { key, mtu } => (fib.routes.mtu(entry, mtu), Err(key)),
    };
    if ctx.cfg.rp_filter != RpFilter::Off
        && let Some(reason) = rp_check(fib, m.src, ingress, ctx.cfg.rp_filter)
    {
        return Outcome::Drop(reason);
    }
    let opts = if m.has_options {
        match options(ctx, fib, ingress, batch, i, &m) {
            Ok(o) => Some(o),
            Err(outcome) => return outcome,
        }
    } else {
        None
    };
    let fits = match ip4_forward::ip_forward(m.ttl, m.total_len, m.df, mtu) {
        Ok(fits) => fits,
        Err(reason) => {
            let err = match reason {
                DropReason::TtlExpired => IcmpError::TTL,
                _ => IcmpError::frag_needed(mtu),
            };
            return reject(ctx, fib, ingress, batch, i, m.total_len, reason, Some(err));
        }
    };
    let key = match next {
        Ok(adj) => adj.key(),
        Err(key) => key,
    };
    let frame = batch.packet_mut(i);
    if let Some(o) = &opts {
        forward_options(ctx, fib, frame, m.header_len, o, key.port, key.ip);
    }
    Ipv4Packet::new_unchecked(&mut frame[L2_LEN..]).decrease_ttl();
    if !fits {
        return Outcome::Fragment {
            key,
            mtu: mtu.min(0xffff) as u16,
        };
    }
    match next {
        Ok(adj) => {
            ip4_rewrite::ip4_rewrite(frame, &adj.l2);
            if adj.stale {
                Outcome::TxStale(adj.key())
            } else {
                Outcome::Tx(adj.port)
            }
        }
        Err(key) => Outcome::Resolve(key),
    }
}

/// A batch over owned buffers: for tests and the in-memory pipeline benchmark.
impl PacketBatch for [Vec<u8>] {
    fn len(&self) -> usize {
        <[Vec<u8>]>::len(self)
    }

    fn packet_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self[i]
    }

    fn truncate(&mut self, i: usize, len: usize) {
        self[i].truncate(len);
    }

    fn set_len(&mut self, i: usize, len: usize) -> bool {
        self[i].resize(len, 0);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    use etherparse::{PacketBuilder, SlicedPacket};

    use super::*;
    use crate::fib::{
        AdjTable, IfAddrs, NeighInput, PortAddr, PortInfo, RouteInput, RouteNextHop, RouteTable,
        RouteType,
    };

    const P0_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
    const P1_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
    const H2_MAC: [u8; 6] = [2, 0, 0, 0, 2, 2];
    const GW_MAC: [u8; 6] = [2, 0, 0, 0, 2, 3];
    const H1_MAC: [u8; 6] = [2, 0, 0, 0, 1, 2];

    fn fib() -> Fib {
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
                mtu: 1400,
                up: true,
            },
        ]);
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let route = |dst: &str, len, kind, gw: Option<&str>, ifindex| RouteInput {
            dst: ip(dst),
            len,
            kind,
            nexthops: vec![RouteNextHop {
                gateway: gw.map(ip),
                ifindex,
                weight: 1,
            }],
            mtu: 0,
        };
        let routes = RouteTable::build_with_broadcasts(
            [
                route("10.0.1.0", 24, RouteType::Unicast, None, 10),
                route("10.0.2.0", 24, RouteType::Unicast, None, 11),
                route("198.18.0.0", 24, RouteType::Unicast, Some("10.0.2.3"), 11),
                route("198.19.0.0", 24, RouteType::Unicast, Some("10.0.2.9"), 11),
                route("203.0.113.0", 24, RouteType::Blackhole, None, 0),
                route("192.0.2.0", 24, RouteType::Unicast, Some("172.16.0.1"), 99),
                route("198.51.100.0", 24, RouteType::Unreachable, None, 0),
                route("198.51.101.0", 24, RouteType::Prohibit, None, 0),
                RouteInput {
                    nexthops: vec![
                        RouteNextHop {
                            gateway: Some(ip("10.0.2.3")),
                            ifindex: 11,
                            weight: 1,
                        },
                        RouteNextHop {
                            gateway: Some(ip("10.0.2.2")),
                            ifindex: 11,
                            weight: 1,
                        },
                    ],
                    ..route("198.20.0.0", 24, RouteType::Unicast, None, 11)
                },
            ],
            [ip("10.0.1.1"), ip("10.0.2.1")],
            [ip("10.0.2.255")],
            &ports,
        )
        .expect("route table");
        let neigh = |addr: &str, mac| NeighInput {
            ifindex: if mac == H1_MAC { 10 } else { 11 },
            ip: ip(addr),
            mac: Some(mac),
            valid: true,
            failed: false,
            stale: false,
        };
        let adj = AdjTable::build(
            &routes,
            [
                neigh("10.0.2.2", H2_MAC),
                neigh("10.0.2.3", GW_MAC),
                neigh("10.0.1.2", H1_MAC),
            ],
            &ports,
        );
        let pa = |a: &str| PortAddr {
            addr: ip(a).to_bits(),
            prefix_len: 24,
            secondary: false,
        };
        Fib {
            routes: Arc::new(routes),
            adj: Arc::new(adj),
            ports,
            generation: 1,
            addrs: Arc::new(IfAddrs::new(
                vec![vec![pa("10.0.1.1")], vec![pa("10.0.2.1")]],
                vec![ip("10.0.1.1").to_bits(), ip("10.0.2.1").to_bits()],
                vec![ip("10.0.1.255").to_bits(), ip("10.0.2.255").to_bits()],
            )),
        }
    }

    /// The gateway MAC each of `sports` (UDP from 10.0.1.2 to 198.20.0.5) is sent to.
    fn ecmp_paths(policy: MultipathHash, sports: impl Iterator<Item = u16>) -> Vec<[u8; 6]> {
        let frames: Vec<Vec<u8>> = sports
            .map(|sp| {
                let mut v = Vec::new();
                PacketBuilder::ethernet2(H1_MAC, P0_MAC)
                    .ipv4([10, 0, 1, 2], [198, 20, 0, 5], 64)
                    .udp(sp, 5000)
                    .write(&mut v, &[0xab; 18])
                    .unwrap();
                v
            })
            .collect();
        let mut c = ctx(ForwardConfig {
            multipath_hash: policy,
            ..ForwardConfig::default()
        });
        let mut macs = Vec::new();
        for chunk in frames.chunks(BATCH) {
            let (out, outcomes) = run_with(&mut c, 0, chunk.to_vec());
            for (f, o) in out.iter().zip(outcomes) {
                assert_eq!(o, Outcome::Tx(1));
                macs.push(f[..6].try_into().unwrap());
            }
        }
        macs
    }

    #[test]
    fn multipath_routes_spread_flows_by_policy() {
        let l4 = ecmp_paths(MultipathHash::L4, 1000..1400);
        let to_gw = l4.iter().filter(|m| **m == GW_MAC).count();
        let to_h2 = l4.iter().filter(|m| **m == H2_MAC).count();
        assert_eq!(to_gw + to_h2, 400, "every packet to a group member");
        assert!(to_gw > 100 && to_h2 > 100, "l4 split {to_gw}/{to_h2}");
        // A flow sticks to its path.
        assert_eq!(ecmp_paths(MultipathHash::L4, 1000..1400), l4);
        // Addresses only: one source/destination pair is one path.
        let l3 = ecmp_paths(MultipathHash::L3, 1000..1400);
        assert!(l3.iter().all(|m| *m == l3[0]), "l3 used several paths");
    }

    #[test]
    fn icmp_errors_back_over_a_multipath_route_hash_their_own_flow() {
        let fib = fib();
        let mut c = ctx(ForwardConfig::default());
        let mut used = std::collections::HashSet::new();
        for n in 1..=64u8 {
            // TTL 1 from a sender behind the multipath route, arriving on p1.
            let mut f = raw([198, 20, 0, n], [10, 0, 1, 2], 1, false, &[], 8);
            f[..6].copy_from_slice(&P1_MAC);
            let (out, o) = run_with(&mut c, 1, vec![f]);
            let Outcome::Icmp { key, resolved, .. } = o[0] else {
                panic!("{:?}", o[0]);
            };
            assert!(resolved);
            let src = u32::from_be_bytes([198, 20, 0, n]);
            let want = match fib.verdict_hashed(fib.routes.lookup(src), src, || {
                crate::fib::flow_hash(0, src, 0)
            }) {
                Verdict::Forward(adj) => adj.key(),
                v => panic!("{v:?}"),
            };
            assert_eq!(key, want, "the error to {src:#x} took another path");
            let mac: [u8; 6] = out[0][..6].try_into().unwrap();
            assert!(mac == GW_MAC || mac == H2_MAC);
            used.insert(mac);
            c.icmp = IcmpState::new(c.cfg.icmp, 1, 0);
            c.now_ms += 10_000;
        }
        assert_eq!(used.len(), 2, "errors to 64 senders used one path");
    }

    #[test]
    fn strict_rp_filter_accepts_any_path_of_a_multipath_route() {
        let fib = fib();
        let src = u32::from_be_bytes([198, 20, 0, 9]);
        assert_eq!(rp_check(&fib, src, 1, RpFilter::Strict), None);
        assert_eq!(
            rp_check(&fib, src, 0, RpFilter::Strict),
            Some(DropReason::RpFilter)
        );
    }

    fn ctx(cfg: ForwardConfig) -> Ip4Ctx {
        let mut c = Ip4Ctx::new(cfg, 1, 0);
        c.now_ms = 100_000;
        c
    }

    fn udp(dst: [u8; 4], ttl: u8, dst_mac: [u8; 6]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 1, 2], dst_mac)
            .ipv4([10, 0, 1, 2], dst, ttl)
            .udp(4000, 5000)
            .write(&mut v, &[0xab; 18])
            .unwrap();
        v
    }

    fn run(frames: Vec<Vec<u8>>) -> (Vec<Vec<u8>>, Vec<Outcome>) {
        run_with(&mut ctx(ForwardConfig::default()), 0, frames)
    }

    fn run_with(
        c: &mut Ip4Ctx,
        ingress: PortId,
        frames: Vec<Vec<u8>>,
    ) -> (Vec<Vec<u8>>, Vec<Outcome>) {
        let fib = fib();
        let mut batch = frames;
        let mut out = [Outcome::Drop(DropReason::NoRoute); BATCH];
        ip4_forward_batch(&fib, c, ingress, batch.as_mut_slice(), &mut out);
        let n = batch.len();
        (batch, out[..n].to_vec())
    }

    /// An IPv4 packet from `src` to `dst` with `opts`, `payload` bytes of UDP-ish payload.
    fn raw(src: [u8; 4], dst: [u8; 4], ttl: u8, df: bool, opts: &[u8], payload: usize) -> Vec<u8> {
        let hl = 20 + opts.len();
        let mut v = vec![0u8; 14 + hl + payload];
        v[..6].copy_from_slice(&P0_MAC);
        v[6..12].copy_from_slice(&H1_MAC);
        v[12..14].copy_from_slice(&[8, 0]);
        let p = &mut v[14..];
        p[0] = 0x40 | (hl / 4) as u8;
        p[1] = 0xb9;
        p[2..4].copy_from_slice(&((hl + payload) as u16).to_be_bytes());
        p[4..6].copy_from_slice(&[0x12, 0x34]);
        p[6] = if df { 0x40 } else { 0 };
        p[8] = ttl;
        p[9] = 17;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p[20..hl].copy_from_slice(opts);
        for (i, b) in p[hl..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let c = crate::wire::checksum::checksum(&p[..hl]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        v
    }

    fn icmp_to_h1(reason: DropReason) -> Outcome {
        Outcome::Icmp {
            reason,
            key: NextHopKey {
                port: 0,
                ip: 0x0a00_0102,
            },
            resolved: true,
        }
    }

    /// Checks an ICMP error frame: L2 to h1, from 10.0.1.1, type/code/info, quote = `orig`.
    fn check_icmp(frame: &[u8], ty: u8, code: u8, info: u32, orig: &[u8]) {
        assert_eq!(&frame[..6], &H1_MAC);
        assert_eq!(&frame[6..12], &P0_MAC);
        let ip = &frame[14..];
        assert_eq!(crate::wire::checksum::sum(&ip[..20]), 0xffff);
        assert_eq!(usize::from(u16::from_be_bytes([ip[2], ip[3]])), ip.len());
        assert_eq!(
            &ip[12..16],
            &[10, 0, 1, 1],
            "source: the interface towards the sender"
        );
        assert_eq!(&ip[16..20], &[10, 0, 1, 2]);
        assert_eq!((ip[8], ip[9]), (64, 1));
        assert_eq!(ip[1], 0xd8, "tos & 0x1e | 0xc0");
        assert_eq!(crate::wire::checksum::sum(&ip[20..]), 0xffff);
        assert_eq!((ip[20], ip[21]), (ty, code));
        assert_eq!(u32::from_be_bytes([ip[24], ip[25], ip[26], ip[27]]), info);
        let q = orig.len().min(icmp::MAX_QUOTE);
        assert_eq!(&ip[28..], &orig[..q]);
    }

    #[test]
    fn forwards_attached_and_gateway_with_ttl_minus_one_and_valid_checksum() {
        let (pkts, out) = run(vec![
            udp([10, 0, 2, 2], 64, P0_MAC),
            udp([198, 18, 0, 7], 9, P0_MAC),
        ]);
        assert_eq!(out, vec![Outcome::Tx(1), Outcome::Tx(1)]);
        for (pkt, (mac, ttl)) in pkts.iter().zip([(H2_MAC, 63), (GW_MAC, 8)]) {
            let s = SlicedPacket::from_ethernet(pkt).unwrap();
            let eth = s.link.unwrap().to_header().unwrap();
            let eth = eth.ethernet2().unwrap();
            assert_eq!(eth.destination, mac);
            assert_eq!(eth.source, P1_MAC);
            let etherparse::NetSlice::Ipv4(ip) = s.net.unwrap() else {
                panic!("not ipv4")
            };
            let h = ip.header().to_header();
            assert_eq!(h.time_to_live, ttl);
            assert_eq!(h.header_checksum, h.calc_header_checksum());
        }
    }

    #[test]
    fn drops_carry_their_reason() {
        let mut bad_csum = udp([10, 0, 2, 2], 64, P0_MAC);
        bad_csum[24] ^= 0xff;
        let mut padded = udp([10, 0, 2, 2], 64, P0_MAC);
        let real_len = padded.len();
        padded.extend_from_slice(&[0; 6]);
        let (pkts, out) = run(vec![
            udp([10, 0, 2, 2], 1, P0_MAC),
            udp([8, 8, 8, 8], 64, P0_MAC),
            udp([203, 0, 113, 5], 64, P0_MAC),
            bad_csum,
            udp([10, 0, 2, 2], 64, [2, 9, 9, 9, 9, 9]),
            udp([192, 0, 2, 1], 64, P0_MAC),
            udp([10, 0, 2, 1], 64, P0_MAC),
            padded,
        ]);
        assert_eq!(
            out,
            vec![
                icmp_to_h1(DropReason::TtlExpired),
                icmp_to_h1(DropReason::NoRoute),
                Outcome::Drop(DropReason::RouteBlackhole),
                Outcome::Drop(DropReason::Ip4BadChecksum),
                Outcome::Drop(DropReason::EthOtherHost),
                Outcome::Drop(DropReason::EgressNotManaged),
                Outcome::Drop(DropReason::RouteLocal),
                Outcome::Tx(1),
            ]
        );
        assert_eq!(pkts[7].len(), real_len, "link padding trimmed");
    }

    #[test]
    fn unresolved_next_hops_ask_for_resolution_after_ttl_decrement() {
        let (pkts, out) = run(vec![
            udp([198, 19, 0, 1], 64, P0_MAC),
            udp([10, 0, 2, 77], 64, P0_MAC),
        ]);
        assert_eq!(
            out,
            vec![
                Outcome::Resolve(NextHopKey {
                    port: 1,
                    ip: 0x0a00_0209
                }),
                Outcome::Resolve(NextHopKey {
                    port: 1,
                    ip: 0x0a00_024d
                }),
            ]
        );
        assert_eq!(pkts[0][14 + 8], 63);
    }

    #[test]
    fn time_exceeded_quotes_the_packet_as_received() {
        let pkt = raw([10, 0, 1, 2], [10, 0, 2, 2], 1, false, &[], 100);
        let orig = pkt[14..].to_vec();
        let (pkts, out) = run(vec![pkt]);
        assert_eq!(out, vec![icmp_to_h1(DropReason::TtlExpired)]);
        check_icmp(&pkts[0], 11, 0, 0, &orig);
    }

    #[test]
    fn long_packets_are_quoted_up_to_576_bytes() {
        let pkt = raw([10, 0, 1, 2], [10, 0, 2, 2], 0, false, &[], 1000);
        let orig = pkt[14..].to_vec();
        let (pkts, _) = run(vec![pkt]);
        assert_eq!(pkts[0].len(), 14 + 576);
        check_icmp(&pkts[0], 11, 0, 0, &orig);
    }

    #[test]
    fn route_errors_send_the_code_linux_sends() {
        let cases = [
            ([8, 8, 8, 8], DropReason::NoRoute, Some(0)),
            ([198, 51, 100, 1], DropReason::RouteUnreachable, Some(1)),
            ([198, 51, 101, 1], DropReason::RouteProhibit, Some(13)),
            ([203, 0, 113, 1], DropReason::RouteBlackhole, None),
        ];
        for (dst, reason, code) in cases {
            let (pkts, out) = run(vec![raw([10, 0, 1, 2], dst, 64, false, &[], 8)]);
            match code {
                Some(code) => {
                    assert_eq!(out[0], icmp_to_h1(reason));
                    assert_eq!((pkts[0][34], pkts[0][35]), (3, code));
                }
                None => assert_eq!(out[0], Outcome::Drop(reason)),
            }
        }
        // ip_error's limiter and icmp_ratelimit share one bucket: two at once, as Linux.
        let frames = (0..5)
            .map(|_| raw([10, 0, 1, 2], [8, 8, 8, 8], 64, false, &[], 8))
            .collect();
        let (_, out) = run(frames);
        let sent = out
            .iter()
            .filter(|o| matches!(o, Outcome::Icmp { .. }))
            .count();
        assert_eq!(sent, 2);
    }

    #[test]
    fn df_too_big_gets_frag_needed_with_mtu_and_df_clear_is_fragmented() {
        let big = raw([10, 0, 1, 2], [10, 0, 2, 2], 64, true, &[], 1480);
        let orig = big[14..].to_vec();
        let (pkts, out) = run(vec![
            big,
            raw([10, 0, 1, 2], [10, 0, 2, 2], 64, false, &[], 1480),
        ]);
        assert_eq!(out[0], icmp_to_h1(DropReason::FragNeeded));
        check_icmp(&pkts[0], 3, 4, 1400, &orig);
        assert_eq!(
            out[1],
            Outcome::Fragment {
                key: NextHopKey {
                    port: 1,
                    ip: 0x0a00_0202
                },
                mtu: 1400
            }
        );
        assert_eq!(pkts[1][14 + 8], 63, "TTL decremented before fragmenting");
    }

    #[test]
    fn no_icmp_about_errors_fragments_or_broadcasts() {
        let mut icmp_err = raw([10, 0, 1, 2], [10, 0, 2, 2], 1, false, &[], 8);
        icmp_err[14 + 9] = 1;
        icmp_err[34] = 3; // destination unreachable
        refill(&mut icmp_err);
        let mut echo = icmp_err.clone();
        echo[34] = 8;
        let mut frag = raw([10, 0, 1, 2], [10, 0, 2, 2], 1, false, &[], 8);
        frag[14 + 7] = 1; // offset 8
        refill(&mut frag);
        let mut c = ctx(ForwardConfig::default());
        let (_, out) = run_with(&mut c, 0, vec![icmp_err, echo, frag]);
        assert_eq!(out[0], Outcome::Drop(DropReason::TtlExpired));
        assert_eq!(out[1], icmp_to_h1(DropReason::TtlExpired));
        assert_eq!(out[2], Outcome::Drop(DropReason::TtlExpired));
        assert_eq!(c.events[Event::IcmpSuppressed as usize], 2);
    }

    fn refill(f: &mut [u8]) {
        let hl = usize::from(f[14] & 0x0f) * 4;
        f[24..26].copy_from_slice(&[0, 0]);
        let c = crate::wire::checksum::checksum(&f[14..14 + hl]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn martians_each_have_a_reason() {
        use DropReason::*;
        let cases: &[([u8; 4], [u8; 4], DropReason)] = &[
            ([0, 1, 2, 3], [10, 0, 2, 2], MartianSrcZeronet),
            ([127, 0, 0, 1], [10, 0, 2, 2], MartianSrcLoopback),
            ([224, 0, 0, 5], [10, 0, 2, 2], MartianSrcMulticast),
            ([255, 255, 255, 255], [10, 0, 2, 2], MartianSrcBroadcast),
            ([240, 0, 0, 1], [10, 0, 2, 2], MartianSrcClassE),
            ([169, 254, 1, 1], [10, 0, 2, 2], MartianSrcLinkLocal),
            ([10, 0, 2, 1], [10, 0, 2, 2], MartianSrcLocal),
            ([10, 0, 1, 2], [0, 0, 0, 9], MartianDstZeronet),
            ([10, 0, 1, 2], [127, 0, 0, 1], MartianDstLoopback),
            ([10, 0, 1, 2], [240, 0, 0, 1], MartianDstClassE),
            ([10, 0, 1, 2], [169, 254, 9, 9], MartianDstLinkLocal),
            ([10, 0, 1, 2], [10, 0, 2, 255], DirectedBroadcast),
            ([10, 0, 1, 255], [10, 0, 2, 2], MartianSrcBroadcast),
        ];
        let frames = cases
            .iter()
            .map(|(s, d, _)| raw(*s, *d, 64, false, &[], 8))
            .collect();
        let (_, out) = run(frames);
        for ((s, d, want), got) in cases.iter().zip(out) {
            assert_eq!(got, Outcome::Drop(*want), "{s:?} -> {d:?}");
        }
        // Linux mode forwards class E and link-local (when routed).
        let mut c = ctx(ForwardConfig {
            martians: Martians::Linux,
            ..ForwardConfig::default()
        });
        let (_, out) = run_with(
            &mut c,
            0,
            vec![raw([169, 254, 1, 1], [10, 0, 2, 2], 64, false, &[], 8)],
        );
        assert_eq!(out[0], Outcome::Tx(1));
    }

    #[test]
    fn reverse_path_filter() {
        let from_far = || raw([198, 18, 0, 5], [10, 0, 2, 2], 64, false, &[], 8);
        let no_route_back = || raw([8, 8, 8, 8], [10, 0, 2, 2], 64, false, &[], 8);
        for (mode, want) in [
            (RpFilter::Off, [Outcome::Tx(1), Outcome::Tx(1)]),
            (
                RpFilter::Loose,
                [Outcome::Tx(1), Outcome::Drop(DropReason::RpFilter)],
            ),
            (
                RpFilter::Strict,
                [
                    Outcome::Drop(DropReason::RpFilter),
                    Outcome::Drop(DropReason::RpFilter),
                ],
            ),
        ] {
            let mut c = ctx(ForwardConfig {
                rp_filter: mode,
                ..ForwardConfig::default()
            });
            let (_, out) = run_with(&mut c, 0, vec![from_far(), no_route_back()]);
            assert_eq!(out, want, "{mode:?}");
        }
        // Strict passes when the route back leaves by the ingress port.
        let mut c = ctx(ForwardConfig {
            rp_filter: RpFilter::Strict,
            ..ForwardConfig::default()
        });
        let (_, out) = run_with(
            &mut c,
            1,
            vec![{
                let mut f = from_far();
                f[..6].copy_from_slice(&P1_MAC);
                f
            }],
        );
        assert_eq!(out[0], Outcome::Tx(1));
    }

    #[test]
    fn options_record_route_bad_option_and_source_route() {
        let rr = [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let bad = [7, 3, 3, 0];
        let lsrr = [131, 7, 4, 10, 0, 2, 2, 0];
        let bad_pkt = raw([10, 0, 1, 2], [10, 0, 2, 2], 64, false, &bad, 8);
        let bad_orig = bad_pkt[14..].to_vec();
        let (pkts, out) = run(vec![
            raw([10, 0, 1, 2], [10, 0, 2, 2], 64, false, &rr, 8),
            bad_pkt,
            raw([10, 0, 1, 2], [10, 0, 2, 2], 64, false, &lsrr, 8),
        ]);
        assert_eq!(out[0], Outcome::Tx(1));
        let ip = &pkts[0][14..];
        assert_eq!(&ip[23..27], &[10, 0, 2, 1], "egress address recorded");
        assert_eq!(ip[22], 8);
        assert_eq!(crate::wire::checksum::sum(&ip[..32]), 0xffff);
        assert_eq!(out[1], icmp_to_h1(DropReason::Ip4BadOption));
        check_icmp(&pkts[1], 12, 0, 22 << 24, &bad_orig);
        assert_eq!(out[2], Outcome::Drop(DropReason::Ip4SourceRoute));
        let mut c = ctx(ForwardConfig {
            accept_source_route: true,
            ..ForwardConfig::default()
        });
        let (_, out) = run_with(
            &mut c,
            0,
            vec![raw([10, 0, 1, 2], [10, 0, 2, 2], 64, false, &lsrr, 8)],
        );
        assert_eq!(out[0], Outcome::Tx(1));
    }

    #[test]
    fn icmp_errors_are_rate_limited_per_destination() {
        let mut c = ctx(ForwardConfig::default());
        let frames = (0..10)
            .map(|_| raw([10, 0, 1, 2], [10, 0, 2, 2], 1, false, &[], 8))
            .collect();
        let (_, out) = run_with(&mut c, 0, frames);
        let sent = out
            .iter()
            .filter(|o| matches!(o, Outcome::Icmp { .. }))
            .count();
        assert_eq!(sent, 6, "burst of XRLIM_BURST_FACTOR");
        assert_eq!(c.events[Event::IcmpTimeExceeded as usize], 6);
        assert_eq!(c.events[Event::IcmpRateLimitedHost as usize], 4);
        // Frag needed is never limited.
        let frames = (0..10)
            .map(|_| raw([10, 0, 1, 2], [10, 0, 2, 2], 64, true, &[], 1480))
            .collect();
        let (_, out) = run_with(&mut c, 0, frames);
        assert!(out.iter().all(|o| matches!(o, Outcome::Icmp { .. })));
        // Disabled: plain drops.
        let mut c = ctx(ForwardConfig {
            icmp: IcmpConfig {
                enabled: false,
                ..IcmpConfig::default()
            },
            ..ForwardConfig::default()
        });
        let (_, out) = run_with(
            &mut c,
            0,
            vec![raw([10, 0, 1, 2], [10, 0, 2, 2], 1, false, &[], 8)],
        );
        assert_eq!(out[0], Outcome::Drop(DropReason::TtlExpired));
    }

    #[test]
    fn icmp_error_echoes_record_route_as_linux() {
        let rr = [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let (pkts, out) = run(vec![raw([10, 0, 1, 2], [10, 0, 2, 2], 1, false, &rr, 8)]);
        assert_eq!(out[0], icmp_to_h1(DropReason::TtlExpired));
        let ip = &pkts[0][14..];
        assert_eq!(ip[0], 0x48, "reply header carries 12 bytes of options");
        assert_eq!(crate::wire::checksum::sum(&ip[..32]), 0xffff);
        assert_eq!(&ip[20..32], &[7, 11, 12, 10, 0, 1, 1, 10, 0, 1, 1, 0]);
        assert_eq!((ip[32], ip[33]), (11, 0));
        // The quote: the header as Linux leaves it after ip_options_compile (pointer advanced,
        // the router's address towards the sender recorded, checksum not yet updated).
        assert_eq!(&ip[40 + 20..40 + 27], &[7, 11, 8, 10, 0, 1, 1]);
        assert_eq!(crate::wire::checksum::sum(&ip[32..]), 0xffff);
    }

    #[test]
    fn icmp_source_route_back_or_inbound_interface() {
        // From h1's subnet, but arriving on p1: the route back leaves by p0.
        let pkt = || {
            let mut f = raw([10, 0, 1, 2], [10, 0, 2, 2], 1, false, &[], 8);
            f[..6].copy_from_slice(&P1_MAC);
            f
        };
        let (pkts, _) = run_with(&mut ctx(ForwardConfig::default()), 1, vec![pkt()]);
        assert_eq!(&pkts[0][14 + 12..14 + 16], &[10, 0, 1, 1]);
        let mut c = ctx(ForwardConfig {
            icmp: IcmpConfig {
                use_inbound_ifaddr: true,
                ..IcmpConfig::default()
            },
            ..ForwardConfig::default()
        });
        let (pkts, _) = run_with(&mut c, 1, vec![pkt()]);
        assert_eq!(&pkts[0][14 + 12..14 + 16], &[10, 0, 2, 1], "p1's address");
    }

    proptest::proptest! {
        /// Whatever the header, options, TTL, size and destination: no panic, and every ICMP
        /// error produced is a well-formed datagram no larger than 576 bytes.
        #[test]
        fn any_packet_has_a_defined_outcome(
            opts in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..=10usize),
            ttl in 0u8..4,
            df: bool,
            payload in 0usize..1600,
            dst in 0usize..8,
            frag in 0u16..3,
        ) {
            let dsts = [
                [10, 0, 2, 2], [198, 18, 0, 9], [198, 19, 0, 1], [8, 8, 8, 8],
                [198, 51, 100, 1], [198, 51, 101, 1], [203, 0, 113, 1], [10, 0, 2, 255],
            ];
            let mut o: Vec<u8> = opts.iter().flat_map(|b| [*b, b.wrapping_mul(7), 4, 0]).collect();
            o.truncate(40);
            let mut pkt = raw([10, 0, 1, 2], dsts[dst], ttl, df, &o, payload);
            if frag != 0 {
                pkt[14 + 7] = frag as u8;
                refill(&mut pkt);
            }
            let mut c = ctx(ForwardConfig { accept_source_route: frag == 2, ..ForwardConfig::default() });
            let (pkts, out) = run_with(&mut c, 0, vec![pkt]);
            if let Outcome::Icmp { .. } = out[0] {
                let ip = &pkts[0][14..];
                let hl = usize::from(ip[0] & 0x0f) * 4;
                proptest::prop_assert!(ip.len() <= 576);
                proptest::prop_assert_eq!(usize::from(u16::from_be_bytes([ip[2], ip[3]])), ip.len());
                proptest::prop_assert_eq!(crate::wire::checksum::sum(&ip[..hl]), 0xffff);
                proptest::prop_assert_eq!(crate::wire::checksum::sum(&ip[hl..]), 0xffff);
            }
        }
    }

    /// Every packet through the general paths only (`receive_slow`, the bulk lookup,
    /// `forward_slow`: every check in Linux's order, as the pipeline ran before its fast paths):
    /// the oracle the fast paths are compared with.
    fn reference_batch<B: PacketBatch + ?Sized>(
        fib: &Fib,
        ctx: &mut Ip4Ctx,
        ingress: PortId,
        batch: &mut B,
        out: &mut [Outcome; BATCH],
    ) {
        let n = batch.len();
        assert!(n <= BATCH, "batch of {n} exceeds BATCH");
        let dev_mac = fib.ports[usize::from(ingress)].mac;
        let mut dsts = [0u32; BATCH];
        let mut live = [false; BATCH];
        for i in 0..n {
            match receive_slow(batch.packet_mut(i), &dev_mac) {
                Ok((dst, len)) => {
                    batch.truncate(i, len);
                    (dsts[i], live[i]) = (dst, true);
                }
                Err(reason) => out[i] = Outcome::Drop(reason),
            }
        }
        let mut entries = [NO_ROUTE; BATCH];
        ip4_lookup::ip4_lookup(fib, &dsts[..n], &mut entries[..n]);
        for i in (0..n).filter(|&i| live[i]) {
            out[i] = forward_slow(fib, ctx, ingress, batch, i, dsts[i], entries[i]);
        }
    }

    /// One random frame for [`fast_paths_decide_as_the_general_path`]: `k` picks source,
    /// destination, TTL, options, L2 addressing and a defect.
    #[allow(
        clippy::too_many_arguments,
        reason = "one argument per random dimension"
    )]
    fn random_frame(
        ingress: PortId,
        src: usize,
        dst: usize,
        ttl: usize,
        df: bool,
        opts: usize,
        payload: usize,
        l2: usize,
        defect: usize,
        frag: u16,
        proto: u8,
    ) -> Vec<u8> {
        let srcs: [[u8; 4]; 10] = [
            [10, 0, 1, 2],
            [10, 0, 2, 2],
            [198, 20, 0, 7],
            [0, 0, 0, 1],
            [127, 0, 0, 1],
            [169, 254, 1, 1],
            [224, 0, 0, 1],
            [240, 0, 0, 1],
            [10, 0, 1, 1],
            [10, 0, 2, 255],
        ];
        let dsts: [[u8; 4]; 16] = [
            [10, 0, 2, 2],
            [10, 0, 2, 77],
            [10, 0, 1, 2],
            [198, 18, 0, 5],
            [198, 19, 0, 5],
            [198, 20, 0, 5],
            [203, 0, 113, 1],
            [198, 51, 100, 1],
            [198, 51, 101, 1],
            [192, 0, 2, 1],
            [8, 8, 8, 8],
            [10, 0, 1, 1],
            [10, 0, 2, 255],
            [255, 255, 255, 255],
            [224, 0, 0, 5],
            [169, 254, 3, 3],
        ];
        let ttls = [0u8, 1, 2, 64, 255];
        let options: [&[u8]; 5] = [
            &[],
            &[1, 1, 1, 0],
            &[7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[7, 3, 3, 0],
            &[131, 7, 4, 10, 0, 2, 2, 0],
        ];
        let mut f = raw(
            srcs[src % srcs.len()],
            dsts[dst % dsts.len()],
            ttls[ttl % ttls.len()],
            df,
            options[opts % options.len()],
            payload,
        );
        f[14 + 9] = proto;
        f[14 + 6] |= (frag >> 8) as u8 & 0x3f;
        f[14 + 7] = frag as u8;
        let my_mac = if ingress == 0 { P0_MAC } else { P1_MAC };
        f[..6].copy_from_slice(&match l2 % 6 {
            0..=2 => my_mac,
            3 => [0xff; 6],
            4 => [0x01, 0x00, 0x5e, 0, 0, 5],
            _ => H2_MAC,
        });
        refill(&mut f);
        match defect % 16 {
            1 => f[14 + 10] ^= 0x40,
            2 => f.extend_from_slice(&[0; 7]),
            3 => f.truncate(14 + payload % 30),
            4 => f[12..14].copy_from_slice(&[0x86, 0xdd]),
            5 => f[12..14].copy_from_slice(&[0x81, 0x00]),
            6 => {
                f[14] = 0x60 | (f[14] & 0x0f);
                refill(&mut f);
            }
            7 => {
                let t = u16::from_be_bytes([f[16], f[17]]).wrapping_add(3);
                f[16..18].copy_from_slice(&t.to_be_bytes());
                refill(&mut f);
            }
            8 => f.truncate(payload % 14),
            _ => {}
        }
        f
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// The batch pipeline with its fast paths gives, packet for packet, the outcome, the
        /// bytes and the counted events of the general path alone, on random batches that mix
        /// forwarded packets with every kind of exception and every policy setting.
        #[test]
        fn fast_paths_decide_as_the_general_path(
            frames in proptest::collection::vec(
                (
                    (0usize..10, 0usize..16, 0usize..5, proptest::prelude::any::<bool>()),
                    (0usize..5, 0usize..1500, 0usize..6, 0usize..16),
                    (0u16..3, proptest::sample::select(vec![17u8, 6, 1, 47])),
                ),
                1..=BATCH,
            ),
            ingress in 0u16..2,
            rp in 0usize..3,
            rfc_martians: bool,
            accept_source_route: bool,
            l3_hash: bool,
        ) {
            let cfg = ForwardConfig {
                rp_filter: [RpFilter::Off, RpFilter::Loose, RpFilter::Strict][rp],
                martians: if rfc_martians { Martians::Rfc1812 } else { Martians::Linux },
                accept_source_route,
                multipath_hash: if l3_hash { MultipathHash::L3 } else { MultipathHash::L4 },
                ..ForwardConfig::default()
            };
            let frames: Vec<Vec<u8>> = frames
                .iter()
                .map(|&((s, d, t, df), (o, p, l2, defect), (frag, proto))| {
                    // Mostly plain packets: options and fragments now and then.
                    let o = if o < 3 { 0 } else { o - 2 };
                    let frag = if frag == 2 { 0x2000 | 0x10 } else { frag };
                    random_frame(ingress, s, d, t, df, o, p, l2, defect, frag, proto)
                })
                .collect();
            let fib = fib();
            let (mut a, mut b) = (ctx(cfg), ctx(cfg));
            let (mut fa, mut fb) = (frames.clone(), frames);
            let mut oa = [Outcome::Drop(DropReason::NoRoute); BATCH];
            let mut ob = oa;
            reference_batch(&fib, &mut a, ingress, fa.as_mut_slice(), &mut oa);
            ip4_forward_batch(&fib, &mut b, ingress, fb.as_mut_slice(), &mut ob);
            let n = fa.len();
            proptest::prop_assert_eq!(&oa[..n], &ob[..n]);
            proptest::prop_assert_eq!(fa, fb);
            proptest::prop_assert_eq!(a.events, b.events);
        }
    }
}

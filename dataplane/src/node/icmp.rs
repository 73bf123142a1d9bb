//! ICMP errors the dataplane sends: Linux `icmp_send()` (`net/ipv4/icmp.c`) and `ip_error()`
//! (`net/ipv4/route.c`), within the rules of RFC 1812 §4.3.2.
//!
//! The error is built **in place** in the frame of the packet it is about (VPP's
//! `ip4-icmp-error` does the same): the start of the offending datagram is moved 28 bytes back,
//! an IPv4 and an ICMP header are written in front of it and the frame is cut to the quote. No
//! second buffer is needed, so an ICMP error can never fail for want of a frame.
//!
//! ```text
//!  before: | eth 14 | offending IPv4 datagram ...................... |
//!  after:  | eth 14 | IPv4 20 | ICMP 8 | first min(len, 548) bytes of the datagram |
//! ```
//!
//! What Linux does, and xfwd with it:
//!
//! - **Quote**: as much of the offending datagram as fits in 576 bytes (`icmp_send`: `room =
//!   min(dst_mtu, 576) - sizeof(iphdr) - sizeof(icmphdr)`), i.e. up to 548 bytes.
//! - **Header**: TTL 64 (`sysctl_ip_default_ttl`), DF clear (the ICMP socket is
//!   `IP_PMTUDISC_DONT`), TOS = `(tos & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL`.
//! - **Source**: the address `inet_select_addr` picks on the interface the route back to the
//!   sender leaves by (the first primary address whose subnet holds the next hop, else the first
//!   primary address); with `icmp_errors_use_inbound_ifaddr` the same choice on the interface
//!   the packet came in on.
//! - **Never** about an ICMP error (or an ICMP type above 18, or a truncated ICMP header), a
//!   non-first fragment, a packet sent to a broadcast or multicast address, or a packet whose
//!   source does not name one host (RFC 1812 §4.3.2.7).
//! - **Rate limits**: the global token bucket (`icmp_msgs_per_sec`, `icmp_msgs_burst`) and the
//!   per-destination one (`icmp_ratelimit` ms per message, burst of 6), both only for the types
//!   in `icmp_ratemask` (default `0x1818`: unreachable, source quench, time exceeded, parameter
//!   problem) and never for fragmentation needed. Route errors (`ip_error`: net/host
//!   unreachable, prohibited) first pass `ip_error`'s own limiter on the same per-destination
//!   bucket (`route/error_cost` 1 s, `route/error_burst` 5 s), as in Linux.
//!
//! The state is per worker: each worker holds its own per-destination buckets and a share
//! (`1/workers`, rounded up) of the global budget, so no atomics are touched per packet.

use crate::drop::Event;
use crate::fib::{FastMap, Fib, L2_LEN, NextHopKey, PortId, Verdict};
use crate::wire::{checksum, ipv4};

/// ICMP type Destination Unreachable.
pub const DEST_UNREACH: u8 = 3;
/// ICMP type Time Exceeded.
pub const TIME_EXCEEDED: u8 = 11;
/// ICMP type Parameter Problem.
pub const PARAMETER_PROB: u8 = 12;
/// Code: net unreachable.
pub const NET_UNREACH: u8 = 0;
/// Code: host unreachable.
pub const HOST_UNREACH: u8 = 1;
/// Code: fragmentation needed and DF set.
pub const FRAG_NEEDED: u8 = 4;
/// Code: communication administratively prohibited.
pub const PKT_FILTERED: u8 = 13;

/// Largest ICMP error datagram (RFC 1812 §4.3.2.3: "SHOULD ... not exceed 576 bytes").
pub const MAX_ERROR_LEN: usize = 576;
/// Bytes of the offending datagram quoted at most.
pub const MAX_QUOTE: usize = MAX_ERROR_LEN - 20 - 8;
/// Room an error needs in a frame: L2 + the largest error.
pub const FRAME_ROOM: usize = L2_LEN + MAX_ERROR_LEN;

/// `IPTOS_TOS_MASK`.
const IPTOS_TOS_MASK: u8 = 0x1e;
/// `IPTOS_PREC_INTERNETCONTROL`.
const IPTOS_PREC_INTERNETCONTROL: u8 = 0xc0;
/// `XRLIM_BURST_FACTOR`.
const XRLIM_BURST_FACTOR: u64 = 6;
/// `net.ipv4.route.error_cost` (ms at HZ=1000).
const ROUTE_ERROR_COST_MS: u64 = 1000;
/// `net.ipv4.route.error_burst`.
const ROUTE_ERROR_BURST_MS: u64 = 5 * ROUTE_ERROR_COST_MS;
/// Per-destination buckets a worker keeps at most.
const MAX_PEERS: usize = 4096;

/// ICMP error generation, Linux's `net.ipv4.icmp_*` sysctls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IcmpConfig {
    /// Send ICMP errors at all (`--no-icmp-errors` turns them off).
    pub enabled: bool,
    /// `icmp_errors_use_inbound_ifaddr`: source errors from the interface the packet came in on.
    pub use_inbound_ifaddr: bool,
    /// `icmp_ratelimit`: milliseconds per error per destination (0: no per-destination limit).
    pub ratelimit_ms: u32,
    /// `icmp_ratemask`: bit `t` set = type `t` is rate limited.
    pub ratemask: u32,
    /// `icmp_msgs_per_sec`: global refill rate.
    pub msgs_per_sec: u32,
    /// `icmp_msgs_burst`: global bucket size.
    pub msgs_burst: u32,
}

impl Default for IcmpConfig {
    fn default() -> Self {
        IcmpConfig {
            enabled: true,
            use_inbound_ifaddr: false,
            ratelimit_ms: 1000,
            ratemask: 0x1818,
            msgs_per_sec: 1000,
            msgs_burst: 50,
        }
    }
}

/// The error to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError {
    /// ICMP type.
    pub ty: u8,
    /// ICMP code.
    pub code: u8,
    /// The 32 bits after the checksum (next-hop MTU, parameter-problem pointer), host order.
    pub info: u32,
    /// Counted when sent.
    pub event: Event,
    /// Raised by the route lookup (Linux `ip_error`, with its extra limiter).
    pub route_error: bool,
}

impl IcmpError {
    /// Time Exceeded, TTL exceeded in transit.
    pub const TTL: IcmpError = IcmpError::new(TIME_EXCEEDED, 0, 0, Event::IcmpTimeExceeded);
    /// Net unreachable (no route).
    pub const NET_UNREACH: IcmpError =
        IcmpError::new(DEST_UNREACH, NET_UNREACH, 0, Event::IcmpNetUnreachable).route();
    /// Host unreachable (unreachable route).
    pub const HOST_UNREACH_ROUTE: IcmpError =
        IcmpError::new(DEST_UNREACH, HOST_UNREACH, 0, Event::IcmpHostUnreachable).route();
    /// Host unreachable (neighbour resolution failed, Linux `ip_link_failure`).
    pub const HOST_UNREACH: IcmpError =
        IcmpError::new(DEST_UNREACH, HOST_UNREACH, 0, Event::IcmpHostUnreachable);
    /// Administratively prohibited (prohibit route).
    pub const PROHIBITED: IcmpError =
        IcmpError::new(DEST_UNREACH, PKT_FILTERED, 0, Event::IcmpProhibited).route();

    const fn new(ty: u8, code: u8, info: u32, event: Event) -> Self {
        IcmpError {
            ty,
            code,
            info,
            event,
            route_error: false,
        }
    }

    const fn route(mut self) -> Self {
        self.route_error = true;
        self
    }

    /// Fragmentation needed, carrying the next-hop MTU.
    pub const fn frag_needed(mtu: u32) -> Self {
        IcmpError::new(
            DEST_UNREACH,
            FRAG_NEEDED,
            mtu & 0xffff,
            Event::IcmpFragNeeded,
        )
    }

    /// Parameter problem with a pointer to the offending octet of the IP header.
    pub const fn param_problem(pointer: u8) -> Self {
        IcmpError::new(
            PARAMETER_PROB,
            0,
            (pointer as u32) << 24,
            Event::IcmpParamProblem,
        )
    }
}

#[derive(Clone, Copy, Debug)]
struct Peer {
    tokens: u64,
    last: u64,
}

/// One worker's ICMP state: rate limiter buckets and the IP ID counter.
#[derive(Debug)]
pub struct IcmpState {
    cfg: IcmpConfig,
    peers: FastMap<u32, Peer>,
    credit: i64,
    stamp: u64,
    per_sec: u64,
    burst: i64,
    ip_id: u16,
}

impl IcmpState {
    /// State for one of `workers` workers: the global budget is split between them.
    pub fn new(cfg: IcmpConfig, workers: usize, worker: usize) -> Self {
        let w = workers.max(1) as u64;
        let burst = u64::from(cfg.msgs_burst).div_ceil(w) as i64;
        IcmpState {
            cfg,
            peers: FastMap::default(),
            credit: burst,
            stamp: 0,
            per_sec: u64::from(cfg.msgs_per_sec).div_ceil(w),
            burst,
            ip_id: (worker as u16).wrapping_mul(0x9e37),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &IcmpConfig {
        &self.cfg
    }

    /// Linux `icmpv4_mask_allow`: whether `ty`/`code` escapes rate limiting.
    fn exempt(&self, ty: u8, code: u8) -> bool {
        ty > 18
            || (ty == DEST_UNREACH && code == FRAG_NEEDED)
            || (1u32 << ty) & self.cfg.ratemask == 0
    }

    /// Linux `icmp_global_allow` (6.x): allowed while credit remains, else refilled from the
    /// time elapsed (at most one second's worth, at most every 20 ms).
    fn global_allow(&mut self, now: u64) -> bool {
        if self.credit > 0 {
            return true;
        }
        let delta = now.saturating_sub(self.stamp).min(1000);
        if delta < 20 {
            return false;
        }
        let incr = (self.per_sec * delta / 1000) as i64;
        if incr == 0 {
            return false;
        }
        self.stamp = now;
        self.credit = (self.credit + incr).min(self.burst);
        true
    }

    fn peer(&mut self, dst: u32, now: u64) -> &mut Peer {
        if self.peers.len() >= MAX_PEERS && !self.peers.contains_key(&dst) {
            // A bucket idle this long is full again: forgetting it changes nothing.
            let full = XRLIM_BURST_FACTOR * u64::from(self.cfg.ratelimit_ms).max(1000);
            self.peers.retain(|_, p| now.saturating_sub(p.last) < full);
            if self.peers.len() >= MAX_PEERS {
                self.peers.clear();
            }
        }
        // Linux `inet_getpeer` starts a peer with `rate_last = jiffies - 60 * HZ`.
        self.peers.entry(dst).or_insert(Peer {
            tokens: 60_000,
            last: now,
        })
    }

    /// Linux `ip_error`'s limiter: `error_cost` per message, `error_burst` at most.
    fn route_error_allow(&mut self, dst: u32, now: u64) -> bool {
        let p = self.peer(dst, now);
        p.tokens = (p.tokens + now.saturating_sub(p.last)).min(ROUTE_ERROR_BURST_MS);
        p.last = now;
        if p.tokens >= ROUTE_ERROR_COST_MS {
            p.tokens -= ROUTE_ERROR_COST_MS;
            true
        } else {
            false
        }
    }

    /// Linux `inet_peer_xrlim_allow(peer, icmp_ratelimit)`.
    fn xrlim_allow(&mut self, dst: u32, now: u64) -> bool {
        let timeout = u64::from(self.cfg.ratelimit_ms);
        let p = self.peer(dst, now);
        let mut token = p.tokens + now.saturating_sub(p.last);
        p.last = now;
        token = token.min(XRLIM_BURST_FACTOR * timeout);
        let ok = token >= timeout;
        if ok {
            token -= timeout;
        }
        p.tokens = token;
        ok
    }

    fn next_id(&mut self) -> u16 {
        self.ip_id = self.ip_id.wrapping_add(1);
        self.ip_id
    }
}

/// Whether an ICMP error may be sent about this datagram (`ip`: its bytes from the IPv4
/// header, validated). RFC 1812 §4.3.2.7 and Linux `__icmp_send`.
pub fn may_send_error(ip: &[u8], fib: &Fib) -> bool {
    if ip.len() < 20 {
        return false;
    }
    let hl = usize::from(ip[0] & 0x0f) * 4;
    let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
    let src = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]);
    let dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
    if frag != 0 {
        return false;
    }
    if ipv4::is_multicast(dst) || ipv4::is_lbcast(dst) {
        return false;
    }
    // A source that does not name one host.
    if ipv4::is_zeronet(src)
        || ipv4::is_loopback(src)
        || ipv4::is_multicast(src)
        || ipv4::is_class_e(src)
        || fib.addrs.is_local(src)
        || fib.addrs.is_bcast(src)
    {
        return false;
    }
    if ip[9] == 1 {
        // Linux: no error about an error, nor about an unknown type or a missing type byte.
        let Some(&ty) = ip.get(hl) else {
            return false;
        };
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if hl >= total || ty > 18 || matches!(ty, 3 | 4 | 5 | 11 | 12) {
            return false;
        }
    }
    true
}

/// Where a built error goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The next hop towards the sender.
    pub key: NextHopKey,
    /// Whether its MAC is known (the L2 header is written) or it must be resolved.
    pub resolved: bool,
    /// The frame's new length.
    pub len: usize,
}

/// Builds `err` about the datagram at `frame[L2_LEN..]` in place, if the rules and rate limits
/// allow, and routes it back to the sender.
///
/// `frame` must be at least [`FRAME_ROOM`] bytes (the caller grows the frame first); `ip_len`
/// is the length of the offending datagram. `ingress` is the port it came in on, when known.
/// Counts what happened in `events` (indexed by [`Event`]).
///
/// Returns `None` when no error is sent (the frame is untouched then).
#[allow(
    clippy::too_many_arguments,
    reason = "one call site per caller; a struct would only rename them"
)]
pub fn send_error(
    st: &mut IcmpState,
    fib: &Fib,
    now_ms: u64,
    ingress: Option<PortId>,
    frame: &mut [u8],
    ip_len: usize,
    err: IcmpError,
    opts: Option<&crate::node::ip4_options::Options>,
    events: &mut impl FnMut(Event),
) -> Option<Sent> {
    if !st.cfg.enabled {
        events(Event::IcmpDisabled);
        return None;
    }
    let ip = &frame[L2_LEN..L2_LEN + ip_len];
    if !may_send_error(ip, fib) {
        events(Event::IcmpSuppressed);
        return None;
    }
    let orig_src = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]);
    let orig_tos = ip[1];
    if err.route_error && !st.route_error_allow(orig_src, now_ms) {
        events(Event::IcmpRateLimitedHost);
        return None;
    }
    let limited = !st.exempt(err.ty, err.code);
    if limited && !st.global_allow(now_ms) {
        events(Event::IcmpRateLimitedGlobal);
        return None;
    }
    let inbound = ingress
        .filter(|_| st.cfg.use_inbound_ifaddr)
        .and_then(|p| fib.addrs.select(p, orig_src));
    // The route back to the sender; over a multipath route, the path of the error's own flow
    // (Linux `icmp_route_lookup` → `fib_multipath_hash`: the source as chosen so far, else 0).
    let entry = fib.routes.lookup(orig_src);
    let hash = || crate::fib::flow_hash(inbound.unwrap_or(0), orig_src, 0);
    let (key, l2) = match fib.verdict_hashed(entry, orig_src, hash) {
        Verdict::Forward(adj) => (adj.key(), Some(adj.l2)),
        Verdict::Resolve { key, .. } => (key, None),
        Verdict::Drop(_) => {
            events(Event::IcmpNoRoute);
            return None;
        }
    };
    let Some(src) = inbound.or_else(|| fib.addrs.select(key.port, key.ip)) else {
        events(Event::IcmpNoRoute);
        return None;
    };
    // Linux `ip_options_echo`: the offending packet's record route / timestamp, answered.
    let mut echoed = [0u8; 40];
    let mut echo_len = 0;
    if let Some(o) = opts {
        let hl = usize::from(frame[L2_LEN] & 0x0f) * 4;
        let hdr = &frame[L2_LEN..L2_LEN + hl];
        let time = crate::node::ip4_options::now_ms_since_midnight();
        match crate::node::ip4_options::echo(
            hdr,
            o,
            src,
            |a| fib.addrs.is_local(a),
            time,
            &mut echoed,
        ) {
            Some(n) => echo_len = n,
            None => {
                events(Event::IcmpSuppressed);
                return None;
            }
        }
    }
    if limited {
        if !st.xrlim_allow(orig_src, now_ms) {
            events(Event::IcmpRateLimitedHost);
            return None;
        }
        st.credit -= 1;
    }
    let id = st.next_id();
    let len = write_error(
        frame,
        ip_len,
        src,
        orig_src,
        orig_tos,
        id,
        err,
        &echoed[..echo_len],
    );
    if let Some(l2) = l2 {
        frame[..L2_LEN].copy_from_slice(&l2);
    }
    events(err.event);
    Some(Sent {
        key,
        resolved: l2.is_some(),
        len,
    })
}

/// Writes the error datagram in place (see the module doc), with IP options `opts` (a multiple
/// of 4 bytes, at most 40) in its header, and returns the frame length.
///
/// # Panics
///
/// If `frame` is shorter than the error needs (`L2_LEN + 28 + min(ip_len, MAX_QUOTE)`).
#[allow(
    clippy::too_many_arguments,
    reason = "the header fields of the error, named at the one call site"
)]
pub fn write_error(
    frame: &mut [u8],
    ip_len: usize,
    src: u32,
    dst: u32,
    orig_tos: u8,
    id: u16,
    err: IcmpError,
    opts: &[u8],
) -> usize {
    let hl = 20 + opts.len();
    let quote = ip_len.min(MAX_QUOTE - opts.len());
    let icmp_at = L2_LEN + hl;
    let data_at = icmp_at + 8;
    frame.copy_within(L2_LEN..L2_LEN + quote, data_at);
    let total = hl + 8 + quote;
    let h = &mut frame[L2_LEN..icmp_at];
    h[20..].copy_from_slice(opts);
    h[0] = 0x40 | (hl / 4) as u8;
    h[1] = (orig_tos & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL;
    h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[6..8].copy_from_slice(&[0, 0]);
    h[8] = 64;
    h[9] = 1;
    h[10..12].copy_from_slice(&[0, 0]);
    h[12..16].copy_from_slice(&src.to_be_bytes());
    h[16..20].copy_from_slice(&dst.to_be_bytes());
    let c = checksum::checksum(h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    let icmp = &mut frame[icmp_at..data_at + quote];
    icmp[0] = err.ty;
    icmp[1] = err.code;
    icmp[2..4].copy_from_slice(&[0, 0]);
    icmp[4..8].copy_from_slice(&err.info.to_be_bytes());
    let c = checksum::checksum(icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    L2_LEN + total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(cfg: IcmpConfig) -> IcmpState {
        IcmpState::new(cfg, 1, 0)
    }

    #[test]
    fn per_destination_bucket_bursts_six_then_one_per_interval() {
        let mut s = st(IcmpConfig::default());
        let sent = (0..10).filter(|_| s.xrlim_allow(1, 100_000)).count();
        assert_eq!(sent, 6);
        assert!(!s.xrlim_allow(1, 100_500));
        assert!(s.xrlim_allow(1, 101_000));
        // Another destination has its own bucket.
        assert!(s.xrlim_allow(2, 101_000));
    }

    #[test]
    fn route_errors_pay_both_limiters() {
        // ip_error (cost 1 s, burst 5 s) then icmp_ratelimit on the same bucket: 2 at once.
        let mut s = st(IcmpConfig::default());
        let mut sent = 0;
        for _ in 0..10 {
            if s.route_error_allow(9, 50_000) && s.xrlim_allow(9, 50_000) {
                sent += 1;
            }
        }
        assert_eq!(sent, 2);
    }

    #[test]
    fn global_bucket_and_mask() {
        let cfg = IcmpConfig {
            msgs_burst: 3,
            msgs_per_sec: 100,
            ..IcmpConfig::default()
        };
        let mut s = st(cfg);
        let mut ok = 0;
        for _ in 0..10 {
            if s.global_allow(5000) {
                s.credit -= 1;
                ok += 1;
            }
        }
        // 3 of the burst, then one refill (the stamp was 0: a second's worth, capped at 3).
        assert_eq!(ok, 6);
        assert!(s.exempt(DEST_UNREACH, FRAG_NEEDED));
        assert!(!s.exempt(TIME_EXCEEDED, 0));
        assert!(s.exempt(0, 0), "echo reply is not in the default mask");
    }

    #[test]
    fn ratelimit_zero_never_limits() {
        let mut s = st(IcmpConfig {
            ratelimit_ms: 0,
            ..IcmpConfig::default()
        });
        assert!((0..100).all(|_| s.xrlim_allow(1, 10)));
    }

    #[test]
    fn write_error_layout_and_checksums() {
        let mut frame = vec![0u8; FRAME_ROOM];
        let orig: Vec<u8> = (0..100u8).collect();
        frame[L2_LEN..L2_LEN + 100].copy_from_slice(&orig);
        frame[L2_LEN + 1] = 0xb9; // tos: EF + ECN 01
        let orig_hdr = frame[L2_LEN..L2_LEN + 100].to_vec();
        let len = write_error(
            &mut frame,
            100,
            0x0a00_0101,
            0x0a00_0102,
            0xb9,
            7,
            IcmpError::frag_needed(1400),
            &[],
        );
        assert_eq!(len, L2_LEN + 128);
        let ip = &frame[L2_LEN..len];
        assert_eq!(checksum::sum(&ip[..20]), 0xffff);
        assert_eq!(checksum::sum(&ip[20..]), 0xffff);
        assert_eq!(ip[1], 0xb8 & 0x1e | 0xc0);
        assert_eq!(ip[8], 64);
        assert_eq!(&ip[6..8], &[0, 0], "DF clear");
        assert_eq!(&ip[20..22], &[3, 4]);
        assert_eq!(u16::from_be_bytes([ip[26], ip[27]]), 1400);
        assert_eq!(&ip[28..], &orig_hdr[..]);
    }

    #[test]
    fn quote_is_capped_at_576_total() {
        let mut frame = vec![0u8; 2048];
        let len = write_error(&mut frame, 1500, 1, 2, 0, 0, IcmpError::TTL, &[]);
        assert_eq!(len - L2_LEN, MAX_ERROR_LEN);
    }
}

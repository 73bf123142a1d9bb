//! The cases: one crafted packet (or a few) each, sent by h1 towards the router's `p0`.
//!
//! Each case names the rule of issue 3 it exercises and what the Linux kernel does with it
//! ([`Expect`]), which the suite checks against the kernel-forwarding run first: a case whose
//! Linux outcome is not what the table says is a broken harness or a changed kernel, not a pass.
//!
//! To add a case: append a [`Case`] to [`CASES`]; build frames with [`Ctx::frame`] (it stamps the
//! case's IP identification, which is how captured frames are attributed to their case).

use std::net::Ipv4Addr;

use anyhow::Result;
use xfwd_testbed::packet::{IPPROTO_ICMP, IPPROTO_UDP};
use xfwd_testbed::{End, Ipv4Frame, Malform};

use super::observe::Listen;

/// h1's address.
pub const H1: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
/// The router's address on p0 (towards h1).
pub const P0: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
/// The router's address on p1 (towards h2).
pub const P1: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
/// h2's address (connected to the router's p1).
pub const H2: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// Behind h2, routed via the gateway h2 (198.18.0.0/24 via 10.0.2.2).
pub const VIA_GW: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 5);
/// Behind h2 through a route with `mtu 1000` (198.18.1.0/24 via 10.0.2.2 mtu 1000).
pub const VIA_MTU1000: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 5);
/// `blackhole 203.0.113.0/26`.
pub const BLACKHOLE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
/// `unreachable 203.0.113.64/26`.
pub const UNREACHABLE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 70);
/// `prohibit 203.0.113.128/26`.
pub const PROHIBIT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 130);
/// No route at all (the router has no default route).
pub const NO_ROUTE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// `198.51.100.0/24 via 10.0.2.99`, a next hop that never answers ARP.
pub const UNRESOLVED: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 5);
/// `198.51.100.128/25 via 10.0.2.3`, a next hop h2 answers ARP for (10.0.2.3 is h2's second
/// address) but that nobody resolved before the case.
pub const RESOLVES_LATE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 130);
/// A source address behind h2: the route back to it leaves through p1, not p0.
pub const SRC_BEHIND_H2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 9);

/// p1's device MTU (smaller than the 1500 of every other end).
pub const P1_MTU: u16 = 1280;

/// What the Linux kernel does with a case, checked against the kernel run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// `n` frames reach h2, nothing comes back.
    Forward(usize),
    /// One ICMP error (type, code) comes back to h1, nothing reaches h2.
    Icmp(u8, u8),
    /// `n` ICMP errors (type, code) come back to h1, nothing reaches h2.
    Icmps(u8, u8, usize),
    /// One ICMP error (type, code) reaches h2 (the route back to the spoofed sender leads
    /// there), nothing reaches h1.
    IcmpAtH2(u8, u8),
    /// Nothing reaches h2, nothing comes back.
    Silent,
}

/// The source address case `i` sends from: 10.0.1.100 + i, in h1's subnet, resolved by the
/// router to h1's MAC, so each case's ICMP errors reach h1 addressed to a destination no other
/// case used (per-destination ICMP rate limits never carry over from one case to the next).
pub fn case_src(i: usize) -> Ipv4Addr {
    assert!(i < 150, "case sources run out at 150 cases");
    Ipv4Addr::new(10, 0, 1, 100 + i as u8)
}

/// What a case's builder gets.
pub struct Ctx {
    /// The IP identification every frame of the case carries.
    pub id: u16,
    /// The source address of the case (see [`case_src`]).
    pub src: Ipv4Addr,
}

impl Expect {
    /// How many frames (at h1 and h2 together) the outcome is.
    pub fn frames(self) -> usize {
        match self {
            Expect::Forward(n) | Expect::Icmps(_, _, n) => n,
            Expect::Icmp(..) | Expect::IcmpAtH2(..) => 1,
            Expect::Silent => 0,
        }
    }
}

impl Ctx {
    /// Headers from h1 (source address [`Ctx::src`]) to `dst` through the router (dst MAC p0),
    /// TTL 64, ID [`Ctx::id`].
    pub fn frame(&self, dst: Ipv4Addr) -> Ipv4Frame {
        let mut f = Ipv4Frame::new(End::H1.mac(), End::P0.mac(), self.src, dst);
        f.identification = self.id;
        f
    }

    /// A UDP datagram with `n` payload bytes (a pattern that differs per byte).
    pub fn udp(&self, f: &Ipv4Frame, n: usize) -> Result<Vec<u8>> {
        let payload: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
        f.udp(40000 + self.id % 1000, 9, &payload)
    }
}

/// One case.
pub struct Case {
    /// Unique name, used by `KNOWN_GAPS`, `ALLOWED` and the `DIFF_CASE` filter.
    pub name: &'static str,
    /// The rule of issue 3 it exercises.
    pub rule: &'static str,
    /// What Linux does.
    pub expect: Expect,
    /// How long to listen for the outcome.
    pub listen: Listen,
    /// The frames h1 sends.
    pub build: fn(&Ctx) -> Result<Vec<Vec<u8>>>,
    /// Router sysctls set for this case only (restored after it), e.g. to turn ICMP rate
    /// limiting back on.
    pub router_sysctls: &'static [(&'static str, &'static str)],
    /// The same setting for xfwd: `xfwd run` flags (`(flag, value)`, value `""` for a switch)
    /// on top of `XFWD_BASE_ARGS`. Cases with the same flags run together on one xfwd; a flag
    /// this xfwd does not know is left out (and reported), so the case shows up as a gap.
    pub xfwd_args: &'static [(&'static str, &'static str)],
}

const fn case(
    name: &'static str,
    rule: &'static str,
    expect: Expect,
    build: fn(&Ctx) -> Result<Vec<Vec<u8>>>,
) -> Case {
    Case {
        name,
        rule,
        expect,
        listen: Listen::DEFAULT,
        build,
        router_sysctls: &[],
        xfwd_args: &[],
    }
}

fn one(f: Result<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
    Ok(vec![f?])
}

fn malformed(c: &Ctx, m: Malform) -> Result<Vec<Vec<u8>>> {
    let mut f = c.udp(&c.frame(H2), 32)?;
    m.apply(&mut f)?;
    Ok(vec![f])
}

fn with_opts(c: &Ctx, dst: Ipv4Addr, opts: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut f = c.frame(dst);
    f.options = opts.to_vec();
    one(c.udp(&f, 32))
}

fn from(c: &Ctx, src: Ipv4Addr) -> Result<Vec<Vec<u8>>> {
    let mut f = c.frame(H2);
    f.src = src;
    one(c.udp(&f, 32))
}

fn to(c: &Ctx, dst: Ipv4Addr) -> Result<Vec<Vec<u8>>> {
    one(c.udp(&c.frame(dst), 32))
}

fn ttl(c: &Ctx, ttl: u8) -> Result<Vec<Vec<u8>>> {
    let mut f = c.frame(H2);
    f.ttl = ttl;
    one(c.udp(&f, 32))
}

/// An ICMP Destination Unreachable (port) that h2 supposedly sent about a datagram, from h1.
fn icmp_error(c: &Ctx, dst: Ipv4Addr, ttl: u8) -> Result<Vec<Vec<u8>>> {
    let mut quoted = Ipv4Frame::new(End::H1.mac(), End::P0.mac(), dst, H1);
    quoted.identification = 0x7777;
    let q = quoted.udp(9, 40000, &[0; 8])?;
    let q = &q[14..];
    let mut msg = vec![3, 3, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(q);
    let sum = icmp_sum(&msg);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut f = c.frame(dst);
    f.ttl = ttl;
    one(f.raw(IPPROTO_ICMP, &msg))
}

fn icmp_sum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// A fragment of a UDP datagram: `len` bytes of IP payload at 8-byte `offset`, MF as given.
fn fragment(c: &Ctx, dst: Ipv4Addr, offset: u16, mf: bool, len: usize, ttl: u8) -> Result<Vec<u8>> {
    let mut f = c.frame(dst);
    f.fragment_offset = offset;
    f.more_fragments = mf;
    f.ttl = ttl;
    if offset == 0 {
        c.udp(&f, len - 8)
    } else {
        let body: Vec<u8> = (0..len).map(|i| (i * 5 + 1) as u8).collect();
        f.raw(IPPROTO_UDP, &body)
    }
}

/// The cases, in the order they run.
pub const CASES: &[Case] = &[
    // ---- ICMP rate limiting.
    Case {
        name: "icmp_rate_limit",
        rule: "ICMP errors rate-limited per destination (icmp_ratelimit 1000 ms, burst 6)",
        expect: Expect::Icmps(11, 0, 6),
        listen: Listen::DEFAULT,
        build: |c| {
            let mut f = c.frame(H2);
            f.ttl = 1;
            (0..10).map(|_| c.udp(&f, 32)).collect()
        },
        router_sysctls: &[
            ("net.ipv4.icmp_ratemask", "6168"),
            ("net.ipv4.icmp_ratelimit", "1000"),
        ],
        xfwd_args: &[("--icmp-ratemask", "0x1818"), ("--icmp-ratelimit", "1000")],
    },
    // ---- Route types.
    case(
        "fwd_connected",
        "route: connected (next hop = destination)",
        Expect::Forward(1),
        |c| to(c, H2),
    ),
    case(
        "fwd_via_gateway",
        "route: unicast via gateway (next hop = h2)",
        Expect::Forward(1),
        |c| to(c, VIA_GW),
    ),
    case(
        "fwd_icmp_echo",
        "route: unicast, ICMP echo",
        Expect::Forward(1),
        |c| {
            one(c
                .frame(VIA_GW)
                .icmp_echo_request(0x1234, 1, b"differential"))
        },
    ),
    case(
        "fwd_tos_ecn_kept",
        "forwarding keeps DSCP/ECN",
        Expect::Forward(1),
        |c| {
            let mut f = c.frame(H2);
            f.tos = 0xb9;
            one(c.udp(&f, 32))
        },
    ),
    case(
        "fwd_df_small",
        "DF set, fits the MTU",
        Expect::Forward(1),
        |c| {
            let mut f = c.frame(H2);
            f.dont_fragment = true;
            one(c.udp(&f, 100))
        },
    ),
    case(
        "route_blackhole",
        "route: blackhole (silent)",
        Expect::Silent,
        |c| to(c, BLACKHOLE),
    ),
    case(
        "route_unreachable",
        "route: unreachable -> ICMP host unreachable",
        Expect::Icmp(3, 1),
        |c| to(c, UNREACHABLE),
    ),
    case(
        "route_prohibit",
        "route: prohibit -> ICMP admin prohibited",
        Expect::Icmp(3, 13),
        |c| to(c, PROHIBIT),
    ),
    case(
        "route_none",
        "no route -> ICMP net unreachable",
        Expect::Icmp(3, 0),
        |c| to(c, NO_ROUTE),
    ),
    // ---- TTL.
    case(
        "ttl_0",
        "TTL 0 -> time exceeded",
        Expect::Icmp(11, 0),
        |c| ttl(c, 0),
    ),
    case(
        "ttl_1",
        "TTL 1 -> time exceeded",
        Expect::Icmp(11, 0),
        |c| ttl(c, 1),
    ),
    case(
        "ttl_2",
        "TTL 2 -> forwarded with TTL 1",
        Expect::Forward(1),
        |c| ttl(c, 2),
    ),
    case(
        "ttl_255",
        "TTL 255 -> forwarded with TTL 254",
        Expect::Forward(1),
        |c| ttl(c, 255),
    ),
    case(
        "ttl_1_icmp_echo",
        "TTL 1 ICMP echo (not an error) -> time exceeded",
        Expect::Icmp(11, 0),
        |c| {
            let mut f = c.frame(VIA_GW);
            f.ttl = 1;
            one(f.icmp_echo_request(0x1234, 2, b"ttl"))
        },
    ),
    case(
        "ttl_1_no_route",
        "TTL 1 and no route: route checked first",
        Expect::Icmp(3, 0),
        |c| {
            let mut f = c.frame(NO_ROUTE);
            f.ttl = 1;
            one(c.udp(&f, 32))
        },
    ),
    // ---- MTU and fragmentation.
    case(
        "mtu_exact",
        "exactly the egress MTU with DF -> forwarded",
        Expect::Forward(1),
        |c| {
            let mut f = c.frame(H2);
            f.dont_fragment = true;
            one(c.udp(&f, usize::from(P1_MTU) - 28))
        },
    ),
    case(
        "mtu_df_too_big",
        "DF, larger than the egress device MTU -> frag needed",
        Expect::Icmp(3, 4),
        |c| {
            let mut f = c.frame(H2);
            f.dont_fragment = true;
            one(c.udp(&f, 1400))
        },
    ),
    case(
        "mtu_df_route_mtu",
        "DF, larger than the route's mtu metric -> frag needed",
        Expect::Icmp(3, 4),
        |c| {
            let mut f = c.frame(VIA_MTU1000);
            f.dont_fragment = true;
            one(c.udp(&f, 1100))
        },
    ),
    case(
        "mtu_frag",
        "DF clear, too big -> fragmented (ip_fragment)",
        Expect::Forward(2),
        |c| one(c.udp(&c.frame(H2), 1400)),
    ),
    case(
        "mtu_frag_route_mtu",
        "DF clear, above the route mtu -> fragmented",
        Expect::Forward(2),
        |c| one(c.udp(&c.frame(VIA_MTU1000), 1400)),
    ),
    case(
        "mtu_frag_of_first_fragment",
        "a first fragment (MF) too big -> refragmented, MF on all",
        Expect::Forward(2),
        |c| Ok(vec![fragment(c, H2, 0, true, 1400, 64)?]),
    ),
    case(
        "mtu_frag_of_last_fragment",
        "a last fragment at offset 100 too big -> refragmented, offsets shifted",
        Expect::Forward(2),
        |c| Ok(vec![fragment(c, H2, 100, false, 1400, 64)?]),
    ),
    case(
        "mtu_frag_with_options",
        "fragmenting with options: only copied options repeat (RFC 791)",
        Expect::Forward(2),
        |c| {
            let mut f = c.frame(H2);
            // Record route (not copied) then Router Alert (copied).
            f.options = vec![7, 7, 4, 0, 0, 0, 0, 1, 0x94, 4, 0, 0];
            one(c.udp(&f, 1400))
        },
    ),
    case(
        "frag_small_forwarded",
        "a small non-first fragment is forwarded as is",
        Expect::Forward(1),
        |c| Ok(vec![fragment(c, H2, 50, true, 64, 64)?]),
    ),
    // ---- Header validation (RFC 1812 §5.2.2, ip_rcv_core).
    case(
        "hdr_bad_checksum",
        "5.2.2 check 2: header checksum",
        Expect::Silent,
        |c| malformed(c, Malform::BadHeaderChecksum),
    ),
    case(
        "hdr_version_6",
        "5.2.2 check 3: version",
        Expect::Silent,
        |c| malformed(c, Malform::Version(6)),
    ),
    case(
        "hdr_ihl_4",
        "5.2.2 check 4: IHL below 5",
        Expect::Silent,
        |c| malformed(c, Malform::Ihl(4)),
    ),
    case(
        "hdr_ihl_past_packet",
        "5.2.2 check 4: IHL beyond the packet",
        Expect::Silent,
        |c| {
            let mut f = c.udp(&c.frame(H2), 0)?;
            Malform::Ihl(15).apply(&mut f)?;
            Ok(vec![f])
        },
    ),
    case(
        "hdr_total_len_below_header",
        "5.2.2 check 5: total length < header",
        Expect::Silent,
        |c| malformed(c, Malform::TotalLength(19)),
    ),
    case(
        "hdr_total_len_past_frame",
        "total length > frame",
        Expect::Silent,
        |c| malformed(c, Malform::TotalLength(200)),
    ),
    case(
        "hdr_truncated_header",
        "5.2.2 check 1: frame shorter than 20-byte header",
        Expect::Silent,
        |c| malformed(c, Malform::Truncate(14 + 12)),
    ),
    case(
        "hdr_padding_trimmed",
        "padding after total length is trimmed",
        Expect::Forward(1),
        |c| {
            let mut f = c.udp(&c.frame(H2), 32)?;
            f.extend_from_slice(&[0xee; 30]);
            Ok(vec![f])
        },
    ),
    case(
        "hdr_min_frame_padded",
        "a 42-byte frame padded to 60 is trimmed",
        Expect::Forward(1),
        |c| {
            let mut f = c.udp(&c.frame(H2), 0)?;
            f.resize(60, 0);
            Ok(vec![f])
        },
    ),
    // ---- Link layer (eth_type_trans, ip_forward's pkt_type check).
    case(
        "l2_otherhost",
        "destination MAC not ours (PACKET_OTHERHOST)",
        Expect::Silent,
        |c| {
            let mut f = c.frame(H2);
            f.dst_mac = [0x02, 0, 0, 0, 0x09, 0x09];
            one(c.udp(&f, 32))
        },
    ),
    case(
        "l2_broadcast_unicast_ip",
        "L2 broadcast carrying unicast IP",
        Expect::Silent,
        |c| {
            let mut f = c.frame(H2);
            f.dst_mac = [0xff; 6];
            one(c.udp(&f, 32))
        },
    ),
    case(
        "l2_multicast_unicast_ip",
        "L2 multicast carrying unicast IP",
        Expect::Silent,
        |c| {
            let mut f = c.frame(H2);
            f.dst_mac = [0x01, 0x00, 0x5e, 0, 0, 0x01];
            one(c.udp(&f, 32))
        },
    ),
    case(
        "l2_broadcast_ttl_1",
        "L2 broadcast, TTL 1: no ICMP either",
        Expect::Silent,
        |c| {
            let mut f = c.frame(H2);
            f.dst_mac = [0xff; 6];
            f.ttl = 1;
            one(c.udp(&f, 32))
        },
    ),
    // ---- Martian sources.
    case(
        "src_zero_net",
        "martian source 0/8 (RFC 1812 5.3.7; Linux forwards)",
        Expect::Forward(1),
        |c| from(c, Ipv4Addr::new(0, 0, 0, 5)),
    ),
    case(
        "src_unspecified",
        "martian source 0.0.0.0",
        Expect::Silent,
        |c| from(c, Ipv4Addr::UNSPECIFIED),
    ),
    case(
        "src_loopback",
        "martian source 127/8",
        Expect::Silent,
        |c| from(c, Ipv4Addr::new(127, 0, 0, 1)),
    ),
    case(
        "src_limited_broadcast",
        "martian source 255.255.255.255",
        Expect::Silent,
        |c| from(c, Ipv4Addr::BROADCAST),
    ),
    case(
        "src_multicast",
        "martian source 224/4",
        Expect::Silent,
        |c| from(c, Ipv4Addr::new(224, 0, 0, 5)),
    ),
    case(
        "src_class_e",
        "martian source 240/4 (class E; Linux forwards)",
        Expect::Forward(1),
        |c| from(c, Ipv4Addr::new(240, 0, 0, 1)),
    ),
    case(
        "src_own_address_p0",
        "source is the router's own address (ingress)",
        Expect::Silent,
        |c| from(c, P0),
    ),
    case(
        "src_own_address_p1",
        "source is the router's own address (other iface)",
        Expect::Silent,
        |c| from(c, P1),
    ),
    case(
        "src_link_local",
        "martian source 169.254/16 (RFC 3927; Linux forwards)",
        Expect::Forward(1),
        |c| from(c, Ipv4Addr::new(169, 254, 1, 1)),
    ),
    case(
        "src_directed_broadcast",
        "source is a connected subnet's broadcast (Linux forwards)",
        Expect::Forward(1),
        |c| from(c, Ipv4Addr::new(10, 0, 2, 255)),
    ),
    // ---- Martian / special destinations.
    case(
        "dst_zero_net",
        "martian destination 0/8: no route",
        Expect::Icmp(3, 0),
        |c| to(c, Ipv4Addr::new(0, 0, 0, 1)),
    ),
    case(
        "dst_loopback",
        "martian destination 127/8",
        Expect::Silent,
        |c| to(c, Ipv4Addr::new(127, 0, 0, 1)),
    ),
    case(
        "dst_limited_broadcast",
        "limited broadcast is never forwarded",
        Expect::Silent,
        |c| {
            let mut f = c.frame(Ipv4Addr::BROADCAST);
            f.dst_mac = [0xff; 6];
            one(c.udp(&f, 32))
        },
    ),
    case(
        "dst_directed_broadcast",
        "directed broadcast to a connected subnet: not forwarded",
        Expect::Silent,
        |c| to(c, Ipv4Addr::new(10, 0, 2, 255)),
    ),
    case(
        "dst_multicast",
        "multicast destination (no multicast routing)",
        Expect::Silent,
        |c| {
            let mut f = c.frame(Ipv4Addr::new(239, 1, 2, 3));
            f.dst_mac = [0x01, 0x00, 0x5e, 0x01, 0x02, 0x03];
            one(c.udp(&f, 32))
        },
    ),
    case(
        "dst_class_e",
        "destination 240/4: no route",
        Expect::Icmp(3, 0),
        |c| to(c, Ipv4Addr::new(240, 0, 0, 1)),
    ),
    case(
        "dst_link_local",
        "destination 169.254/16: no route",
        Expect::Icmp(3, 0),
        |c| to(c, Ipv4Addr::new(169, 254, 1, 1)),
    ),
    // ---- IP options.
    case(
        "opt_nop_eol",
        "options NOP NOP NOP EOL forwarded",
        Expect::Forward(1),
        |c| with_opts(c, H2, &[1, 1, 1, 0]),
    ),
    case(
        "opt_record_route",
        "record route: router's address recorded",
        Expect::Forward(1),
        |c| with_opts(c, H2, &[7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    ),
    case(
        "opt_record_route_full",
        "record route with no room left: unchanged",
        Expect::Forward(1),
        |c| with_opts(c, H2, &[7, 7, 8, 10, 9, 9, 9, 0]),
    ),
    case(
        "opt_timestamp",
        "timestamp (ts only): router's time recorded",
        Expect::Forward(1),
        |c| with_opts(c, H2, &[68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    ),
    case(
        "opt_timestamp_overflow",
        "timestamp with no room: overflow counter bumped",
        Expect::Forward(1),
        |c| with_opts(c, H2, &[68, 8, 9, 0, 0, 0, 0, 1]),
    ),
    case(
        "opt_router_alert",
        "router alert forwarded",
        Expect::Forward(1),
        |c| with_opts(c, H2, &[0x94, 4, 0, 0]),
    ),
    case(
        "opt_unknown",
        "unknown option forwarded unchanged",
        Expect::Forward(1),
        |c| with_opts(c, H2, &[0x9e, 4, 0xab, 0xcd]),
    ),
    case(
        "opt_bad_length",
        "option length past the header -> parameter problem",
        Expect::Icmp(12, 0),
        |c| with_opts(c, H2, &[7, 40, 4, 0]),
    ),
    case(
        "opt_zero_length",
        "option length 0 -> parameter problem",
        Expect::Icmp(12, 0),
        |c| with_opts(c, H2, &[0x9e, 0, 0, 0]),
    ),
    case(
        "opt_lsrr",
        "loose source route (accept_source_route off)",
        Expect::Silent,
        |c| {
            let g = VIA_GW.octets();
            with_opts(c, H2, &[131, 7, 4, g[0], g[1], g[2], g[3], 0])
        },
    ),
    case(
        "opt_ssrr",
        "strict source route (accept_source_route off)",
        Expect::Silent,
        |c| {
            let g = VIA_GW.octets();
            with_opts(c, H2, &[137, 7, 4, g[0], g[1], g[2], g[3], 0])
        },
    ),
    // ---- ICMP error suppression (RFC 1812 §4.3.2.7).
    case(
        "icmp_err_in_ttl_1",
        "no ICMP about an ICMP error (TTL 1)",
        Expect::Silent,
        |c| icmp_error(c, H2, 1),
    ),
    case(
        "icmp_err_in_no_route",
        "no ICMP about an ICMP error (no route)",
        Expect::Silent,
        |c| icmp_error(c, NO_ROUTE, 64),
    ),
    case(
        "icmp_err_forwarded",
        "an ICMP error is forwarded like any packet",
        Expect::Forward(1),
        |c| icmp_error(c, H2, 64),
    ),
    case(
        "frag_nonfirst_ttl_1",
        "no ICMP about a non-first fragment (TTL 1)",
        Expect::Silent,
        |c| Ok(vec![fragment(c, H2, 50, true, 64, 1)?]),
    ),
    case(
        "frag_first_ttl_1",
        "a first fragment does get time exceeded",
        Expect::Icmp(11, 0),
        |c| Ok(vec![fragment(c, H2, 0, true, 64, 1)?]),
    ),
    case(
        "frag_nonfirst_no_route",
        "no ICMP about a non-first fragment (no route)",
        Expect::Silent,
        |c| Ok(vec![fragment(c, NO_ROUTE, 50, true, 64, 64)?]),
    ),
    case(
        "frag_nonfirst_df_too_big",
        "no Fragmentation Needed about a non-first fragment",
        Expect::Silent,
        |c| {
            let mut f = c.frame(H2);
            f.fragment_offset = 100;
            f.more_fragments = true;
            f.dont_fragment = true;
            one(f.raw(IPPROTO_UDP, &[0x5a; 1400]))
        },
    ),
    case(
        "icmp_err_in_df_too_big",
        "no Fragmentation Needed about an ICMP error",
        Expect::Silent,
        |c| {
            let mut frames = icmp_error(c, H2, 64)?;
            // Re-craft with DF and a padded quote so that it exceeds p1's MTU.
            let mut quoted = Ipv4Frame::new(End::H1.mac(), End::P0.mac(), H2, H1);
            quoted.identification = 0x7777;
            let q = quoted.udp(9, 40000, &[0; 1400])?;
            let mut msg = vec![3, 3, 0, 0, 0, 0, 0, 0];
            msg.extend_from_slice(&q[14..]);
            let sum = icmp_sum(&msg);
            msg[2..4].copy_from_slice(&sum.to_be_bytes());
            let mut f = c.frame(H2);
            f.dont_fragment = true;
            frames[0] = f.raw(IPPROTO_ICMP, &msg)?;
            Ok(frames)
        },
    ),
    case(
        "icmp_echo_df_too_big",
        "an ICMP echo (not an error) does get Fragmentation Needed",
        Expect::Icmp(3, 4),
        |c| {
            let mut f = c.frame(H2);
            f.dont_fragment = true;
            one(f.icmp_echo_request(0x4321, 1, &[0x11; 1400]))
        },
    ),
    case(
        "ttl_1_df_too_big",
        "TTL checked before the MTU: time exceeded",
        Expect::Icmp(11, 0),
        |c| {
            let mut f = c.frame(H2);
            f.dont_fragment = true;
            f.ttl = 1;
            one(c.udp(&f, 1400))
        },
    ),
    case(
        "icmp_src_other_iface",
        "ICMP error to a sender routed out of another interface: source chosen by the route back",
        Expect::IcmpAtH2(11, 0),
        |c| {
            let mut f = c.frame(H2);
            f.src = Ipv4Addr::new(198, 18, 0, 7);
            f.ttl = 1;
            one(c.udp(&f, 32))
        },
    ),
    case(
        "dst_router_address",
        "destination is the router's own address: local delivery, not forwarded",
        Expect::Icmp(3, 3),
        |c| to(c, P1),
    ),
    // ---- Reverse-path filtering (fib_validate_source): off by default, as in a fresh netns.
    case(
        "rp_filter_off_asymmetric",
        "rp_filter off (default): a source routed via another interface is forwarded",
        Expect::Forward(1),
        |c| from(c, SRC_BEHIND_H2),
    ),
    Case {
        name: "rp_filter_strict",
        rule: "rp_filter=1 (strict): the route back to the source must leave where it came in",
        expect: Expect::Silent,
        listen: Listen::DEFAULT,
        build: |c| from(c, SRC_BEHIND_H2),
        router_sysctls: &[("net.ipv4.conf.all.rp_filter", "1")],
        xfwd_args: &[("--rp-filter", "strict")],
    },
    Case {
        name: "rp_filter_strict_ok",
        rule: "rp_filter=1 (strict): a source routed back via the ingress passes",
        expect: Expect::Forward(1),
        listen: Listen::DEFAULT,
        build: |c| to(c, H2),
        router_sysctls: &[("net.ipv4.conf.all.rp_filter", "1")],
        xfwd_args: &[("--rp-filter", "strict")],
    },
    Case {
        name: "rp_filter_loose_ok",
        rule: "rp_filter=2 (loose): any route back to the source will do",
        expect: Expect::Forward(1),
        listen: Listen::DEFAULT,
        build: |c| from(c, SRC_BEHIND_H2),
        router_sysctls: &[("net.ipv4.conf.all.rp_filter", "2")],
        xfwd_args: &[("--rp-filter", "loose")],
    },
    Case {
        name: "rp_filter_loose_no_route",
        rule: "rp_filter=2 (loose): a source with no route back is dropped",
        expect: Expect::Silent,
        listen: Listen::DEFAULT,
        build: |c| from(c, Ipv4Addr::new(192, 0, 2, 77)),
        router_sysctls: &[("net.ipv4.conf.all.rp_filter", "2")],
        xfwd_args: &[("--rp-filter", "loose")],
    },
    case(
        "src_loopback_ttl_1",
        "no ICMP to an invalid source (RFC 1812 4.3.2.7): martian source with TTL 1",
        Expect::Silent,
        |c| {
            let mut f = c.frame(H2);
            f.src = Ipv4Addr::new(127, 0, 0, 1);
            f.ttl = 1;
            one(c.udp(&f, 32))
        },
    ),
    Case {
        name: "unresolved_then_resolves",
        rule: "a next hop resolved on demand: the packet waits for ARP, then leaves",
        expect: Expect::Forward(1),
        listen: Listen {
            min: std::time::Duration::from_millis(300),
            ..Listen::DEFAULT
        },
        build: |c| to(c, RESOLVES_LATE),
        router_sysctls: &[],
        xfwd_args: &[],
    },
    // ---- More edges: quoting, local delivery, option parsing, odd fragments.
    case(
        "ttl_1_large_quote",
        "ICMP quotes as much of the packet as fits in 576 bytes",
        Expect::Icmp(11, 0),
        |c| {
            let mut f = c.frame(H2);
            f.ttl = 1;
            one(c.udp(&f, 1000))
        },
    ),
    case(
        "ttl_1_with_record_route",
        "ICMP quotes the header with its options as received",
        Expect::Icmp(11, 0),
        |c| {
            let mut f = c.frame(H2);
            f.ttl = 1;
            f.options = vec![7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            one(c.udp(&f, 32))
        },
    ),
    Case {
        name: "icmp_src_inbound_ifaddr",
        rule: "icmp_errors_use_inbound_ifaddr: ICMP source is the ingress interface's address",
        expect: Expect::IcmpAtH2(11, 0),
        listen: Listen::DEFAULT,
        build: |c| {
            let mut f = c.frame(H2);
            f.src = SRC_BEHIND_H2;
            f.ttl = 1;
            one(c.udp(&f, 32))
        },
        router_sysctls: &[("net.ipv4.icmp_errors_use_inbound_ifaddr", "1")],
        xfwd_args: &[("--icmp-errors-use-inbound-ifaddr", "")],
    },
    case(
        "dst_router_address_ttl_1",
        "TTL 1 to the router itself: delivered locally, no time exceeded",
        Expect::Icmp(3, 3),
        |c| {
            let mut f = c.frame(P0);
            f.ttl = 1;
            one(c.udp(&f, 32))
        },
    ),
    case(
        "dst_directed_broadcast_ttl_1",
        "TTL 1 to a directed broadcast: no ICMP about a broadcast",
        Expect::Silent,
        |c| {
            let mut f = c.frame(Ipv4Addr::new(10, 0, 2, 255));
            f.ttl = 1;
            one(c.udp(&f, 32))
        },
    ),
    case(
        "opt_eol_then_garbage",
        "option parsing stops at EOL: bytes after it are not options",
        Expect::Forward(1),
        |c| with_opts(c, H2, &[1, 0, 0xff, 0xff]),
    ),
    case(
        "opt_40_bytes_nop",
        "the largest header: 40 bytes of NOP options",
        Expect::Forward(1),
        |c| with_opts(c, H2, &[1; 40]),
    ),
    case(
        "proto_unknown",
        "an unknown transport protocol (253) is forwarded as is",
        Expect::Forward(1),
        |c| one(c.frame(H2).raw(253, b"experimental payload")),
    ),
    case(
        "frag_offset_overflow",
        "a fragment reaching past 65535 bytes (offset 8191)",
        Expect::Forward(1),
        |c| Ok(vec![fragment(c, H2, 8191, false, 64, 64)?]),
    ),
    // ---- Unresolved next hop (runs last: it waits for ARP to fail).
    Case {
        name: "unresolved_next_hop",
        rule: "next hop never answers ARP -> ICMP host unreachable",
        expect: Expect::Icmp(3, 1),
        listen: super::observe::Listen {
            min: std::time::Duration::from_millis(1500),
            quiet: std::time::Duration::from_millis(300),
            quiet_waiting: std::time::Duration::from_millis(600),
            max: std::time::Duration::from_secs(5),
        },
        build: |c| to(c, UNRESOLVED),
        router_sysctls: &[],
        xfwd_args: &[],
    },
];

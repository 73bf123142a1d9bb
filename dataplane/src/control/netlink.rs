//! The rtnetlink client of the control thread: dumps, then follows, the kernel's links, IPv4
//! addresses, nexthop objects, IPv4 routes and IPv4 neighbours (the FD.io VPP linux-cp model:
//! the kernel of xfwd's network namespace is the control plane).
//!
//! Wire format: `include/uapi/linux/netlink.h` (framing, `NLMSG_ERROR`, dump flags),
//! `rtnetlink.h` (`rtmsg`, `rtnexthop`, `RTA_*`, `RTNLGRP_*`), `if_link.h` (`ifinfomsg`,
//! `IFLA_*`), `if_addr.h` (`ifaddrmsg`, `IFA_*`), `neighbour.h` (`ndmsg`, `NDA_*`, `NUD_*`,
//! `NTF_*`) and `nexthop.h` (`nhmsg`, `NHA_*`, `struct nexthop_grp`). The kernel side that fills
//! these messages is `net/core/rtnetlink.c`, `net/ipv4/devinet.c`, `net/ipv4/fib_semantics.c`
//! (`fib_dump_info`), `net/ipv4/nexthop.c` (`nh_fill_node`) and `net/core/neighbour.c`.
//!
//! # Decoding
//!
//! Messages are decoded by hand into owned plain data ([`Link`], [`Addr`], [`Route`],
//! [`NexthopObject`], [`Neigh`]) on top of `netlink-packet-core`'s checked framing
//! ([`NetlinkBuffer`], [`NlasIterator`]). `netlink-packet-route` 0.34 is not used for decoding:
//! it has no `RTM_*NEXTHOP` messages at all, and it decodes every attribute eagerly, so one
//! mis-sized attribute we do not even read (a statistics block of a newer kernel, a link kind's
//! `IFLA_INFO_DATA`) would fail the whole message. It remains the independent encoder the unit
//! tests check this decoder against.
//!
//! Unknown message types, unknown attributes and other address families are ignored on purpose:
//! the kernel adds attributes every release and a mirror must keep working. Known attributes
//! with the wrong size, and truncated headers, are a [`DecodeError`], never a panic.
//!
//! # Two sockets
//!
//! [`Netlink`] holds an *event* socket subscribed to `RTNLGRP_LINK`, `RTNLGRP_IPV4_IFADDR`,
//! `RTNLGRP_IPV4_ROUTE`, `RTNLGRP_NEIGH` and `RTNLGRP_NEXTHOP`, and a separate *request* socket
//! for dumps and requests. With one socket a dump's multi-part reply and multicast events
//! interleave in the same queue, so a reader must buffer events while it dumps, and a full-table
//! dump (~1 M routes) would compete with the events for one receive buffer, so an event burst
//! during a dump could overrun it. With two, the event socket is subscribed *before* the dump
//! starts and simply queues what happens meanwhile; the caller applies those events after the
//! dump (every event is a full-state upsert or delete, so replaying a suffix of history over a
//! snapshot converges), and a dump reply can never be lost to an event burst.
//!
//! # Kernel behaviours this module relies on (measured on 6.18, see `mirror.rs` for the rest)
//!
//! - Routes through a nexthop object carry `RTA_NH_ID`; with `net.ipv4.nexthop_compat_mode=1`
//!   (the default) the kernel *also* expands the object into `RTA_GATEWAY`/`RTA_MULTIPATH`, and
//!   re-sends `RTM_NEWROUTE` for every route using an object when the object is replaced; with
//!   `0` it does neither. The decoder therefore drops the expansion: a [`Route`] with
//!   [`Route::nh_id`] has empty [`Route::nexthops`] and resolves through the object, which is
//!   authoritative in both modes.
//! - An `RTM_NEWROUTE` notification's `nlmsg_flags` say where the kernel put the route among
//!   aliases of the same key (`NLM_F_REPLACE` / `NLM_F_APPEND` / neither: prepend; see
//!   `fib_table_insert`); [`RoutePlacement`] carries it.
//! - `RTM_NEWNEIGH` with `NTF_USE` makes the kernel run `neigh_event_send` on the entry
//!   (creating it with `NLM_F_CREATE`): ARP requests go out and the outcome is notified
//!   (`NUD_REACHABLE`, or `NUD_FAILED` after `mcast_solicit` × `retrans_time`, 3 s by default).
//!   The transitions into `NUD_INCOMPLETE` and `NUD_DELAY` are *not* notified. See
//!   [`Netlink::resolve_neigh`].
//! - A multicast listener that falls behind gets `ENOBUFS` from `recvmsg` once, and the lost
//!   notifications are gone: [`KernelEvent::Overrun`].

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use netlink_packet_core::{NLA_TYPE_MASK, NetlinkBuffer, NlasIterator};
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};

/// Constants from the uAPI headers named in the module documentation.
mod uapi {
    // include/uapi/linux/netlink.h
    pub const NLMSG_HDRLEN: usize = 16;
    pub const NLMSG_NOOP: u16 = 1;
    pub const NLMSG_ERROR: u16 = 2;
    pub const NLMSG_DONE: u16 = 3;
    pub const NLMSG_OVERRUN: u16 = 4;
    pub const NLM_F_REQUEST: u16 = 0x01;
    pub const NLM_F_MULTI: u16 = 0x02;
    pub const NLM_F_ACK: u16 = 0x04;
    pub const NLM_F_DUMP_INTR: u16 = 0x10;
    pub const NLM_F_DUMP: u16 = 0x100 | 0x200; // NLM_F_ROOT | NLM_F_MATCH
    pub const NLM_F_REPLACE: u16 = 0x100;
    pub const NLM_F_CREATE: u16 = 0x400;
    pub const NLM_F_APPEND: u16 = 0x800;
    pub const NLM_F_ACK_TLVS: u16 = 0x200; // on NLMSG_ERROR: extended-ack attributes follow
    pub const NLM_F_CAPPED: u16 = 0x100; // on NLMSG_ERROR: request payload not echoed
    pub const NLMSGERR_ATTR_MSG: u16 = 1;

    // include/uapi/linux/rtnetlink.h: message types and multicast groups.
    pub const RTM_NEWLINK: u16 = 16;
    pub const RTM_DELLINK: u16 = 17;
    pub const RTM_GETLINK: u16 = 18;
    pub const RTM_NEWADDR: u16 = 20;
    pub const RTM_DELADDR: u16 = 21;
    pub const RTM_GETADDR: u16 = 22;
    pub const RTM_NEWROUTE: u16 = 24;
    pub const RTM_DELROUTE: u16 = 25;
    pub const RTM_GETROUTE: u16 = 26;
    pub const RTM_NEWNEIGH: u16 = 28;
    pub const RTM_DELNEIGH: u16 = 29;
    pub const RTM_GETNEIGH: u16 = 30;
    pub const RTM_NEWNEXTHOP: u16 = 104;
    pub const RTM_DELNEXTHOP: u16 = 105;
    pub const RTM_GETNEXTHOP: u16 = 106;
    pub const RTNLGRP_LINK: u32 = 1;
    pub const RTNLGRP_NEIGH: u32 = 3;
    pub const RTNLGRP_IPV4_IFADDR: u32 = 5;
    pub const RTNLGRP_IPV4_ROUTE: u32 = 7;
    pub const RTNLGRP_NEXTHOP: u32 = 32;

    // Address families (include/linux/socket.h).
    pub const AF_UNSPEC: u8 = 0;
    pub const AF_INET: u8 = 2;
    pub const AF_INET6: u8 = 10;

    // struct rtmsg and its attributes.
    pub const RTM_HDRLEN: usize = 12;
    pub const RTA_DST: u16 = 1;
    pub const RTA_OIF: u16 = 4;
    pub const RTA_GATEWAY: u16 = 5;
    pub const RTA_PRIORITY: u16 = 6;
    pub const RTA_PREFSRC: u16 = 7;
    pub const RTA_METRICS: u16 = 8;
    pub const RTA_MULTIPATH: u16 = 9;
    pub const RTA_TABLE: u16 = 15;
    pub const RTA_VIA: u16 = 18;
    pub const RTA_ENCAP_TYPE: u16 = 21;
    pub const RTA_NH_ID: u16 = 30;
    pub const RTAX_MTU: u16 = 2;
    pub const RTNH_HDRLEN: usize = 8;
    pub const RTNH_F_DEAD: u8 = 1;
    pub const RTNH_F_ONLINK: u8 = 4;
    pub const RTNH_F_LINKDOWN: u8 = 16;

    // struct ifinfomsg and its attributes (include/uapi/linux/if_link.h, if.h).
    pub const IFINFO_HDRLEN: usize = 16;
    pub const IFLA_ADDRESS: u16 = 1;
    pub const IFLA_IFNAME: u16 = 3;
    pub const IFLA_MTU: u16 = 4;
    pub const IFLA_MASTER: u16 = 10;
    pub const IFLA_LINKINFO: u16 = 18;
    pub const IFLA_EXT_MASK: u16 = 29;
    pub const IFLA_INFO_KIND: u16 = 1;
    pub const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
    pub const IFF_UP: u32 = 0x1;
    pub const IFF_RUNNING: u32 = 0x40;
    pub const IFF_LOWER_UP: u32 = 0x1_0000;

    // struct ifaddrmsg and its attributes (include/uapi/linux/if_addr.h).
    pub const IFADDR_HDRLEN: usize = 8;
    pub const IFA_ADDRESS: u16 = 1;
    pub const IFA_LOCAL: u16 = 2;
    pub const IFA_BROADCAST: u16 = 4;
    pub const IFA_FLAGS: u16 = 8;

    // struct ndmsg and its attributes (include/uapi/linux/neighbour.h).
    pub const ND_HDRLEN: usize = 12;
    pub const NDA_DST: u16 = 1;
    pub const NDA_LLADDR: u16 = 2;
    pub const NDA_FLAGS_EXT: u16 = 15;
    pub const NTF_USE: u8 = 1 << 0;
    pub const NTF_EXT_MANAGED: u32 = 1 << 0;

    // struct nhmsg and its attributes (include/uapi/linux/nexthop.h).
    pub const NH_HDRLEN: usize = 8;
    pub const NHA_ID: u16 = 1;
    pub const NHA_GROUP: u16 = 2;
    pub const NHA_GROUP_TYPE: u16 = 3;
    pub const NHA_BLACKHOLE: u16 = 4;
    pub const NHA_OIF: u16 = 5;
    pub const NHA_GATEWAY: u16 = 6;
    pub const NHA_ENCAP_TYPE: u16 = 7;
    pub const NHA_FDB: u16 = 11;
    pub const NEXTHOP_GRP_TYPE_RES: u16 = 1;
    pub const NEXTHOP_GRP_LEN: usize = 8; // struct nexthop_grp
}

// ---------------------------------------------------------------------------------------------
// Owned, plain-data views of the kernel's objects.
// ---------------------------------------------------------------------------------------------

/// A network interface (`RTM_NEWLINK`, `struct ifinfomsg` + `IFLA_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// `ifi_index`.
    pub ifindex: u32,
    /// `IFLA_IFNAME` (non-UTF-8 bytes, which Linux allows, are replaced by U+FFFD).
    pub name: String,
    /// `IFLA_ADDRESS` when it is 6 bytes (Ethernet; loopback reports six zero bytes); `None`
    /// when absent or of another length (IP tunnels report 4 or 16 bytes).
    pub mac: Option<[u8; 6]>,
    /// `IFLA_MTU`.
    pub mtu: u32,
    /// `IFF_UP`: administratively up.
    pub admin_up: bool,
    /// `IFF_RUNNING | IFF_LOWER_UP`: the test the IPv4 FIB itself uses for carrier
    /// (`fib_sync_up`, `nh_netdev_event`); false whenever the link is administratively down.
    pub oper_up: bool,
    /// `IFLA_INFO_KIND` (`"veth"`, `"bridge"`, ...), `None` for physical devices and loopback.
    pub kind: Option<String>,
    /// `ifi_flags`, raw (`IFF_*`), for the flags the fields above do not name.
    pub flags: u32,
    /// `IFLA_MASTER`: the bridge or bond this link is enslaved to.
    pub master: Option<u32>,
}

/// An IPv4 address on a link (`RTM_NEWADDR`, `struct ifaddrmsg` + `IFA_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addr {
    /// `ifa_index`.
    pub ifindex: u32,
    /// `IFA_LOCAL`, else `IFA_ADDRESS`: the router's own address.
    pub local: Ipv4Addr,
    /// `ifa_prefixlen`.
    pub prefix_len: u8,
    /// `IFA_BROADCAST`, when the address was configured with one.
    pub broadcast: Option<Ipv4Addr>,
    /// The point-to-point peer: `IFA_ADDRESS` when it differs from `IFA_LOCAL`.
    pub peer: Option<Ipv4Addr>,
    /// `IFA_FLAGS` (32-bit) or else `ifa_flags` (`IFA_F_SECONDARY`, `IFA_F_NOPREFIXROUTE`, ...).
    pub flags: u32,
    /// `ifa_scope` (`RT_SCOPE_UNIVERSE` 0, `RT_SCOPE_LINK` 253, `RT_SCOPE_HOST` 254).
    pub scope: u8,
}

/// `rtm_type`: what a route does with a matching packet (`RTN_*` in `rtnetlink.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKind {
    /// `RTN_UNICAST`: forward via gateway or direct.
    Unicast,
    /// `RTN_LOCAL`: accept locally (table local).
    Local,
    /// `RTN_BROADCAST`: accept locally as broadcast, send as broadcast.
    Broadcast,
    /// `RTN_ANYCAST`: accept locally as broadcast, send as unicast.
    Anycast,
    /// `RTN_MULTICAST`: multicast route.
    Multicast,
    /// `RTN_BLACKHOLE`: drop silently.
    Blackhole,
    /// `RTN_UNREACHABLE`: drop, ICMP host unreachable.
    Unreachable,
    /// `RTN_PROHIBIT`: drop, ICMP communication administratively prohibited.
    Prohibit,
    /// `RTN_THROW`: continue the lookup in the next policy-routing table.
    Throw,
    /// `RTN_NAT`: obsolete stateless NAT.
    Nat,
    /// Any other `rtm_type` (`RTN_UNSPEC`, `RTN_XRESOLVE`, future types), kept, not dropped.
    Other(u8),
}

impl RouteKind {
    /// Maps `rtm_type`.
    pub fn from_rtm_type(t: u8) -> Self {
        match t {
            1 => Self::Unicast,
            2 => Self::Local,
            3 => Self::Broadcast,
            4 => Self::Anycast,
            5 => Self::Multicast,
            6 => Self::Blackhole,
            7 => Self::Unreachable,
            8 => Self::Prohibit,
            9 => Self::Throw,
            10 => Self::Nat,
            other => Self::Other(other),
        }
    }

    /// The `rtm_type` value.
    pub fn rtm_type(self) -> u8 {
        match self {
            Self::Unicast => 1,
            Self::Local => 2,
            Self::Broadcast => 3,
            Self::Anycast => 4,
            Self::Multicast => 5,
            Self::Blackhole => 6,
            Self::Unreachable => 7,
            Self::Prohibit => 8,
            Self::Throw => 9,
            Self::Nat => 10,
            Self::Other(t) => t,
        }
    }
}

/// One path of a route: the route's own `RTA_GATEWAY`/`RTA_OIF`, or one `struct rtnexthop` of
/// `RTA_MULTIPATH`, or one member of a nexthop object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// IPv4 gateway (`RTA_GATEWAY`, or `RTA_VIA` with `AF_INET`); `None` for a directly
    /// connected destination.
    pub gateway: Option<Ipv4Addr>,
    /// IPv6 gateway of an IPv4 route (RFC 5549 / RFC 8950: `RTA_VIA` with `AF_INET6`, or a
    /// nexthop object with an IPv6 `NHA_GATEWAY`), as FRR installs for BGP unnumbered. The
    /// next hop's MAC then comes from the IPv6 neighbour table, which xfwd does not mirror: the
    /// table builder must treat such a path as one it cannot forward on (hand the packet to the
    /// kernel). At most one of `gateway` and `gateway6` is set.
    pub gateway6: Option<Ipv6Addr>,
    /// Egress interface (`RTA_OIF` / `rtnh_ifindex`); 0 when the kernel gave none.
    pub ifindex: u32,
    /// ECMP weight: `rtnh_hops + 1` (1 for single-path routes), or the group member's weight.
    pub weight: u16,
    /// `RTNH_F_ONLINK`: the gateway is on-link even without a covering connected route.
    pub onlink: bool,
    /// `RTNH_F_DEAD`: the path's device went down (Linux keeps such paths of multipath routes).
    pub dead: bool,
    /// `RTNH_F_LINKDOWN`: the path's device has no carrier.
    pub linkdown: bool,
    /// `RTA_ENCAP_TYPE` (`LWTUNNEL_ENCAP_*`: MPLS, seg6, ...) when the path encapsulates; the
    /// table builder must not forward such a path as plain IPv4.
    pub encap: Option<u16>,
}

/// An IPv4 route (`RTM_NEWROUTE`, `struct rtmsg` + `RTA_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// `RTA_TABLE` (full 32 bits), else `rtm_table`.
    pub table: u32,
    /// `RTA_DST` (0.0.0.0 for a default route, which has none).
    pub dst: Ipv4Addr,
    /// `rtm_dst_len`.
    pub dst_len: u8,
    /// `rtm_tos` (a route with a non-zero TOS matches only packets with that TOS).
    pub tos: u8,
    /// `RTA_PRIORITY`: the metric (lower wins among routes of the same prefix).
    pub priority: u32,
    /// `rtm_type`.
    pub kind: RouteKind,
    /// `rtm_protocol` (`RTPROT_KERNEL` 2, `RTPROT_BOOT` 3, `RTPROT_STATIC` 4, BGP 186, ...).
    pub protocol: u8,
    /// `rtm_scope`.
    pub scope: u8,
    /// `RTA_PREFSRC`.
    pub prefsrc: Option<Ipv4Addr>,
    /// `RTAX_MTU` from `RTA_METRICS` (`ip route ... mtu N`): the forwarding MTU Linux uses for
    /// this route instead of the device's (`ip_dst_mtu_maybe_forward`).
    pub mtu: Option<u32>,
    /// The paths, when the route has its own (empty for `blackhole`/`unreachable`/... routes and
    /// for routes through a nexthop object).
    pub nexthops: Vec<NextHop>,
    /// `RTA_NH_ID`: the route forwards through this nexthop object (`ip route ... nhid N`).
    pub nh_id: Option<u32>,
}

/// A nexthop object (`RTM_NEWNEXTHOP`, `struct nhmsg` + `NHA_*`; `ip nexthop`, kernel ≥ 5.3),
/// either one path or a group of path objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NexthopObject {
    /// `NHA_ID`.
    pub id: u32,
    /// `nh_family`: `AF_INET`, `AF_INET6`, or `AF_UNSPEC` for groups and blackholes.
    pub family: u8,
    /// `NHA_GATEWAY` (IPv4 or IPv6).
    pub gateway: Option<IpAddr>,
    /// `NHA_OIF`; 0 for groups and blackholes.
    pub ifindex: u32,
    /// `NHA_BLACKHOLE`: packets using this object are dropped.
    pub blackhole: bool,
    /// `NHA_FDB`: a VXLAN FDB nexthop, not usable by routes.
    pub fdb: bool,
    /// `NHA_GROUP`: the members as `(id, weight)`, weight 1..=65535 (kernel ≥ 6.12 reports 16
    /// bits, earlier kernels 8).
    pub group: Vec<(u32, u16)>,
    /// `NHA_GROUP_TYPE` is `NEXTHOP_GRP_TYPE_RES` (resilient hashing; bucket-level updates,
    /// `RTM_NEWNEXTHOPBUCKET`, are not mirrored: treat it as a plain weighted group).
    pub resilient: bool,
    /// `nh_flags` (`RTNH_F_ONLINK`, `RTNH_F_LINKDOWN` at creation, ...).
    pub flags: u32,
    /// `nh_protocol`.
    pub protocol: u8,
    /// `nh_scope`.
    pub scope: u8,
    /// `NHA_ENCAP_TYPE` when the path encapsulates.
    pub encap: Option<u16>,
}

impl NexthopObject {
    /// Whether this object is a group of other objects.
    pub fn is_group(&self) -> bool {
        !self.group.is_empty()
    }
}

/// Neighbour (ARP) entry states, the `NUD_*` bits of `ndm_state` (`include/uapi/linux/neighbour.h`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NudState(u16);

impl NudState {
    /// `NUD_NONE`: no state (a freshly created entry).
    pub const NONE: Self = Self(0x00);
    /// `NUD_INCOMPLETE`: resolution in progress, no link-layer address yet.
    pub const INCOMPLETE: Self = Self(0x01);
    /// `NUD_REACHABLE`: confirmed recently.
    pub const REACHABLE: Self = Self(0x02);
    /// `NUD_STALE`: usable, not confirmed recently.
    pub const STALE: Self = Self(0x04);
    /// `NUD_DELAY`: usable, confirmation pending.
    pub const DELAY: Self = Self(0x08);
    /// `NUD_PROBE`: usable, being re-probed.
    pub const PROBE: Self = Self(0x10);
    /// `NUD_FAILED`: resolution failed.
    pub const FAILED: Self = Self(0x20);
    /// `NUD_NOARP`: no resolution needed (point-to-point, multicast).
    pub const NOARP: Self = Self(0x40);
    /// `NUD_PERMANENT`: static entry.
    pub const PERMANENT: Self = Self(0x80);
    /// Linux `NUD_VALID`: the states in which the entry has a usable link-layer address.
    pub const VALID: Self = Self(
        Self::PERMANENT.0
            | Self::NOARP.0
            | Self::REACHABLE.0
            | Self::PROBE.0
            | Self::STALE.0
            | Self::DELAY.0,
    );

    /// From raw `ndm_state` bits (unknown bits kept).
    pub const fn from_bits(bits: u16) -> Self {
        Self(bits)
    }

    /// The raw `ndm_state` bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether any of `other`'s bits are set (for `NONE`, whether no bit is set).
    pub const fn contains(self, other: Self) -> bool {
        if other.0 == 0 {
            self.0 == 0
        } else {
            self.0 & other.0 == other.0
        }
    }

    /// Linux `neigh->nud_state & NUD_VALID`: the entry holds a usable link-layer address.
    pub const fn is_valid(self) -> bool {
        self.0 & Self::VALID.0 != 0
    }

    /// `NUD_FAILED`: resolution failed; Linux answers with ICMP host unreachable.
    pub const fn is_failed(self) -> bool {
        self.0 & Self::FAILED.0 != 0
    }
}

impl fmt::Debug for NudState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(u16, &str); 8] = [
            (0x01, "INCOMPLETE"),
            (0x02, "REACHABLE"),
            (0x04, "STALE"),
            (0x08, "DELAY"),
            (0x10, "PROBE"),
            (0x20, "FAILED"),
            (0x40, "NOARP"),
            (0x80, "PERMANENT"),
        ];
        if self.0 == 0 {
            return f.write_str("NONE");
        }
        let mut first = true;
        for (bit, name) in NAMES {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        let rest = self.0 & !0xff;
        if rest != 0 {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{rest:#x}")?;
        }
        Ok(())
    }
}

/// An IPv4 neighbour (ARP) entry (`RTM_NEWNEIGH`, `struct ndmsg` + `NDA_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neigh {
    /// `ndm_ifindex`.
    pub ifindex: u32,
    /// `NDA_DST`.
    pub ip: Ipv4Addr,
    /// `NDA_LLADDR` when it is 6 bytes (absent while `INCOMPLETE`/`FAILED`).
    pub mac: Option<[u8; 6]>,
    /// `ndm_state`.
    pub state: NudState,
    /// `ndm_flags` (`NTF_ROUTER`, `NTF_EXT_LEARNED`, ...).
    pub flags: u8,
    /// `NDA_FLAGS_EXT` (`NTF_EXT_MANAGED` for managed entries, kernel ≥ 5.16).
    pub ext_flags: u32,
}

/// Where the kernel put a new route among the aliases with the same
/// (table, prefix, TOS, priority) key, read from the notification's `nlmsg_flags`
/// (`fib_table_insert` in `net/ipv4/fib_trie.c`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoutePlacement {
    /// `NLM_F_REPLACE` (`ip route replace`): the first alias of the key was replaced.
    Replace,
    /// `NLM_F_APPEND` (`ip route append`), and every message of a dump (which lists the aliases
    /// in order): after the existing aliases.
    Append,
    /// Neither (`ip route add`, `ip route prepend`): before the existing aliases.
    Prepend,
}

/// One change in the kernel's state, decoded from a notification or a dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelEvent {
    /// `RTM_NEWLINK`: a link appeared or changed.
    NewLink(Link),
    /// `RTM_DELLINK`: the link with this ifindex is gone.
    DelLink(u32),
    /// `RTM_NEWADDR`.
    NewAddr(Addr),
    /// `RTM_DELADDR`.
    DelAddr(Addr),
    /// `RTM_NEWROUTE`, with where it went among aliases of the same key.
    NewRoute(Route, RoutePlacement),
    /// `RTM_DELROUTE`: this exact route alias was removed.
    DelRoute(Route),
    /// `RTM_NEWNEXTHOP`: an object appeared or was replaced.
    NewNexthop(NexthopObject),
    /// `RTM_DELNEXTHOP`: the object with this id is gone.
    DelNexthop(u32),
    /// `RTM_NEWNEIGH`.
    NewNeigh(Neigh),
    /// `RTM_DELNEIGH`.
    DelNeigh(Neigh),
    /// The event socket overflowed (`ENOBUFS`): notifications were lost, so the caller must
    /// resync with a full [`Netlink::dump`].
    Overrun,
}

// ---------------------------------------------------------------------------------------------
// Decoding.
// ---------------------------------------------------------------------------------------------

/// A message that does not follow the uAPI layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// `nlmsg_type` of the offending message.
    pub msg_type: u16,
    /// What was wrong.
    pub reason: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed rtnetlink message type {}: {}",
            self.msg_type, self.reason
        )
    }
}

impl std::error::Error for DecodeError {}

impl From<DecodeError> for io::Error {
    fn from(e: DecodeError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

type Decoded<T> = Result<T, String>;

/// Iterates `(type, value)` over a run of netlink attributes, with the `NLA_F_*` bits masked.
fn attrs(buf: &[u8]) -> impl Iterator<Item = Decoded<(u16, &[u8])>> {
    NlasIterator::new(buf).map(|nla| {
        nla.map(|nla| {
            let kind = nla.kind() & NLA_TYPE_MASK;
            let len = usize::from(nla.length());
            // `new_checked` guarantees 4 <= len <= buffer length.
            let value = nla.into_inner().get(4..len).unwrap_or(&[]);
            (kind, value)
        })
        .map_err(|e| format!("bad attribute: {e}"))
    })
}

fn attr_u32(name: &str, v: &[u8]) -> Decoded<u32> {
    let b: [u8; 4] = v
        .try_into()
        .map_err(|_| format!("{name}: {} bytes, want 4", v.len()))?;
    Ok(u32::from_ne_bytes(b))
}

fn attr_u16(name: &str, v: &[u8]) -> Decoded<u16> {
    let b: [u8; 2] = v
        .try_into()
        .map_err(|_| format!("{name}: {} bytes, want 2", v.len()))?;
    Ok(u16::from_ne_bytes(b))
}

fn attr_ipv4(name: &str, v: &[u8]) -> Decoded<Ipv4Addr> {
    let b: [u8; 4] = v
        .try_into()
        .map_err(|_| format!("{name}: {} bytes, want 4", v.len()))?;
    Ok(Ipv4Addr::from(b))
}

fn attr_ip(name: &str, v: &[u8]) -> Decoded<IpAddr> {
    match v.len() {
        4 => attr_ipv4(name, v).map(IpAddr::V4),
        16 => {
            let b: [u8; 16] = v
                .try_into()
                .map_err(|_| format!("{name}: bad IPv6 address"))?;
            Ok(IpAddr::V6(Ipv6Addr::from(b)))
        }
        n => Err(format!("{name}: {n} bytes, want 4 or 16")),
    }
}

fn mac6(v: &[u8]) -> Option<[u8; 6]> {
    v.try_into().ok()
}

fn attr_string(v: &[u8]) -> String {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// Reads a fixed-size header, failing on a truncated message.
fn header<const N: usize>(payload: &[u8], name: &str) -> Decoded<[u8; N]> {
    payload
        .get(..N)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| format!("{name} header: {} bytes, want {N}", payload.len()))
}

fn ne_u32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(x)
}

fn ne_u16(b: &[u8], at: usize) -> u16 {
    let mut x = [0u8; 2];
    x.copy_from_slice(&b[at..at + 2]);
    u16::from_ne_bytes(x)
}

/// Decodes one rtnetlink message body.
///
/// Returns `Ok(None)` for messages the mirror ignores on purpose: other message types
/// (rules, qdiscs, nexthop buckets, ...), other address families (IPv6 addresses, routes and
/// neighbours; `AF_BRIDGE` link and FDB messages, which describe bridge ports, not links), and
/// cached (`RTM_F_CLONED`) routes.
///
/// # Errors
///
/// [`DecodeError`] when the fixed header is truncated or a known attribute has the wrong size.
pub fn decode_message(
    msg_type: u16,
    nlmsg_flags: u16,
    payload: &[u8],
) -> Result<Option<KernelEvent>, DecodeError> {
    use uapi::*;
    let ev = match msg_type {
        RTM_NEWLINK | RTM_DELLINK => decode_link(payload).map(|l| {
            l.map(|l| {
                if msg_type == RTM_NEWLINK {
                    KernelEvent::NewLink(l)
                } else {
                    KernelEvent::DelLink(l.ifindex)
                }
            })
        }),
        RTM_NEWADDR | RTM_DELADDR => decode_addr(payload).map(|a| {
            a.map(|a| {
                if msg_type == RTM_NEWADDR {
                    KernelEvent::NewAddr(a)
                } else {
                    KernelEvent::DelAddr(a)
                }
            })
        }),
        RTM_NEWROUTE | RTM_DELROUTE => decode_route(payload).map(|r| {
            r.map(|r| {
                if msg_type == RTM_DELROUTE {
                    KernelEvent::DelRoute(r)
                } else {
                    KernelEvent::NewRoute(r, placement(nlmsg_flags))
                }
            })
        }),
        RTM_NEWNEIGH | RTM_DELNEIGH => decode_neigh(payload).map(|n| {
            n.map(|n| {
                if msg_type == RTM_NEWNEIGH {
                    KernelEvent::NewNeigh(n)
                } else {
                    KernelEvent::DelNeigh(n)
                }
            })
        }),
        RTM_NEWNEXTHOP => decode_nexthop(payload).map(|n| Some(KernelEvent::NewNexthop(n))),
        RTM_DELNEXTHOP => decode_nexthop(payload).map(|n| Some(KernelEvent::DelNexthop(n.id))),
        // Everything else on these groups (RTM_NEWNETCONF, RTM_NEWNEXTHOPBUCKET, ...) is not
        // part of the mirror.
        _ => Ok(None),
    };
    ev.map_err(|reason| DecodeError { msg_type, reason })
}

fn placement(nlmsg_flags: u16) -> RoutePlacement {
    use uapi::*;
    if nlmsg_flags & NLM_F_MULTI != 0 {
        // A dump lists a key's aliases in list order.
        RoutePlacement::Append
    } else if nlmsg_flags & NLM_F_REPLACE != 0 {
        RoutePlacement::Replace
    } else if nlmsg_flags & NLM_F_APPEND != 0 {
        RoutePlacement::Append
    } else {
        RoutePlacement::Prepend
    }
}

fn decode_link(p: &[u8]) -> Decoded<Option<Link>> {
    use uapi::*;
    let h: [u8; IFINFO_HDRLEN] = header(p, "ifinfomsg")?;
    // Regular link messages carry AF_UNSPEC; AF_BRIDGE ones describe bridge ports (a DELLINK
    // with AF_BRIDGE means "left the bridge", not "deleted").
    if h[0] != AF_UNSPEC {
        return Ok(None);
    }
    let ifindex = ne_u32(&h, 4);
    let flags = ne_u32(&h, 8);
    let mut link = Link {
        ifindex,
        name: String::new(),
        mac: None,
        mtu: 0,
        admin_up: flags & IFF_UP != 0,
        oper_up: flags & IFF_UP != 0 && flags & (IFF_RUNNING | IFF_LOWER_UP) != 0,
        kind: None,
        flags,
        master: None,
    };
    for a in attrs(&p[IFINFO_HDRLEN..]) {
        let (kind, v) = a?;
        match kind {
            IFLA_IFNAME => link.name = attr_string(v),
            IFLA_ADDRESS => link.mac = mac6(v),
            IFLA_MTU => link.mtu = attr_u32("IFLA_MTU", v)?,
            IFLA_MASTER => link.master = Some(attr_u32("IFLA_MASTER", v)?),
            IFLA_LINKINFO => {
                for a in attrs(v) {
                    let (kind, v) = a?;
                    if kind == IFLA_INFO_KIND {
                        link.kind = Some(attr_string(v));
                    }
                }
            }
            // Statistics, qdisc, XDP, AF_SPEC, ...: not mirrored.
            _ => {}
        }
    }
    Ok(Some(link))
}

fn decode_addr(p: &[u8]) -> Decoded<Option<Addr>> {
    use uapi::*;
    let h: [u8; IFADDR_HDRLEN] = header(p, "ifaddrmsg")?;
    if h[0] != AF_INET {
        return Ok(None);
    }
    let prefix_len = h[1];
    if prefix_len > 32 {
        return Err(format!("ifa_prefixlen {prefix_len} > 32"));
    }
    let (mut local, mut address, mut broadcast, mut flags) = (None, None, None, u32::from(h[2]));
    for a in attrs(&p[IFADDR_HDRLEN..]) {
        let (kind, v) = a?;
        match kind {
            IFA_LOCAL => local = Some(attr_ipv4("IFA_LOCAL", v)?),
            IFA_ADDRESS => address = Some(attr_ipv4("IFA_ADDRESS", v)?),
            IFA_BROADCAST => broadcast = Some(attr_ipv4("IFA_BROADCAST", v)?),
            IFA_FLAGS => flags = attr_u32("IFA_FLAGS", v)?,
            // IFA_LABEL, IFA_CACHEINFO, IFA_PROTO, ...: not mirrored.
            _ => {}
        }
    }
    let local = local
        .or(address)
        .ok_or("IPv4 address without IFA_LOCAL or IFA_ADDRESS")?;
    Ok(Some(Addr {
        ifindex: ne_u32(&h, 4),
        local,
        prefix_len,
        broadcast,
        peer: address.filter(|a| *a != local),
        flags,
        scope: h[3],
    }))
}

fn decode_route(p: &[u8]) -> Decoded<Option<Route>> {
    use uapi::*;
    const RTM_F_CLONED: u32 = 0x200;
    let h: [u8; RTM_HDRLEN] = header(p, "rtmsg")?;
    let rtm_flags = ne_u32(&h, 8);
    if h[0] != AF_INET || rtm_flags & RTM_F_CLONED != 0 {
        return Ok(None);
    }
    let dst_len = h[1];
    if dst_len > 32 {
        return Err(format!("rtm_dst_len {dst_len} > 32"));
    }
    let mut route = Route {
        table: u32::from(h[4]),
        dst: Ipv4Addr::UNSPECIFIED,
        dst_len,
        tos: h[3],
        priority: 0,
        kind: RouteKind::from_rtm_type(h[7]),
        protocol: h[5],
        scope: h[6],
        prefsrc: None,
        mtu: None,
        nexthops: Vec::new(),
        nh_id: None,
    };
    // For a single-path route the path's RTNH_F_* flags are in rtm_flags (fib_dump_info).
    let nh_flags = (rtm_flags & 0xff) as u8;
    let mut single = NextHop {
        gateway: None,
        gateway6: None,
        ifindex: 0,
        weight: 1,
        onlink: nh_flags & RTNH_F_ONLINK != 0,
        dead: nh_flags & RTNH_F_DEAD != 0,
        linkdown: nh_flags & RTNH_F_LINKDOWN != 0,
        encap: None,
    };
    let mut has_single = false;
    for a in attrs(&p[RTM_HDRLEN..]) {
        let (kind, v) = a?;
        match kind {
            RTA_DST => route.dst = attr_ipv4("RTA_DST", v)?,
            RTA_TABLE => route.table = attr_u32("RTA_TABLE", v)?,
            RTA_PRIORITY => route.priority = attr_u32("RTA_PRIORITY", v)?,
            RTA_PREFSRC => route.prefsrc = Some(attr_ipv4("RTA_PREFSRC", v)?),
            RTA_NH_ID => route.nh_id = Some(attr_u32("RTA_NH_ID", v)?),
            RTA_OIF => {
                single.ifindex = attr_u32("RTA_OIF", v)?;
                has_single = true;
            }
            RTA_GATEWAY => {
                single.gateway = Some(attr_ipv4("RTA_GATEWAY", v)?);
                has_single = true;
            }
            RTA_VIA => {
                set_via(&mut single, v)?;
                has_single = true;
            }
            RTA_ENCAP_TYPE => single.encap = Some(attr_u16("RTA_ENCAP_TYPE", v)?),
            RTA_MULTIPATH => route.nexthops = decode_multipath(v)?,
            RTA_METRICS => {
                for a in attrs(v) {
                    let (kind, v) = a?;
                    if kind == RTAX_MTU {
                        route.mtu = Some(attr_u32("RTAX_MTU", v)?);
                    }
                }
            }
            // RTA_FLOW (realms), RTA_CACHEINFO, RTA_PREF, RTA_ENCAP (the encapsulation itself;
            // its type is enough to refuse the path), ...: not mirrored.
            _ => {}
        }
    }
    if route.nh_id.is_some() {
        // nexthop_compat_mode=1 also expands the object here; the object is authoritative in
        // both modes, so the expansion is dropped (see the module documentation).
        route.nexthops.clear();
    } else if route.nexthops.is_empty() && has_single {
        route.nexthops.push(single);
    }
    Ok(Some(route))
}

/// `RTA_VIA`: `struct rtvia { __kernel_sa_family_t rtvia_family; __u8 rtvia_addr[]; }`.
fn set_via(nh: &mut NextHop, v: &[u8]) -> Decoded<()> {
    use uapi::*;
    if v.len() < 2 {
        return Err(format!("RTA_VIA: {} bytes", v.len()));
    }
    let family = ne_u16(v, 0);
    match (u8::try_from(family), &v[2..]) {
        (Ok(AF_INET), a) => nh.gateway = Some(attr_ipv4("RTA_VIA", a)?),
        (Ok(AF_INET6), a) => match attr_ip("RTA_VIA", a)? {
            IpAddr::V6(a) => nh.gateway6 = Some(a),
            IpAddr::V4(_) => return Err("RTA_VIA AF_INET6 with 4 bytes".into()),
        },
        _ => return Err(format!("RTA_VIA with address family {family}")),
    }
    Ok(())
}

/// `RTA_MULTIPATH`: a run of `struct rtnexthop` (8 bytes: len, flags, hops, ifindex), each
/// followed by its own attributes, each aligned to 4 bytes.
fn decode_multipath(mut v: &[u8]) -> Decoded<Vec<NextHop>> {
    use uapi::*;
    let mut out = Vec::new();
    while !v.is_empty() {
        let h: [u8; RTNH_HDRLEN] = header(v, "rtnexthop")?;
        let len = usize::from(ne_u16(&h, 0));
        if len < RTNH_HDRLEN || len > v.len() {
            return Err(format!("rtnh_len {len} with {} bytes left", v.len()));
        }
        let flags = h[2];
        let mut nh = NextHop {
            gateway: None,
            gateway6: None,
            ifindex: ne_u32(&h, 4),
            weight: u16::from(h[3]) + 1,
            onlink: flags & RTNH_F_ONLINK != 0,
            dead: flags & RTNH_F_DEAD != 0,
            linkdown: flags & RTNH_F_LINKDOWN != 0,
            encap: None,
        };
        for a in attrs(&v[RTNH_HDRLEN..len]) {
            let (kind, val) = a?;
            match kind {
                RTA_GATEWAY => nh.gateway = Some(attr_ipv4("RTA_GATEWAY", val)?),
                RTA_VIA => set_via(&mut nh, val)?,
                RTA_ENCAP_TYPE => nh.encap = Some(attr_u16("RTA_ENCAP_TYPE", val)?),
                // RTA_FLOW, RTA_ENCAP: not mirrored.
                _ => {}
            }
        }
        out.push(nh);
        let step = (len + 3) & !3;
        v = v.get(step..).unwrap_or(&[]);
    }
    Ok(out)
}

fn decode_neigh(p: &[u8]) -> Decoded<Option<Neigh>> {
    use uapi::*;
    let h: [u8; ND_HDRLEN] = header(p, "ndmsg")?;
    if h[0] != AF_INET {
        return Ok(None);
    }
    let (mut ip, mut mac, mut ext_flags) = (None, None, 0);
    for a in attrs(&p[ND_HDRLEN..]) {
        let (kind, v) = a?;
        match kind {
            NDA_DST => ip = Some(attr_ipv4("NDA_DST", v)?),
            NDA_LLADDR => mac = mac6(v),
            NDA_FLAGS_EXT => ext_flags = attr_u32("NDA_FLAGS_EXT", v)?,
            // NDA_CACHEINFO, NDA_PROBES, NDA_PROTOCOL, ...: not mirrored.
            _ => {}
        }
    }
    Ok(Some(Neigh {
        ifindex: ne_u32(&h, 4),
        ip: ip.ok_or("IPv4 neighbour without NDA_DST")?,
        mac,
        state: NudState::from_bits(ne_u16(&h, 8)),
        flags: h[10],
        ext_flags,
    }))
}

fn decode_nexthop(p: &[u8]) -> Decoded<NexthopObject> {
    use uapi::*;
    let h: [u8; NH_HDRLEN] = header(p, "nhmsg")?;
    let mut nh = NexthopObject {
        id: 0,
        family: h[0],
        gateway: None,
        ifindex: 0,
        blackhole: false,
        fdb: false,
        group: Vec::new(),
        resilient: false,
        flags: ne_u32(&h, 4),
        protocol: h[2],
        scope: h[1],
        encap: None,
    };
    let mut id = None;
    for a in attrs(&p[NH_HDRLEN..]) {
        let (kind, v) = a?;
        match kind {
            NHA_ID => id = Some(attr_u32("NHA_ID", v)?),
            NHA_GATEWAY => nh.gateway = Some(attr_ip("NHA_GATEWAY", v)?),
            NHA_OIF => nh.ifindex = attr_u32("NHA_OIF", v)?,
            NHA_BLACKHOLE => nh.blackhole = true,
            NHA_FDB => nh.fdb = true,
            NHA_ENCAP_TYPE => nh.encap = Some(attr_u16("NHA_ENCAP_TYPE", v)?),
            NHA_GROUP_TYPE => nh.resilient = attr_u16("NHA_GROUP_TYPE", v)? == NEXTHOP_GRP_TYPE_RES,
            NHA_GROUP => {
                // struct nexthop_grp { __u32 id; __u8 weight; __u8 weight_high; __u16 resvd2; }
                // weight_high was `resvd1` (always 0) before 6.12.
                if v.len() % NEXTHOP_GRP_LEN != 0 {
                    return Err(format!("NHA_GROUP: {} bytes", v.len()));
                }
                for e in v.chunks_exact(NEXTHOP_GRP_LEN) {
                    let w = (u32::from(e[5]) << 8 | u32::from(e[4])) + 1;
                    let w = u16::try_from(w).map_err(|_| format!("NHA_GROUP weight {w}"))?;
                    nh.group.push((ne_u32(e, 0), w));
                }
            }
            // NHA_ENCAP, NHA_RES_GROUP (bucket parameters), NHA_OP_FLAGS, stats: not mirrored.
            _ => {}
        }
    }
    nh.id = id.ok_or("nexthop without NHA_ID")?;
    Ok(nh)
}

// ---------------------------------------------------------------------------------------------
// Requests.
// ---------------------------------------------------------------------------------------------

/// Builds one request message: `nlmsghdr`, the family header, then attributes.
fn build_request(
    msg_type: u16,
    flags: u16,
    seq: u32,
    family_hdr: &[u8],
    attributes: &[(u16, &[u8])],
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(&[0; uapi::NLMSG_HDRLEN]);
    buf.extend_from_slice(family_hdr);
    buf.resize((buf.len() + 3) & !3, 0);
    for (kind, value) in attributes {
        let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
        buf.extend_from_slice(&len.to_ne_bytes());
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(value);
        buf.resize((buf.len() + 3) & !3, 0);
    }
    let total = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    let mut hdr = NetlinkBuffer::new(&mut buf[..]);
    hdr.set_length(total);
    hdr.set_message_type(msg_type);
    hdr.set_flags(flags);
    hdr.set_sequence_number(seq);
    hdr.set_port_number(0);
    buf
}

/// What to dump, in the order [`Netlink::dump`] asks for it: links before the addresses on
/// them, nexthop objects before the routes through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DumpKind {
    Links,
    Addrs,
    Nexthops,
    Routes,
    Neighs,
}

impl DumpKind {
    const ALL: [Self; 5] = [
        Self::Links,
        Self::Addrs,
        Self::Nexthops,
        Self::Routes,
        Self::Neighs,
    ];

    fn request(self, seq: u32) -> Vec<u8> {
        use uapi::*;
        let flags = NLM_F_REQUEST | NLM_F_DUMP;
        match self {
            Self::Links => {
                // ifinfomsg with AF_UNSPEC; skip the per-link statistics blocks (kernel ≥ 4.20;
                // older kernels ignore the unknown bit).
                let mask = RTEXT_FILTER_SKIP_STATS.to_ne_bytes();
                build_request(
                    RTM_GETLINK,
                    flags,
                    seq,
                    &[0; IFINFO_HDRLEN],
                    &[(IFLA_EXT_MASK, &mask)],
                )
            }
            Self::Addrs => build_request(
                RTM_GETADDR,
                flags,
                seq,
                &[AF_INET, 0, 0, 0, 0, 0, 0, 0],
                &[],
            ),
            // nhmsg with AF_UNSPEC: IPv6 objects too, which IPv4 routes may use (RFC 5549).
            Self::Nexthops => build_request(RTM_GETNEXTHOP, flags, seq, &[0; NH_HDRLEN], &[]),
            // rtmsg with AF_INET and no filter: every table (inet_dump_fib).
            Self::Routes => {
                let mut rtm = [0u8; RTM_HDRLEN];
                rtm[0] = AF_INET;
                build_request(RTM_GETROUTE, flags, seq, &rtm, &[])
            }
            Self::Neighs => {
                let mut nd = [0u8; ND_HDRLEN];
                nd[0] = AF_INET;
                build_request(RTM_GETNEIGH, flags, seq, &nd, &[])
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client.
// ---------------------------------------------------------------------------------------------

/// Options for [`Netlink::open_with`].
#[derive(Clone, Debug)]
pub struct NetlinkConfig {
    /// Receive buffer to ask for on the event socket, in bytes (the kernel doubles it for its
    /// bookkeeping and reports the doubled value). Each queued notification costs about one
    /// small skb (~0.5–1 KiB of truesize), so 64 MiB absorbs a burst of roughly 60–100 k route
    /// changes while the control thread is busy.
    pub event_rcvbuf: usize,
    /// Timeout for one `recv` on the request socket, so a dump or request that the kernel never
    /// answers becomes an error instead of a hang.
    pub request_timeout: Duration,
}

impl Default for NetlinkConfig {
    fn default() -> Self {
        Self {
            event_rcvbuf: 64 << 20,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Counters of the event socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetlinkStats {
    /// Messages decoded into events.
    pub events: u64,
    /// Messages ignored on purpose (other families, other types).
    pub ignored: u64,
    /// `ENOBUFS` reports (each is one [`KernelEvent::Overrun`]).
    pub overruns: u64,
    /// Messages that failed to decode, and truncated datagrams (each also reported as
    /// [`KernelEvent::Overrun`], because the mirror can no longer be trusted to be exact).
    pub malformed: u64,
}

/// The receive buffer the event socket actually got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RcvBuf {
    /// Bytes, as `getsockopt(SO_RCVBUF)` reports them (twice what was asked for).
    pub bytes: usize,
    /// Whether `SO_RCVBUFFORCE` worked (it needs `CAP_NET_ADMIN`); if not, the size is capped
    /// by `net.core.rmem_max`.
    pub forced: bool,
}

/// Most datagrams [`Netlink::recv`] reads in one call, so one call stays short and `out` stays
/// bounded; call again while events keep coming.
pub const RECV_BATCH: usize = 4096;

/// How often a dump interrupted by concurrent changes (`NLM_F_DUMP_INTR`) is retried.
const DUMP_INTR_RETRIES: usize = 8;

/// Receive buffer size: the kernel sizes dump datagrams up to 32 KiB from our largest `recv`
/// (`netlink_recvmsg` → `max_recvmsg_len`); 64 KiB leaves room for single large messages.
const RECV_BUF: usize = 64 << 10;

/// The rtnetlink client: an event socket and a request socket (see the module documentation).
///
/// Blocking and single-threaded: it belongs to the control thread. Expose
/// [`Netlink::event_fd`] to a `poll` loop that serves other things too.
#[derive(Debug)]
pub struct Netlink {
    events: Socket,
    requests: Socket,
    seq: u32,
    buf: Vec<u8>,
    rcvbuf: RcvBuf,
    stats: NetlinkStats,
}

fn socket(what: &str) -> io::Result<Socket> {
    let mut s = Socket::new(NETLINK_ROUTE).map_err(|e| ctx(e, &format!("{what} socket")))?;
    s.bind_auto()
        .map_err(|e| ctx(e, &format!("binding the {what} socket")))?;
    Ok(s)
}

fn ctx(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("netlink: {what}: {e}"))
}

impl Netlink {
    /// Opens the event socket (subscribed) and the request socket with
    /// [`NetlinkConfig::default`].
    ///
    /// # Errors
    ///
    /// When a socket cannot be opened, bound or subscribed.
    pub fn open() -> io::Result<Self> {
        Self::open_with(&NetlinkConfig::default())
    }

    /// Opens the event socket (subscribed to links, IPv4 addresses, IPv4 routes, neighbours and
    /// nexthop objects; kernel ≥ 5.3 for the last) and the request socket.
    ///
    /// The event socket is subscribed before this returns, so everything that happens from now
    /// on is queued: call [`Netlink::dump`] next and apply the queued events after it.
    ///
    /// # Errors
    ///
    /// When a socket cannot be opened, bound or subscribed. A receive buffer smaller than asked
    /// for is not an error: see [`Netlink::rcvbuf`] (and the warning logged).
    pub fn open_with(cfg: &NetlinkConfig) -> io::Result<Self> {
        use uapi::*;
        let events = socket("event")?;
        let forced =
            rustix::net::sockopt::set_socket_recv_buffer_size_force(&events, cfg.event_rcvbuf)
                .is_ok();
        if !forced {
            rustix::net::sockopt::set_socket_recv_buffer_size(&events, cfg.event_rcvbuf)
                .map_err(|e| ctx(e.into(), "SO_RCVBUF"))?;
        }
        let bytes = rustix::net::sockopt::socket_recv_buffer_size(&events)
            .map_err(|e| ctx(e.into(), "SO_RCVBUF"))?;
        if !forced {
            tracing::warn!(
                asked = cfg.event_rcvbuf,
                got = bytes,
                "netlink: SO_RCVBUFFORCE refused (no CAP_NET_ADMIN?): event buffer capped by net.core.rmem_max"
            );
        }
        for group in [
            RTNLGRP_LINK,
            RTNLGRP_IPV4_IFADDR,
            RTNLGRP_IPV4_ROUTE,
            RTNLGRP_NEIGH,
            RTNLGRP_NEXTHOP,
        ] {
            events
                .add_membership(group)
                .map_err(|e| ctx(e, &format!("joining rtnetlink group {group}")))?;
        }
        events
            .set_non_blocking(true)
            .map_err(|e| ctx(e, "O_NONBLOCK"))?;

        let requests = socket("request")?;
        // Error messages from the kernel (extended ACK), without the request echoed back.
        requests
            .set_ext_ack(true)
            .map_err(|e| ctx(e, "NETLINK_EXT_ACK"))?;
        requests
            .set_cap_ack(true)
            .map_err(|e| ctx(e, "NETLINK_CAP_ACK"))?;
        rustix::net::sockopt::set_socket_timeout(
            &requests,
            rustix::net::sockopt::Timeout::Recv,
            Some(cfg.request_timeout),
        )
        .map_err(|e| ctx(e.into(), "SO_RCVTIMEO"))?;

        Ok(Self {
            events,
            requests,
            seq: 1,
            buf: vec![0; RECV_BUF],
            rcvbuf: RcvBuf { bytes, forced },
            stats: NetlinkStats::default(),
        })
    }

    /// The event socket, to `poll` for readability alongside other work.
    pub fn event_fd(&self) -> BorrowedFd<'_> {
        self.events.as_fd()
    }

    /// The receive buffer the event socket got.
    pub fn rcvbuf(&self) -> RcvBuf {
        self.rcvbuf
    }

    /// The event socket's counters.
    pub fn stats(&self) -> NetlinkStats {
        self.stats
    }

    /// Dumps the kernel's state: links, IPv4 addresses, nexthop objects, IPv4 routes of every
    /// table, IPv4 neighbours, in that order.
    ///
    /// # Errors
    ///
    /// When the kernel answers a dump with an error, a dump stays inconsistent
    /// (`NLM_F_DUMP_INTR`) after several retries, or a message is malformed
    /// (`ErrorKind::InvalidData`).
    pub fn dump(&mut self) -> io::Result<Vec<KernelEvent>> {
        let mut out = Vec::new();
        for kind in DumpKind::ALL {
            self.dump_kind(kind, &mut out)?;
        }
        Ok(out)
    }

    /// [`Netlink::dump`], handing each event to `f` instead of returning them all (one kind of
    /// object is buffered at a time, so that it can be retried whole on `NLM_F_DUMP_INTR`).
    ///
    /// # Errors
    ///
    /// As [`Netlink::dump`].
    pub fn dump_each(&mut self, mut f: impl FnMut(KernelEvent)) -> io::Result<()> {
        let mut buf = Vec::new();
        for kind in DumpKind::ALL {
            self.dump_kind(kind, &mut buf)?;
            buf.drain(..).for_each(&mut f);
        }
        Ok(())
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Dumps one kind of object, appending to `out`; on `NLM_F_DUMP_INTR` what this kind added
    /// is dropped and the dump asked for again.
    fn dump_kind(&mut self, kind: DumpKind, out: &mut Vec<KernelEvent>) -> io::Result<()> {
        let start = out.len();
        for _ in 0..DUMP_INTR_RETRIES {
            let seq = self.next_seq();
            let req = kind.request(seq);
            self.requests
                .send(&req, 0)
                .map_err(|e| ctx(e, &format!("sending {kind:?} dump request")))?;
            match self.read_reply(seq, out) {
                Ok(Reply::Done { interrupted: false }) => return Ok(()),
                Ok(Reply::Done { interrupted: true }) => {
                    tracing::debug!(
                        ?kind,
                        "netlink: dump interrupted by concurrent changes, retrying"
                    );
                    out.truncate(start);
                }
                Ok(Reply::Ack) => {
                    return Err(io::Error::other(format!(
                        "netlink: {kind:?} dump answered by a bare ACK"
                    )));
                }
                Err(e) if kind == DumpKind::Nexthops && e.kind() == io::ErrorKind::Unsupported => {
                    tracing::warn!(
                        "netlink: kernel without nexthop objects (< 5.3): none mirrored"
                    );
                    out.truncate(start);
                    return Ok(());
                }
                Err(e) => return Err(ctx(e, &format!("{kind:?} dump"))),
            }
        }
        Err(io::Error::other(format!(
            "netlink: {kind:?} dump still inconsistent (NLM_F_DUMP_INTR) after {DUMP_INTR_RETRIES} tries"
        )))
    }

    /// Reads the request socket until the reply to `seq` ends (`NLMSG_DONE`, or `NLMSG_ERROR`
    /// which is an ACK when its code is 0), decoding dump messages into `out`.
    fn read_reply(&mut self, seq: u32, out: &mut Vec<KernelEvent>) -> io::Result<Reply> {
        use uapi::*;
        let mut interrupted = false;
        loop {
            let n = self
                .requests
                .recv(&mut &mut self.buf[..], libc::MSG_TRUNC)?;
            if n > self.buf.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "netlink reply datagram of {n} bytes exceeds the {} byte buffer",
                        self.buf.len()
                    ),
                ));
            }
            let mut rest = &self.buf[..n];
            while !rest.is_empty() {
                let msg = NetlinkBuffer::new_checked(rest).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("netlink framing: {e}"))
                })?;
                let len = (msg.length() as usize + 3) & !3;
                rest = rest.get(len..).unwrap_or(&[]);
                if msg.sequence_number() != seq {
                    // A straggler of an earlier request that ended in an error; not ours.
                    continue;
                }
                interrupted |= msg.flags() & NLM_F_DUMP_INTR != 0;
                match msg.message_type() {
                    NLMSG_NOOP | NLMSG_OVERRUN => {}
                    NLMSG_DONE => {
                        // NLMSG_DONE carries an int: a negative errno if the dump failed late.
                        let code = msg
                            .payload()
                            .get(..4)
                            .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                        if code < 0 {
                            return Err(io::Error::from_raw_os_error(-code));
                        }
                        return Ok(Reply::Done { interrupted });
                    }
                    NLMSG_ERROR => {
                        return nlmsg_error(msg.flags(), msg.payload()).map(|()| Reply::Ack);
                    }
                    t => {
                        if let Some(ev) = decode_message(t, msg.flags(), msg.payload())? {
                            out.push(ev);
                        }
                    }
                }
            }
        }
    }

    /// Waits up to `timeout` for events, then drains what is queued (at most [`RECV_BATCH`]
    /// datagrams) into `out`.
    ///
    /// A lost-notification report (`ENOBUFS`) becomes a [`KernelEvent::Overrun`] in its place in
    /// the stream, and reading goes on; so do malformed messages and truncated datagrams
    /// (counted in [`Netlink::stats`], logged). A zero timeout only drains.
    ///
    /// # Errors
    ///
    /// Only when the socket itself fails (not for `EAGAIN`, `EINTR` or `ENOBUFS`).
    pub fn recv(&mut self, out: &mut Vec<KernelEvent>, timeout: Duration) -> io::Result<()> {
        let mut waited = false;
        for _ in 0..RECV_BATCH {
            match self
                .events
                .recv(&mut &mut self.buf[..], libc::MSG_DONTWAIT | libc::MSG_TRUNC)
            {
                Ok(n) if n > self.buf.len() => {
                    tracing::warn!(
                        bytes = n,
                        "netlink: truncated event datagram, resync needed"
                    );
                    self.stats.malformed += 1;
                    out.push(KernelEvent::Overrun);
                }
                Ok(n) => self.decode_events(n, out),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.stats.overruns += 1;
                    out.push(KernelEvent::Overrun);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if waited || timeout.is_zero() {
                        return Ok(());
                    }
                    if !self.wait_readable(timeout)? {
                        return Ok(());
                    }
                }
                Err(e) => return Err(ctx(e, "receiving events")),
            }
            // Only the first wait may block: after events arrived, drain without waiting.
            waited = true;
        }
        Ok(())
    }

    fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let ts = Timespec::try_from(timeout).unwrap_or(Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        });
        let mut fds = [PollFd::new(&self.events, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(n) => Ok(n > 0),
            Err(rustix::io::Errno::INTR) => Ok(true),
            Err(e) => Err(ctx(e.into(), "poll")),
        }
    }

    fn decode_events(&mut self, n: usize, out: &mut Vec<KernelEvent>) {
        let mut rest = &self.buf[..n];
        while !rest.is_empty() {
            let msg = match NetlinkBuffer::new_checked(rest) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "netlink: bad event framing, resync needed");
                    self.stats.malformed += 1;
                    out.push(KernelEvent::Overrun);
                    return;
                }
            };
            let len = (msg.length() as usize + 3) & !3;
            rest = rest.get(len..).unwrap_or(&[]);
            match msg.message_type() {
                uapi::NLMSG_NOOP | uapi::NLMSG_DONE => {}
                uapi::NLMSG_ERROR | uapi::NLMSG_OVERRUN => {
                    tracing::warn!(
                        kind = msg.message_type(),
                        "netlink: error message on the event socket, resync needed"
                    );
                    self.stats.malformed += 1;
                    out.push(KernelEvent::Overrun);
                }
                t => match decode_message(t, msg.flags(), msg.payload()) {
                    Ok(Some(ev)) => {
                        self.stats.events += 1;
                        out.push(ev);
                    }
                    Ok(None) => self.stats.ignored += 1,
                    Err(e) => {
                        tracing::warn!(error = %e, "netlink: undecodable event, resync needed");
                        self.stats.malformed += 1;
                        out.push(KernelEvent::Overrun);
                    }
                },
            }
        }
    }

    /// Asks the kernel to resolve `ip` on link `ifindex`: `RTM_NEWNEIGH` with `NTF_USE`, as
    /// `ip neigh replace IP dev DEV use` sends, but with `ndm_state = NUD_NONE` where iproute2
    /// sends `NUD_PERMANENT` (which would make a newly created entry exempt from garbage
    /// collection).
    ///
    /// The kernel creates the entry if needed (`NLM_F_CREATE`) and runs `neigh_event_send` on
    /// it (`neigh_add` in `net/core/neighbour.c`). Measured on 6.18 over veth:
    ///
    /// - no entry, or `FAILED`: the entry goes `INCOMPLETE` (not notified) and ARP requests go
    ///   out, `mcast_solicit` (3) of them one `retrans_time` (1 s) apart; the answer arrives as
    ///   a `NewNeigh` in `REACHABLE` with the MAC (~70 µs after the request on veth), silence
    ///   as a `NewNeigh` in `FAILED` after ~3.06 s. Asking again from `FAILED` starts over.
    /// - `STALE`: the entry goes `DELAY` (not notified), then `PROBE` after
    ///   `delay_first_probe_time` (5 s, notified), unicast probes to the cached MAC, and
    ///   `REACHABLE` or `FAILED` (after 3 more seconds).
    ///
    /// Never ask for a `PERMANENT` or `NOARP` entry: `NTF_USE` drops the permanent state and
    /// the MAC (measured: a permanent entry went `INCOMPLETE`, then `FAILED`). On a `STALE`
    /// entry it does what a packet sent through it does in Linux (`neigh_resolve_output`): since
    /// the packets xfwd forwards bypass the kernel, the kernel never sees a stale next hop in
    /// use, so asking here for `STALE` next hops that carry traffic is how they get reconfirmed
    /// instead of garbage-collected.
    ///
    /// # Errors
    ///
    /// The kernel's refusal (for example `ENODEV` for an unknown ifindex), with its extended
    /// ACK message when it gave one.
    pub fn resolve_neigh(&mut self, ifindex: u32, ip: Ipv4Addr) -> io::Result<()> {
        self.neigh_request(ifindex, ip, uapi::NTF_USE, 0)
            .map_err(|e| ctx(e, &format!("resolving {ip} on ifindex {ifindex}")))
    }

    /// Makes `ip` on `ifindex` a *managed* neighbour (`ip neigh replace IP dev DEV managed`,
    /// `NTF_EXT_MANAGED`, kernel ≥ 5.16): the kernel resolves it at once and keeps it resolved
    /// (re-probing before it would go stale, `neigh_managed_work`) with no traffic needed, so a
    /// gateway's MAC is ready before the first packet. Suits the handful of gateways a router
    /// has; the entry stays until deleted (`ip neigh del`).
    ///
    /// # Errors
    ///
    /// The kernel's refusal (`EINVAL` on kernels without managed entries).
    pub fn add_managed_neigh(&mut self, ifindex: u32, ip: Ipv4Addr) -> io::Result<()> {
        self.neigh_request(ifindex, ip, 0, uapi::NTF_EXT_MANAGED)
            .map_err(|e| {
                ctx(
                    e,
                    &format!("adding managed neighbour {ip} on ifindex {ifindex}"),
                )
            })
    }

    fn neigh_request(
        &mut self,
        ifindex: u32,
        ip: Ipv4Addr,
        ndm_flags: u8,
        ext_flags: u32,
    ) -> io::Result<()> {
        use uapi::*;
        let mut nd = [0u8; ND_HDRLEN];
        nd[0] = AF_INET;
        nd[4..8].copy_from_slice(&ifindex.to_ne_bytes());
        // ndm_state NUD_NONE (0), ndm_type 0.
        nd[10] = ndm_flags;
        let dst = ip.octets();
        let ext = ext_flags.to_ne_bytes();
        let mut attributes: Vec<(u16, &[u8])> = vec![(NDA_DST, &dst)];
        if ext_flags != 0 {
            attributes.push((NDA_FLAGS_EXT, &ext));
        }
        let seq = self.next_seq();
        let req = build_request(
            RTM_NEWNEIGH,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
            seq,
            &nd,
            &attributes,
        );
        self.requests.send(&req, 0)?;
        let mut unexpected = Vec::new();
        match self.read_reply(seq, &mut unexpected)? {
            Reply::Ack => Ok(()),
            Reply::Done { .. } => Err(io::Error::other("RTM_NEWNEIGH answered with NLMSG_DONE")),
        }
    }
}

enum Reply {
    Done { interrupted: bool },
    Ack,
}

/// Decodes an `NLMSG_ERROR` payload (`struct nlmsgerr`: `int error`, the request's header,
/// then with `NLM_F_ACK_TLVS` the extended-ACK attributes): `Ok` for an ACK (error 0).
fn nlmsg_error(flags: u16, payload: &[u8]) -> io::Result<()> {
    use uapi::*;
    let Some(code) = payload
        .get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "NLMSG_ERROR shorter than its error code",
        ));
    };
    if code == 0 {
        return Ok(());
    }
    let errno = io::Error::from_raw_os_error(code.saturating_neg());
    // The echoed request: just its header with NLM_F_CAPPED, else the whole message.
    let echoed = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        payload.get(4..4 + 4).map_or(NLMSG_HDRLEN, |b| {
            u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
    };
    let tlvs = payload.get(4 + ((echoed + 3) & !3)..).unwrap_or(&[]);
    if flags & NLM_F_ACK_TLVS != 0 {
        for (kind, v) in attrs(tlvs).flatten() {
            if kind == NLMSGERR_ATTR_MSG {
                return Err(io::Error::new(
                    errno.kind(),
                    format!("{errno}: {}", attr_string(v)),
                ));
            }
        }
    }
    Err(errno)
}

#[cfg(test)]
mod tests {
    use super::uapi::*;
    use super::*;
    use netlink_packet_core::Emitable;
    use netlink_packet_route::AddressFamily;
    use netlink_packet_route::address::{AddressAttribute, AddressHeader, AddressMessage};
    use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
    use netlink_packet_route::neighbour::{
        NeighbourAddress, NeighbourAttribute, NeighbourExtFlags, NeighbourMessage, NeighbourState,
    };
    use netlink_packet_route::route::{
        RouteAddress, RouteAttribute, RouteMessage, RouteMetric, RouteNextHop, RouteNextHopFlags,
        RouteProtocol, RouteScope, RouteType, RouteVia,
    };
    use proptest::prelude::*;

    /// Encodes a message body with `netlink-packet-route`, the independent encoder.
    fn emit(m: &impl Emitable) -> Vec<u8> {
        let mut buf = vec![0xa5; m.buffer_len()];
        m.emit(&mut buf);
        buf
    }

    fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&u16::try_from(4 + value.len()).unwrap().to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(value);
        v.resize((v.len() + 3) & !3, 0);
        v
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn route_msg(attributes: Vec<RouteAttribute>) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = 24;
        m.header.table = 254;
        m.header.protocol = RouteProtocol::Static;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes = attributes;
        m
    }

    fn rtnh(
        flags: RouteNextHopFlags,
        hops: u8,
        ifindex: u32,
        attributes: Vec<RouteAttribute>,
    ) -> RouteNextHop {
        let mut nh = RouteNextHop::default();
        (nh.flags, nh.hops, nh.interface_index, nh.attributes) = (flags, hops, ifindex, attributes);
        nh
    }

    fn decode_route_body(body: &[u8], flags: u16) -> KernelEvent {
        decode_message(RTM_NEWROUTE, flags, body).unwrap().unwrap()
    }

    #[test]
    fn single_path_route_with_every_field() {
        let m = route_msg(vec![
            RouteAttribute::Destination(RouteAddress::Inet(ip("192.0.2.0"))),
            RouteAttribute::Gateway(RouteAddress::Inet(ip("10.0.0.2"))),
            RouteAttribute::Oif(3),
            RouteAttribute::Priority(20),
            RouteAttribute::PrefSource(RouteAddress::Inet(ip("10.0.0.1"))),
            RouteAttribute::Table(1000),
            RouteAttribute::Metrics(vec![RouteMetric::Mtu(1300), RouteMetric::Advmss(1200)]),
            RouteAttribute::Mark(7),
        ]);
        let KernelEvent::NewRoute(r, placement) = decode_route_body(&emit(&m), NLM_F_REPLACE)
        else {
            panic!()
        };
        assert_eq!(placement, RoutePlacement::Replace);
        assert_eq!(
            r,
            Route {
                table: 1000,
                dst: ip("192.0.2.0"),
                dst_len: 24,
                tos: 0,
                priority: 20,
                kind: RouteKind::Unicast,
                protocol: 4,
                scope: 0,
                prefsrc: Some(ip("10.0.0.1")),
                mtu: Some(1300),
                nexthops: vec![NextHop {
                    gateway: Some(ip("10.0.0.2")),
                    gateway6: None,
                    ifindex: 3,
                    weight: 1,
                    onlink: false,
                    dead: false,
                    linkdown: false,
                    encap: None,
                }],
                nh_id: None,
            }
        );
    }

    #[test]
    fn multipath_route_with_flags_weights_and_an_ipv6_via() {
        let v6: Ipv6Addr = "fe80::1".parse().unwrap();
        let m = route_msg(vec![
            RouteAttribute::Destination(RouteAddress::Inet(ip("198.51.100.0"))),
            RouteAttribute::MultiPath(vec![
                rtnh(
                    RouteNextHopFlags::Onlink
                        | RouteNextHopFlags::Dead
                        | RouteNextHopFlags::Linkdown,
                    2,
                    3,
                    vec![RouteAttribute::Gateway(RouteAddress::Inet(ip("10.0.0.2")))],
                ),
                rtnh(
                    RouteNextHopFlags::empty(),
                    0,
                    4,
                    vec![RouteAttribute::Via(RouteVia::Inet6(v6))],
                ),
                rtnh(
                    RouteNextHopFlags::empty(),
                    255,
                    5,
                    vec![RouteAttribute::Via(RouteVia::Inet(ip("10.2.0.2")))],
                ),
            ]),
        ]);
        let KernelEvent::NewRoute(r, placement) = decode_route_body(&emit(&m), 0) else {
            panic!()
        };
        assert_eq!(placement, RoutePlacement::Prepend);
        let got: Vec<_> = r
            .nexthops
            .iter()
            .map(|n| {
                (
                    n.gateway, n.gateway6, n.ifindex, n.weight, n.onlink, n.dead, n.linkdown,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (Some(ip("10.0.0.2")), None, 3, 3, true, true, true),
                (None, Some(v6), 4, 1, false, false, false),
                (Some(ip("10.2.0.2")), None, 5, 256, false, false, false),
            ]
        );
    }

    #[test]
    fn route_through_an_object_drops_the_compat_expansion() {
        let m = route_msg(vec![
            RouteAttribute::NhId(10),
            RouteAttribute::Gateway(RouteAddress::Inet(ip("10.0.0.2"))),
            RouteAttribute::Oif(3),
        ]);
        let KernelEvent::NewRoute(r, _) = decode_route_body(&emit(&m), NLM_F_MULTI) else {
            panic!()
        };
        assert_eq!(
            (r.nh_id, r.nexthops.len(), r.dst),
            (Some(10), 0, Ipv4Addr::UNSPECIFIED)
        );
    }

    #[test]
    fn single_path_flags_come_from_rtm_flags_and_error_routes_have_no_path() {
        let mut m = route_msg(vec![RouteAttribute::Oif(2)]);
        let mut body = emit(&m);
        body[8] = RTNH_F_DEAD | RTNH_F_LINKDOWN | RTNH_F_ONLINK;
        let KernelEvent::NewRoute(r, _) = decode_route_body(&body, 0) else {
            panic!()
        };
        assert_eq!(
            (
                r.nexthops[0].dead,
                r.nexthops[0].linkdown,
                r.nexthops[0].onlink
            ),
            (true, true, true)
        );
        m.header.kind = RouteType::Unreachable;
        m.attributes.clear();
        let KernelEvent::NewRoute(r, _) = decode_route_body(&emit(&m), 0) else {
            panic!()
        };
        assert_eq!((r.kind, r.nexthops.len()), (RouteKind::Unreachable, 0));
        assert_eq!(RouteKind::from_rtm_type(11), RouteKind::Other(11));
        for t in 0..=255u8 {
            assert_eq!(RouteKind::from_rtm_type(t).rtm_type(), t);
        }
    }

    #[test]
    fn other_families_and_cloned_routes_are_ignored() {
        let mut m = route_msg(vec![]);
        m.header.address_family = AddressFamily::Inet6;
        assert_eq!(decode_message(RTM_NEWROUTE, 0, &emit(&m)), Ok(None));
        let mut body = emit(&route_msg(vec![]));
        body[9] |= 0x02; // RTM_F_CLONED (0x200) in the second byte of rtm_flags
        assert_eq!(decode_message(RTM_NEWROUTE, 0, &body), Ok(None));
        let mut link = LinkMessage::default();
        link.header.interface_family = AddressFamily::Bridge;
        link.header.index = 4;
        assert_eq!(
            decode_message(RTM_DELLINK, 0, &emit(&link)),
            Ok(None),
            "AF_BRIDGE DELLINK is not a deletion"
        );
        assert_eq!(decode_message(RTM_NEWNEIGH + 200, 0, &[]), Ok(None));
    }

    #[test]
    fn link_fields() {
        let mut m = LinkMessage::default();
        m.header.index = 7;
        m.header.flags =
            LinkFlags::Up | LinkFlags::Running | LinkFlags::LowerUp | LinkFlags::Broadcast;
        m.attributes = vec![
            LinkAttribute::IfName("eth0".into()),
            LinkAttribute::Address(vec![2, 0, 0, 0, 0, 7]),
            LinkAttribute::Mtu(9000),
            LinkAttribute::Controller(3),
            LinkAttribute::TxQueueLen(1000),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
        ];
        let ev = decode_message(RTM_NEWLINK, 0, &emit(&m)).unwrap().unwrap();
        let KernelEvent::NewLink(l) = ev else {
            panic!()
        };
        assert_eq!(
            (
                l.ifindex,
                l.name.as_str(),
                l.mac,
                l.mtu,
                l.admin_up,
                l.oper_up,
                l.kind.as_deref(),
                l.master
            ),
            (
                7,
                "eth0",
                Some([2, 0, 0, 0, 0, 7]),
                9000,
                true,
                true,
                Some("veth"),
                Some(3)
            )
        );
        m.header.flags = LinkFlags::Running; // not IFF_UP: never oper up
        m.attributes = vec![LinkAttribute::Address(vec![10, 0, 0, 1])];
        let KernelEvent::NewLink(l) = decode_message(RTM_NEWLINK, 0, &emit(&m)).unwrap().unwrap()
        else {
            panic!()
        };
        assert_eq!((l.admin_up, l.oper_up, l.mac), (false, false, None));
        assert_eq!(
            decode_message(RTM_DELLINK, 0, &emit(&m)),
            Ok(Some(KernelEvent::DelLink(7)))
        );
    }

    #[test]
    fn addresses_with_peer_and_broadcast() {
        let mut m = AddressMessage::default();
        m.header = AddressHeader {
            family: AddressFamily::Inet,
            prefix_len: 30,
            index: 5,
            ..AddressHeader::default()
        };
        m.attributes = vec![
            AddressAttribute::Address(IpAddr::V4(ip("10.9.0.2"))),
            AddressAttribute::Local(IpAddr::V4(ip("10.9.0.1"))),
            AddressAttribute::Broadcast(ip("10.9.0.3")),
            AddressAttribute::Label("eth5".into()),
        ];
        let KernelEvent::NewAddr(a) = decode_message(RTM_NEWADDR, 0, &emit(&m)).unwrap().unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (a.ifindex, a.local, a.prefix_len, a.peer, a.broadcast),
            (
                5,
                ip("10.9.0.1"),
                30,
                Some(ip("10.9.0.2")),
                Some(ip("10.9.0.3"))
            )
        );
        // Without IFA_LOCAL the address is IFA_ADDRESS and there is no peer.
        m.attributes = vec![AddressAttribute::Address(IpAddr::V4(ip("10.9.0.1")))];
        let KernelEvent::DelAddr(a) = decode_message(RTM_DELADDR, 0, &emit(&m)).unwrap().unwrap()
        else {
            panic!()
        };
        assert_eq!((a.local, a.peer), (ip("10.9.0.1"), None));
        m.attributes.clear();
        assert!(
            decode_message(RTM_NEWADDR, 0, &emit(&m)).is_err(),
            "an address needs an address"
        );
    }

    #[test]
    fn neighbours() {
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.ifindex = 3;
        m.header.state = NeighbourState::Reachable;
        m.attributes = vec![
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip("10.0.0.2"))),
            NeighbourAttribute::LinkLayerAddress(vec![2, 0, 0, 0, 0, 2]),
            NeighbourAttribute::ExtFlags(NeighbourExtFlags::Managed),
            NeighbourAttribute::Probes(3),
        ];
        let KernelEvent::NewNeigh(n) = decode_message(RTM_NEWNEIGH, 0, &emit(&m)).unwrap().unwrap()
        else {
            panic!()
        };
        assert_eq!(
            n,
            Neigh {
                ifindex: 3,
                ip: ip("10.0.0.2"),
                mac: Some([2, 0, 0, 0, 0, 2]),
                state: NudState::REACHABLE,
                flags: 0,
                ext_flags: NTF_EXT_MANAGED,
            }
        );
        m.header.family = AddressFamily::Bridge; // FDB entries ride the same group
        assert_eq!(decode_message(RTM_NEWNEIGH, 0, &emit(&m)), Ok(None));
    }

    fn nhmsg(family: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut v = vec![family, 253, 3, 0, 0, 0, 0, 0];
        for a in attrs {
            v.extend_from_slice(a);
        }
        v
    }

    #[test]
    fn nexthop_objects() {
        let single = nhmsg(
            AF_INET,
            &[
                nla(NHA_ID, &7u32.to_ne_bytes()),
                nla(NHA_GATEWAY, &[10, 0, 0, 2]),
                nla(NHA_OIF, &3u32.to_ne_bytes()),
            ],
        );
        let KernelEvent::NewNexthop(n) =
            decode_message(RTM_NEWNEXTHOP, 0, &single).unwrap().unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (n.id, n.gateway, n.ifindex, n.blackhole, n.is_group()),
            (7, Some(ip("10.0.0.2").into()), 3, false, false)
        );

        let v6 = nhmsg(
            AF_INET6,
            &[
                nla(NHA_ID, &8u32.to_ne_bytes()),
                nla(
                    NHA_GATEWAY,
                    &"fe80::2".parse::<Ipv6Addr>().unwrap().octets(),
                ),
            ],
        );
        let KernelEvent::NewNexthop(n) = decode_message(RTM_NEWNEXTHOP, 0, &v6).unwrap().unwrap()
        else {
            panic!()
        };
        assert_eq!(n.gateway, Some("fe80::2".parse::<IpAddr>().unwrap()));

        // Members 7 (weight 1: wire 0) and 8 (weight 300: wire 299 = 0x012b, weight_high 1).
        let mut grp = Vec::new();
        grp.extend_from_slice(&7u32.to_ne_bytes());
        grp.extend_from_slice(&[0, 0, 0, 0]);
        grp.extend_from_slice(&8u32.to_ne_bytes());
        grp.extend_from_slice(&[0x2b, 0x01, 0, 0]);
        let group = nhmsg(
            AF_UNSPEC,
            &[
                nla(NHA_ID, &10u32.to_ne_bytes()),
                nla(NHA_GROUP_TYPE, &1u16.to_ne_bytes()),
                nla(NHA_GROUP, &grp),
            ],
        );
        let KernelEvent::NewNexthop(n) =
            decode_message(RTM_NEWNEXTHOP, 0, &group).unwrap().unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (n.group.as_slice(), n.resilient),
            (&[(7, 1), (8, 300)][..], true)
        );

        let bh = nhmsg(
            AF_INET,
            &[nla(NHA_ID, &3u32.to_ne_bytes()), nla(NHA_BLACKHOLE, &[])],
        );
        let KernelEvent::NewNexthop(n) = decode_message(RTM_NEWNEXTHOP, 0, &bh).unwrap().unwrap()
        else {
            panic!()
        };
        assert!(n.blackhole);
        assert_eq!(
            decode_message(RTM_DELNEXTHOP, 0, &bh),
            Ok(Some(KernelEvent::DelNexthop(3)))
        );

        assert!(
            decode_message(
                RTM_NEWNEXTHOP,
                0,
                &nhmsg(
                    AF_INET,
                    &[nla(NHA_GROUP, &[0; 12]), nla(NHA_ID, &[1, 0, 0, 0])]
                )
            )
            .is_err()
        );
        assert!(
            decode_message(RTM_NEWNEXTHOP, 0, &nhmsg(AF_INET, &[])).is_err(),
            "no NHA_ID"
        );
        let mut too_heavy = 9u32.to_ne_bytes().to_vec();
        too_heavy.extend_from_slice(&[0xff, 0xff, 0, 0]);
        let e = decode_message(
            RTM_NEWNEXTHOP,
            0,
            &nhmsg(
                AF_UNSPEC,
                &[nla(NHA_ID, &[1, 0, 0, 0]), nla(NHA_GROUP, &too_heavy)],
            ),
        );
        assert!(e.is_err(), "weight 65536 does not exist");
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        for t in [
            RTM_NEWLINK,
            RTM_NEWADDR,
            RTM_DELROUTE,
            RTM_NEWNEIGH,
            RTM_NEWNEXTHOP,
        ] {
            for len in 0..4 {
                let e = decode_message(t, 0, &vec![AF_INET; len]).unwrap_err();
                assert_eq!(e.msg_type, t);
                assert!(e.to_string().contains("header"), "{e}");
            }
        }
        let good = emit(&route_msg(vec![RouteAttribute::Destination(
            RouteAddress::Inet(ip("192.0.2.0")),
        )]));
        // RTA_DST of 3 bytes.
        let mut bad = good[..RTM_HDRLEN].to_vec();
        bad.extend_from_slice(&nla(RTA_DST, &[192, 0, 2]));
        assert!(
            decode_message(RTM_NEWROUTE, 0, &bad)
                .unwrap_err()
                .reason
                .contains("RTA_DST")
        );
        // nla_len larger than the message.
        let mut bad = good.clone();
        bad[RTM_HDRLEN] = 200;
        assert!(decode_message(RTM_NEWROUTE, 0, &bad).is_err());
        // nla_len below the attribute header.
        let mut bad = good.clone();
        bad[RTM_HDRLEN] = 2;
        assert!(decode_message(RTM_NEWROUTE, 0, &bad).is_err());
        // rtm_dst_len 40.
        let mut bad = good.clone();
        bad[1] = 40;
        assert!(decode_message(RTM_NEWROUTE, 0, &bad).is_err());
        // rtnh_len pointing past the end, and below the rtnexthop header.
        for rtnh_len in [64u16, 4] {
            let mut mp = rtnh_len.to_ne_bytes().to_vec();
            mp.extend_from_slice(&[0, 0, 3, 0, 0, 0]);
            let mut bad = good[..RTM_HDRLEN].to_vec();
            bad.extend_from_slice(&nla(RTA_MULTIPATH, &mp));
            assert!(
                decode_message(RTM_NEWROUTE, 0, &bad).is_err(),
                "rtnh_len {rtnh_len}"
            );
        }
        // RTA_VIA of an unknown family.
        let mut bad = good[..RTM_HDRLEN].to_vec();
        bad.extend_from_slice(&nla(RTA_VIA, &[7, 0, 1, 2, 3, 4]));
        assert!(decode_message(RTM_NEWROUTE, 0, &bad).is_err());
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(
            t in prop::sample::select(vec![RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR, RTM_NEWROUTE,
                RTM_DELROUTE, RTM_NEWNEIGH, RTM_DELNEIGH, RTM_NEWNEXTHOP, RTM_DELNEXTHOP, 0, 99]),
            flags in any::<u16>(),
            payload in prop::collection::vec(any::<u8>(), 0..256),
        ) {
            let _ = decode_message(t, flags, &payload);
        }

        #[test]
        fn decoding_mutated_routes_never_panics(at in 0usize..200, byte in any::<u8>(), cut in 0usize..200) {
            let m = route_msg(vec![
                RouteAttribute::Destination(RouteAddress::Inet(ip("192.0.2.0"))),
                RouteAttribute::MultiPath(vec![rtnh(RouteNextHopFlags::empty(), 1, 3, vec![RouteAttribute::Gateway(RouteAddress::Inet(ip("10.0.0.2")))])]),
                RouteAttribute::Metrics(vec![RouteMetric::Mtu(1400)]),
            ]);
            let mut body = emit(&m);
            if at < body.len() {
                body[at] = byte;
            }
            body.truncate(cut.max(1));
            let _ = decode_message(RTM_NEWROUTE, 0, &body);
        }
    }

    #[test]
    fn dump_requests_are_well_formed() {
        let req = DumpKind::Routes.request(42);
        let b = NetlinkBuffer::new_checked(&req[..]).unwrap();
        assert_eq!(
            (
                b.length() as usize,
                b.message_type(),
                b.flags(),
                b.sequence_number()
            ),
            (req.len(), RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, 42)
        );
        assert_eq!(
            &b.payload()[..RTM_HDRLEN],
            &[AF_INET, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        let req = DumpKind::Links.request(1);
        let b = NetlinkBuffer::new_checked(&req[..]).unwrap();
        let ext: Vec<_> = attrs(&b.payload()[IFINFO_HDRLEN..])
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            ext,
            [(IFLA_EXT_MASK, &RTEXT_FILTER_SKIP_STATS.to_ne_bytes()[..])]
        );
        for kind in DumpKind::ALL {
            let req = kind.request(7);
            assert_eq!(req.len() % 4, 0);
            assert!(NetlinkBuffer::new_checked(&req[..]).is_ok());
        }
    }

    #[test]
    fn nlmsgerr_ack_errno_and_extended_message() {
        assert!(nlmsg_error(0, &[0; 20]).is_ok());
        let mut p = (-19i32).to_ne_bytes().to_vec();
        p.extend_from_slice(&[0; NLMSG_HDRLEN]);
        let e = nlmsg_error(NLM_F_CAPPED, &p).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(19));
        p.extend_from_slice(&nla(NLMSGERR_ATTR_MSG, b"Nexthop device is not up\0"));
        let e = nlmsg_error(NLM_F_CAPPED | NLM_F_ACK_TLVS, &p).unwrap_err();
        assert!(e.to_string().contains("Nexthop device is not up"), "{e}");
        assert!(nlmsg_error(0, &[1, 2]).is_err());
    }

    #[test]
    fn nud_states() {
        for s in [
            NudState::REACHABLE,
            NudState::STALE,
            NudState::DELAY,
            NudState::PROBE,
            NudState::PERMANENT,
            NudState::NOARP,
        ] {
            assert!(s.is_valid() && !s.is_failed(), "{s:?}");
        }
        for s in [NudState::NONE, NudState::INCOMPLETE, NudState::FAILED] {
            assert!(!s.is_valid(), "{s:?}");
        }
        assert!(NudState::FAILED.is_failed());
        assert_eq!(
            format!("{:?}", NudState::from_bits(0x82)),
            "REACHABLE|PERMANENT"
        );
        assert_eq!(format!("{:?}", NudState::NONE), "NONE");
        assert!(
            NudState::NONE.contains(NudState::NONE) && !NudState::STALE.contains(NudState::NONE)
        );
    }
}

//! The mirror of the kernel's control-plane state, kept equal to what a fresh dump would say.
//!
//! [`KernelState`] is built from a [`Netlink::dump`](super::netlink::Netlink::dump) with
//! [`KernelState::replace_all`] and then follows [`KernelEvent`]s with [`KernelState::apply`].
//! Routes are keyed the way `net/ipv4/fib_trie.c` keys them: (table, prefix, TOS, priority),
//! with a list of aliases per key in the kernel's order, so `ip route add/append/prepend/
//! replace/del` have the same effect here as there.
//!
//! # Use
//!
//! ```no_run
//! use std::time::Duration;
//! use xfwd::control::mirror::{Change, KernelState};
//! use xfwd::control::netlink::Netlink;
//!
//! # fn rebuild(_: &KernelState, _: Change) {}
//! # fn main() -> std::io::Result<()> {
//! // Subscribe first, then dump: what changes during the dump is queued on the event socket
//! // and applied afterwards, which converges (see below).
//! let mut nl = Netlink::open()?;
//! let mut state = KernelState::from_dump(nl.dump()?);
//! rebuild(&state, Change::ALL);
//! let mut events = Vec::new();
//! loop {
//!     nl.recv(&mut events, Duration::from_millis(100))?;
//!     let mut change = Change::NONE;
//!     for ev in events.drain(..) {
//!         change |= state.apply(ev);
//!     }
//!     if change.contains(Change::RESYNC) {
//!         // Notifications were lost: the dump is the truth again. Keep the flags of the
//!         // events applied before, their tables were not rebuilt yet.
//!         change |= state.replace_all(nl.dump()?);
//!     }
//!     if !change.is_empty() {
//!         rebuild(&state, change);
//!     }
//! }
//! # }
//! ```
//!
//! # What the kernel changes without telling
//!
//! Several kernel changes send no notification; the mirror re-does them from the events that
//! cause them (measured on 6.18, rules read from the code named):
//!
//! | event | kernel action (silent) | code |
//! |---|---|---|
//! | link admin down (`RTM_NEWLINK` without `IFF_UP`) | paths via the link get `dead`+`linkdown`, except in host-scope routes; routes with every path dead are deleted; nexthop objects via the link (not blackholes) are deleted, with the routes through them and empty groups | `fib_sync_down_dev(NETDEV_DOWN)`, `fib_flush`, `nexthop_flush_dev` |
//! | link admin up | `dead` (and `linkdown` if carrier) cleared on surviving paths via the link | `fib_sync_up(RTNH_F_DEAD)` |
//! | carrier lost (`IFF_RUNNING\|IFF_LOWER_UP` cleared, link up) | paths via the link get `linkdown`; nexthop objects via the link are deleted | `fib_sync_down_dev(NETDEV_CHANGE)`, `nexthop_flush_dev` |
//! | carrier back | `linkdown` cleared | `fib_sync_up(RTNH_F_LINKDOWN)` |
//! | link deleted (`RTM_DELLINK`) | every route with *any* path via the link is deleted, host scope included; its nexthop objects too | `fib_sync_down_dev(NETDEV_UNREGISTER, force)` |
//! | last IPv4 address of a link deleted | as admin down, host-scope routes included | `fib_inetaddr_event` → `fib_disable_ip(force)` |
//! | an address deleted that no link has any more | main-table routes with that `prefsrc` deleted (notified since 6.6, "ipv4/fib: send notify when delete source address routes"; silent before) | `fib_del_ifaddr` → `fib_sync_down_addr` |
//! | an address added | `dead` cleared on paths via its link (if up) | `fib_inetaddr_event(NETDEV_UP)` → `fib_sync_up` |
//! | nexthop object deleted (`RTM_DELNEXTHOP`) | routes through it deleted; it leaves its groups, a group left empty is deleted | `remove_nexthop`, `__remove_nexthop_fib`, `remove_nh_grp_entry` |
//!
//! The silence on link down/delete is deliberate upstream (routing daemons track links
//! themselves), so it will not change.
//!
//! What the kernel *does* notify is not emulated twice: addresses of a deleted link
//! (`RTM_DELADDR` each), neighbours flushed on link down or carrier loss (`RTM_DELNEIGH` each,
//! permanent entries included on down), connected/local/broadcast routes of added or deleted
//! addresses, and nexthop-object replacements (`RTM_NEWNEXTHOP`; with
//! `net.ipv4.nexthop_compat_mode=1` also one `RTM_NEWROUTE` per route using it, which the
//! mirror absorbs as no-ops). Removing what is already gone is a no-op, so the mirror also
//! drops those neighbours and addresses itself when it emulates the cause.
//!
//! The rules are deterministic functions of the event stream, so replaying the events queued
//! during a dump over that dump converges to the kernel's state (every later change either has
//! its own notification or is re-derived).
//!
//! Not modelled: `net.ipv4.conf.*.ignore_routes_with_linkdown` (the kernel then also reports
//! `linkdown` paths as `dead`), VRF/l3mdev tables (`CONFIG_NET_VRF` is off here), and the
//! configured type of a route through a blackhole nexthop object (see [`KernelState::apply`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::{BitOr, BitOrAssign};

use super::netlink::{
    Addr, KernelEvent, Link, Neigh, NextHop, NexthopObject, NudState, Route, RouteKind,
    RoutePlacement,
};

/// `RT_TABLE_MAIN`.
pub const RT_TABLE_MAIN: u32 = 254;
/// `RT_TABLE_LOCAL`.
pub const RT_TABLE_LOCAL: u32 = 255;
/// `RT_SCOPE_HOST`: the route's path never leaves the host (`local` routes).
const RT_SCOPE_HOST: u8 = 254;
/// `LOOPBACK_IFINDEX`: `lo` is ifindex 1 in every namespace; blackhole nexthop objects hang off it.
const LOOPBACK_IFINDEX: u32 = 1;
/// `IFA_F_SECONDARY`.
const IFA_F_SECONDARY: u32 = 0x01;
/// `RTNH_F_ONLINK`, `RTNH_F_LINKDOWN` in `nh_flags`.
const RTNH_F_ONLINK: u32 = 4;
const RTNH_F_LINKDOWN: u32 = 16;

/// What kind of tables must be rebuilt after an update: a set of flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Change(u8);

impl Change {
    /// Nothing changed.
    pub const NONE: Self = Self(0);
    /// Links (state, MTU, MAC, name) changed.
    pub const LINKS: Self = Self(1);
    /// Addresses changed (the local-address set may differ).
    pub const ADDRS: Self = Self(2);
    /// Routes were added, removed or edited (including path `dead`/`linkdown` flags).
    pub const ROUTES: Self = Self(4);
    /// Nexthop objects changed: every route through them resolves differently now, even when
    /// [`Change::ROUTES`] is not set.
    pub const NEXTHOPS: Self = Self(8);
    /// Neighbours changed.
    pub const NEIGHS: Self = Self(16);
    /// Events were lost ([`KernelEvent::Overrun`]): dump and [`KernelState::replace_all`].
    pub const RESYNC: Self = Self(32);
    /// Every table.
    pub const ALL: Self = Self(1 | 2 | 4 | 8 | 16);

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Change {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for Change {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::LINKS, "LINKS"),
            (Self::ADDRS, "ADDRS"),
            (Self::ROUTES, "ROUTES"),
            (Self::NEXTHOPS, "NEXTHOPS"),
            (Self::NEIGHS, "NEIGHS"),
            (Self::RESYNC, "RESYNC"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(c, _)| self.contains(*c))
            .map(|(_, n)| *n)
            .collect();
        if set.is_empty() {
            f.write_str("NONE")
        } else {
            f.write_str(&set.join("|"))
        }
    }
}

/// How the kernel identifies a route: aliases with equal keys are ordered, the first usable one
/// wins (`fib_table_insert`, `fib_find_alias`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteKey {
    /// Routing table.
    pub table: u32,
    /// Destination prefix.
    pub dst: Ipv4Addr,
    /// Prefix length.
    pub dst_len: u8,
    /// TOS the route is restricted to (0: any).
    pub tos: u8,
    /// Metric.
    pub priority: u32,
}

impl RouteKey {
    /// The key of `route`.
    pub fn of(route: &Route) -> Self {
        Self {
            table: route.table,
            dst: route.dst,
            dst_len: route.dst_len,
            tos: route.tos,
            priority: route.priority,
        }
    }
}

/// How the kernel identifies an IPv4 address on a link (`find_matching_ifa`): local address,
/// prefix length, and the subnet of `IFA_ADDRESS` (the peer for point-to-point addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddrKey {
    /// Link.
    pub ifindex: u32,
    /// Local address.
    pub local: Ipv4Addr,
    /// Prefix length.
    pub prefix_len: u8,
    /// `IFA_ADDRESS` masked to the prefix.
    pub subnet: Ipv4Addr,
}

impl AddrKey {
    /// The key of `addr`.
    pub fn of(addr: &Addr) -> Self {
        let address = addr.peer.unwrap_or(addr.local);
        Self {
            ifindex: addr.ifindex,
            local: addr.local,
            prefix_len: addr.prefix_len,
            subnet: mask(address, addr.prefix_len),
        }
    }
}

fn prefix_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

fn mask(a: Ipv4Addr, len: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(a) & prefix_mask(len))
}

/// Where a route sends packets, once nexthop objects are looked through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved<'a> {
    /// Forward over these paths (ECMP by weight). Empty for routes of a kind that has none
    /// (`local`, `unreachable`, ...): see [`Route::kind`].
    Paths(Cow<'a, [NextHop]>),
    /// The route's nexthop object is a blackhole: drop.
    Blackhole,
    /// The route names a nexthop object (or group member) the mirror does not have. Should not
    /// happen while the mirror is in sync; treat as unusable.
    Missing(u32),
}

/// What the kernel did on a device event (`fib_sync_down_dev`'s `event` argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NetdevEvent {
    /// `NETDEV_DOWN`: paths die.
    Down,
    /// `NETDEV_UNREGISTER`: paths die, and a multipath route with any path here dies whole.
    Unregister,
    /// `NETDEV_CHANGE` without carrier: paths get `linkdown` only.
    Change,
}

/// The mirrored kernel state. See the module documentation for the semantics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelState {
    links: BTreeMap<u32, Link>,
    addrs: BTreeMap<AddrKey, Addr>,
    routes: BTreeMap<RouteKey, Vec<Route>>,
    nexthops: BTreeMap<u32, NexthopObject>,
    neighs: HashMap<(u32, Ipv4Addr), Neigh>,
}

impl KernelState {
    /// An empty mirror.
    pub fn new() -> Self {
        Self::default()
    }

    /// A mirror built from a dump (as [`KernelState::replace_all`] on an empty one).
    pub fn from_dump(events: impl IntoIterator<Item = KernelEvent>) -> Self {
        let mut s = Self::default();
        s.replace_all(events);
        s
    }

    /// Replaces everything with the state a dump describes, and says which kinds of tables
    /// differ from before (nothing, if a resync found the mirror already exact).
    ///
    /// The events are applied as a dump lists them: no emulation of kernel side effects, each
    /// route appended after the aliases of its key. `Del*` events, which a dump does not
    /// contain, are applied as by [`KernelState::apply`]; [`KernelEvent::Overrun`] is ignored.
    pub fn replace_all(&mut self, events: impl IntoIterator<Item = KernelEvent>) -> Change {
        let mut next = Self::default();
        for ev in events {
            match ev {
                KernelEvent::NewLink(l) => {
                    next.links.insert(l.ifindex, l);
                }
                KernelEvent::NewAddr(a) => {
                    next.addrs.insert(AddrKey::of(&a), a);
                }
                KernelEvent::NewRoute(r, _) => {
                    next.insert_route(r, RoutePlacement::Append);
                }
                KernelEvent::NewNexthop(n) => {
                    next.nexthops.insert(n.id, n);
                }
                KernelEvent::NewNeigh(n) => {
                    next.neighs.insert((n.ifindex, n.ip), n);
                }
                KernelEvent::Overrun => {}
                other => {
                    next.apply(other);
                }
            }
        }
        // Routes were inserted possibly before their nexthop objects: normalize now.
        let blackholes: BTreeSet<u32> = next
            .nexthops
            .values()
            .filter(|n| n.blackhole)
            .map(|n| n.id)
            .collect();
        for aliases in next.routes.values_mut() {
            for r in aliases.iter_mut() {
                if r.kind == RouteKind::Blackhole
                    && r.nh_id.is_some_and(|id| blackholes.contains(&id))
                {
                    r.kind = RouteKind::Unicast;
                }
            }
        }
        let mut change = Change::NONE;
        if next.links != self.links {
            change |= Change::LINKS;
        }
        if next.addrs != self.addrs {
            change |= Change::ADDRS;
        }
        if next.routes != self.routes {
            change |= Change::ROUTES;
        }
        if next.nexthops != self.nexthops {
            change |= Change::NEXTHOPS;
        }
        if next.neighs != self.neighs {
            change |= Change::NEIGHS;
        }
        *self = next;
        change
    }

    /// Applies one event, with the kernel's silent side effects (module documentation), and
    /// says which kinds of tables changed.
    ///
    /// Route semantics follow `fib_table_insert`/`fib_table_delete`: a new route with a key and
    /// contents equal to an existing alias (apart from `dead`/`linkdown`) is a no-op, as the
    /// kernel refuses such duplicates; otherwise [`RoutePlacement`] says where it goes.
    /// `DelRoute` removes the alias equal to the deleted one.
    ///
    /// A route through a blackhole nexthop object is reported by the kernel as `RTN_BLACKHOLE`
    /// whatever its configured type (`fib_dump_info`), and re-reported only in
    /// `nexthop_compat_mode=1` when the object changes; the mirror stores such a route as
    /// `Unicast` and lets [`KernelState::resolve`] say `Blackhole`, which stays right in both
    /// modes. (A route configured `unreachable`/`prohibit` through a blackhole object is thus
    /// mirrored as a blackhole, the one case the kernel's report cannot tell apart.)
    ///
    /// [`KernelEvent::Overrun`] changes nothing and returns [`Change::RESYNC`].
    pub fn apply(&mut self, ev: KernelEvent) -> Change {
        match ev {
            KernelEvent::NewLink(link) => self.new_link(link),
            KernelEvent::DelLink(ifindex) => self.del_link(ifindex),
            KernelEvent::NewAddr(addr) => self.new_addr(addr),
            KernelEvent::DelAddr(addr) => self.del_addr(&addr),
            KernelEvent::NewRoute(route, placement) => {
                let route = self.normalize(route);
                if self.insert_route(route, placement) {
                    Change::ROUTES
                } else {
                    Change::NONE
                }
            }
            KernelEvent::DelRoute(route) => {
                let route = self.normalize(route);
                if self.remove_route(&route) {
                    Change::ROUTES
                } else {
                    Change::NONE
                }
            }
            KernelEvent::NewNexthop(nh) => {
                if self.nexthops.get(&nh.id) == Some(&nh) {
                    Change::NONE
                } else {
                    self.nexthops.insert(nh.id, nh);
                    Change::NEXTHOPS
                }
            }
            KernelEvent::DelNexthop(id) => self.flush_nexthops(vec![id]),
            KernelEvent::NewNeigh(n) => {
                let key = (n.ifindex, n.ip);
                if self.neighs.get(&key) == Some(&n) {
                    Change::NONE
                } else {
                    self.neighs.insert(key, n);
                    Change::NEIGHS
                }
            }
            KernelEvent::DelNeigh(n) => {
                if self.neighs.remove(&(n.ifindex, n.ip)).is_some() {
                    Change::NEIGHS
                } else {
                    Change::NONE
                }
            }
            KernelEvent::Overrun => Change::RESYNC,
        }
    }

    // ----- queries -----

    /// Links by ifindex.
    pub fn links(&self) -> &BTreeMap<u32, Link> {
        &self.links
    }

    /// The link with this ifindex.
    pub fn link(&self, ifindex: u32) -> Option<&Link> {
        self.links.get(&ifindex)
    }

    /// The link named `name`.
    pub fn link_by_name(&self, name: &str) -> Option<&Link> {
        self.links.values().find(|l| l.name == name)
    }

    /// Every IPv4 address.
    pub fn addrs(&self) -> impl Iterator<Item = &Addr> {
        self.addrs.values()
    }

    /// The IPv4 addresses of one link.
    pub fn addrs_of(&self, ifindex: u32) -> impl Iterator<Item = &Addr> {
        self.addrs.values().filter(move |a| a.ifindex == ifindex)
    }

    /// Every route of every table, in key order, aliases of a key in the kernel's order.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.values().flatten()
    }

    /// The routes of one table, in key order.
    pub fn table(&self, table: u32) -> impl Iterator<Item = &Route> {
        let lo = RouteKey {
            table,
            dst: Ipv4Addr::UNSPECIFIED,
            dst_len: 0,
            tos: 0,
            priority: 0,
        };
        let hi = RouteKey {
            table,
            dst: Ipv4Addr::BROADCAST,
            dst_len: u8::MAX,
            tos: u8::MAX,
            priority: u32::MAX,
        };
        self.routes.range(lo..=hi).flat_map(|(_, v)| v.iter())
    }

    /// The routes of the main table (254), which is what the data path forwards with when no
    /// policy rules are in play. A prefix may appear several times (different metrics or TOS,
    /// or appended aliases); the kernel uses the lowest metric among those whose paths are not
    /// all `dead`.
    pub fn main_routes(&self) -> impl Iterator<Item = &Route> {
        self.table(RT_TABLE_MAIN)
    }

    /// The routes of one prefix in one table with TOS 0, lowest metric first (each metric's
    /// aliases in the kernel's order): the first is the one the kernel uses.
    pub fn prefix_routes(
        &self,
        table: u32,
        dst: Ipv4Addr,
        dst_len: u8,
    ) -> impl Iterator<Item = &Route> {
        let key = |priority| RouteKey {
            table,
            dst,
            dst_len,
            tos: 0,
            priority,
        };
        self.routes
            .range(key(0)..=key(u32::MAX))
            .flat_map(|(_, v)| v.iter())
    }

    /// The aliases with this exact key, in the kernel's order.
    pub fn route_aliases(&self, key: &RouteKey) -> &[Route] {
        self.routes.get(key).map_or(&[], Vec::as_slice)
    }

    /// Number of route aliases in all tables.
    pub fn route_count(&self) -> usize {
        self.routes.values().map(Vec::len).sum()
    }

    /// Nexthop objects by id.
    pub fn nexthops(&self) -> &BTreeMap<u32, NexthopObject> {
        &self.nexthops
    }

    /// Neighbours by (ifindex, address).
    pub fn neighs(&self) -> &HashMap<(u32, Ipv4Addr), Neigh> {
        &self.neighs
    }

    /// The neighbour entry for `ip` on `ifindex`.
    pub fn neigh(&self, ifindex: u32, ip: Ipv4Addr) -> Option<&Neigh> {
        self.neighs.get(&(ifindex, ip))
    }

    /// The addresses the kernel treats as this host's from its addresses: every address, its
    /// `IFA_BROADCAST` (except 0.0.0.0 and 255.255.255.255, which Linux handles by itself), and
    /// the subnet-directed broadcast of every primary address shorter than /31, as
    /// `fib_add_ifaddr` installs them in table local. (Table local itself is mirrored too:
    /// [`KernelState::table`]`(`[`RT_TABLE_LOCAL`]`)` also has 127.0.0.0/8, and loses a down
    /// link's broadcast routes.)
    pub fn local_addrs(&self) -> BTreeSet<Ipv4Addr> {
        let mut set = BTreeSet::new();
        for a in self.addrs.values() {
            set.insert(a.local);
            if let Some(b) = a
                .broadcast
                .filter(|b| !b.is_unspecified() && !b.is_broadcast())
            {
                set.insert(b);
            }
            let prefix = mask(a.peer.unwrap_or(a.local), a.prefix_len);
            if a.prefix_len < 31 && a.flags & IFA_F_SECONDARY == 0 && !prefix.is_unspecified() {
                set.insert(Ipv4Addr::from(
                    u32::from(prefix) | !prefix_mask(a.prefix_len),
                ));
            }
        }
        set
    }

    /// Where `route` sends packets: its own paths, or those of its nexthop object (a group's
    /// members with their weights).
    pub fn resolve<'a>(&'a self, route: &'a Route) -> Resolved<'a> {
        let Some(id) = route.nh_id else {
            return Resolved::Paths(Cow::Borrowed(&route.nexthops));
        };
        let Some(obj) = self.nexthops.get(&id) else {
            return Resolved::Missing(id);
        };
        if !obj.is_group() {
            return if obj.blackhole {
                Resolved::Blackhole
            } else {
                Resolved::Paths(Cow::Owned(vec![path_of(obj, 1)]))
            };
        }
        let mut paths = Vec::with_capacity(obj.group.len());
        for &(member, weight) in &obj.group {
            match self.nexthops.get(&member) {
                // The kernel allows a blackhole member only in a single-path group.
                Some(m) if m.blackhole => return Resolved::Blackhole,
                Some(m) => paths.push(path_of(m, weight)),
                None => return Resolved::Missing(member),
            }
        }
        Resolved::Paths(Cow::Owned(paths))
    }

    // ----- event handlers -----

    fn new_link(&mut self, link: Link) -> Change {
        let ifindex = link.ifindex;
        let (new_up, new_carrier) = (link.admin_up, link.oper_up);
        let old = self.links.insert(ifindex, link);
        let Some(old) = old else {
            return Change::LINKS;
        };
        let mut change = if self.links.get(&ifindex) == Some(&old) {
            Change::NONE
        } else {
            Change::LINKS
        };
        match (old.admin_up, new_up) {
            (true, false) => {
                // NETDEV_DOWN: fib_disable_ip(dev, NETDEV_DOWN, false), nexthop_flush_dev,
                // arp_ifdown (all neighbours of the link, permanent ones too).
                change |= self.fib_sync_down_dev(ifindex, NetdevEvent::Down, false);
                change |= self.nexthop_flush_dev(ifindex, NetdevEvent::Down);
                change |= self.neigh_flush_dev(ifindex, true);
            }
            (false, true) => {
                // NETDEV_UP: fib_sync_up(dev, RTNH_F_DEAD).
                change |= self.fib_sync_up(ifindex, true);
            }
            (true, true) if old.oper_up && !new_carrier => {
                // NETDEV_CHANGE, carrier lost: fib_sync_down_dev(NETDEV_CHANGE), nexthop_flush_dev,
                // neigh_carrier_down (non-permanent neighbours).
                change |= self.fib_sync_down_dev(ifindex, NetdevEvent::Change, false);
                change |= self.nexthop_flush_dev(ifindex, NetdevEvent::Change);
                change |= self.neigh_flush_dev(ifindex, false);
            }
            (true, true) if !old.oper_up && new_carrier => {
                // NETDEV_CHANGE, carrier back: fib_sync_up(dev, RTNH_F_LINKDOWN).
                change |= self.fib_sync_up(ifindex, false);
            }
            _ => {}
        }
        change
    }

    fn del_link(&mut self, ifindex: u32) -> Change {
        // NETDEV_UNREGISTER: fib_disable_ip(dev, NETDEV_UNREGISTER, true), nexthop_flush_dev.
        // The kernel already sent RTM_DELADDR for the addresses and RTM_DELNEIGH for the
        // neighbours (on the way down); dropping leftovers is a no-op then.
        let mut change = Change::NONE;
        if self.links.remove(&ifindex).is_some() {
            change |= Change::LINKS;
        }
        change |= self.fib_sync_down_dev(ifindex, NetdevEvent::Unregister, true);
        change |= self.nexthop_flush_dev(ifindex, NetdevEvent::Unregister);
        change |= self.neigh_flush_dev(ifindex, true);
        let before = self.addrs.len();
        self.addrs.retain(|k, _| k.ifindex != ifindex);
        if self.addrs.len() != before {
            change |= Change::ADDRS;
        }
        change
    }

    fn new_addr(&mut self, addr: Addr) -> Change {
        let ifindex = addr.ifindex;
        match self.addrs.insert(AddrKey::of(&addr), addr) {
            Some(old) if self.addrs.get(&AddrKey::of(&old)) == Some(&old) => Change::NONE,
            Some(_) => Change::ADDRS,
            // A new address: fib_inetaddr_event(NETDEV_UP) → fib_sync_up(dev, RTNH_F_DEAD).
            None => Change::ADDRS | self.fib_sync_up(ifindex, true),
        }
    }

    fn del_addr(&mut self, addr: &Addr) -> Change {
        if self.addrs.remove(&AddrKey::of(addr)).is_none() {
            return Change::NONE;
        }
        let mut change = Change::ADDRS;
        // fib_del_ifaddr: the local address gone from every link → fib_sync_down_addr flushes
        // main-table routes using it as preferred source.
        if !self.addrs.values().any(|a| a.local == addr.local) {
            let before = self.route_count();
            self.routes.retain(|k, aliases| {
                if k.table == RT_TABLE_MAIN {
                    aliases.retain(|r| r.prefsrc != Some(addr.local));
                }
                !aliases.is_empty()
            });
            if self.route_count() != before {
                change |= Change::ROUTES;
            }
        }
        // fib_inetaddr_event(NETDEV_DOWN) with no address left: fib_disable_ip(dev, NETDEV_DOWN,
        // force) and arp_ifdown.
        if !self.addrs.keys().any(|k| k.ifindex == addr.ifindex) {
            change |= self.fib_sync_down_dev(addr.ifindex, NetdevEvent::Down, true);
            change |= self.neigh_flush_dev(addr.ifindex, true);
        }
        change
    }

    // ----- routes -----

    /// Stores a route through a blackhole object as `Unicast` (see [`KernelState::apply`]).
    fn normalize(&self, mut route: Route) -> Route {
        if route.kind == RouteKind::Blackhole
            && route
                .nh_id
                .and_then(|id| self.nexthops.get(&id))
                .is_some_and(|n| n.blackhole)
        {
            route.kind = RouteKind::Unicast;
        }
        route
    }

    /// Inserts per `placement`; returns whether the aliases changed.
    fn insert_route(&mut self, route: Route, placement: RoutePlacement) -> bool {
        // Nearly every key has one alias: don't let the first push reserve four.
        let aliases = self
            .routes
            .entry(RouteKey::of(&route))
            .or_insert_with(|| Vec::with_capacity(1));
        if placement == RoutePlacement::Replace {
            return match aliases.first_mut() {
                Some(first) if *first == route => false,
                Some(first) => {
                    *first = route;
                    true
                }
                None => {
                    aliases.push(route);
                    true
                }
            };
        }
        // The kernel refuses an exact duplicate (EEXIST), so one here is a replayed event.
        if aliases.iter().any(|a| same_alias(a, &route)) {
            return false;
        }
        match placement {
            RoutePlacement::Prepend => aliases.insert(0, route),
            _ => aliases.push(route),
        }
        true
    }

    fn remove_route(&mut self, route: &Route) -> bool {
        let key = RouteKey::of(route);
        let Some(aliases) = self.routes.get_mut(&key) else {
            return false;
        };
        let Some(at) = aliases.iter().position(|a| same_alias(a, route)) else {
            return false;
        };
        aliases.remove(at);
        if aliases.is_empty() {
            self.routes.remove(&key);
        }
        true
    }

    /// `fib_sync_down_dev` followed by `fib_flush` (net/ipv4/fib_semantics.c): marks the paths
    /// via `ifindex`, deletes the routes left without a live path.
    fn fib_sync_down_dev(&mut self, ifindex: u32, event: NetdevEvent, force: bool) -> Change {
        let mut changed = false;
        self.routes.retain(|_, aliases| {
            aliases.retain_mut(|r| {
                if r.nh_id.is_some() || !r.nexthops.iter().any(|nh| nh.ifindex == ifindex) {
                    return true;
                }
                // Host-scope routes have fib_nh_scope RT_SCOPE_NOWHERE, which only `force`
                // matches.
                let eligible = force || r.scope != RT_SCOPE_HOST;
                let n = r.nexthops.len();
                let mut dead = 0;
                for nh in &mut r.nexthops {
                    if nh.dead {
                        dead += 1;
                    } else if nh.ifindex == ifindex && eligible {
                        let was = (nh.dead, nh.linkdown);
                        if event != NetdevEvent::Change {
                            nh.dead = true;
                        }
                        nh.linkdown = true;
                        changed |= was != (nh.dead, nh.linkdown);
                        dead += 1;
                    }
                    if event == NetdevEvent::Unregister && nh.ifindex == ifindex {
                        dead = n;
                        break;
                    }
                }
                let flush = dead == n && event != NetdevEvent::Change;
                changed |= flush;
                !flush
            });
            !aliases.is_empty()
        });
        if changed {
            Change::ROUTES
        } else {
            Change::NONE
        }
    }

    /// `fib_sync_up(dev, dead ? RTNH_F_DEAD : RTNH_F_LINKDOWN)`: revives the paths via an up
    /// link (clearing `linkdown` too when it has carrier).
    fn fib_sync_up(&mut self, ifindex: u32, dead: bool) -> Change {
        let Some(link) = self.links.get(&ifindex) else {
            return Change::NONE;
        };
        if !link.admin_up {
            return Change::NONE;
        }
        let linkdown = !dead || link.oper_up;
        let mut changed = false;
        for r in self.routes.values_mut().flatten() {
            if r.nh_id.is_some() {
                continue;
            }
            for nh in r.nexthops.iter_mut().filter(|nh| nh.ifindex == ifindex) {
                if (dead && nh.dead) || (linkdown && nh.linkdown) {
                    if dead {
                        nh.dead = false;
                    }
                    if linkdown {
                        nh.linkdown = false;
                    }
                    changed = true;
                }
            }
        }
        if changed {
            Change::ROUTES
        } else {
            Change::NONE
        }
    }

    // ----- nexthop objects -----

    /// `nexthop_flush_dev`: the single-path objects via `ifindex` go; blackhole objects hang
    /// off `lo` and go only when `lo` is unregistered.
    fn nexthop_flush_dev(&mut self, ifindex: u32, event: NetdevEvent) -> Change {
        let ids: Vec<u32> = self
            .nexthops
            .values()
            .filter(|n| !n.is_group())
            .filter(|n| {
                if n.blackhole {
                    event == NetdevEvent::Unregister && ifindex == LOOPBACK_IFINDEX
                } else {
                    n.ifindex == ifindex
                }
            })
            .map(|n| n.id)
            .collect();
        if ids.is_empty() {
            Change::NONE
        } else {
            self.flush_nexthops(ids)
        }
    }

    /// `remove_nexthop` for each id: the object goes, leaves its groups (a group losing its
    /// last member goes too), and the routes through any removed object go.
    fn flush_nexthops(&mut self, mut pending: Vec<u32>) -> Change {
        let mut removed = BTreeSet::new();
        while let Some(id) = pending.pop() {
            let Some(obj) = self.nexthops.remove(&id) else {
                continue;
            };
            removed.insert(id);
            if obj.is_group() {
                continue;
            }
            for g in self
                .nexthops
                .values_mut()
                .filter(|g| g.group.iter().any(|&(m, _)| m == id))
            {
                if g.group.len() == 1 {
                    pending.push(g.id);
                } else {
                    g.group.retain(|&(m, _)| m != id);
                }
            }
        }
        if removed.is_empty() {
            return Change::NONE;
        }
        let before = self.route_count();
        self.routes.retain(|_, aliases| {
            aliases.retain(|r| !r.nh_id.is_some_and(|id| removed.contains(&id)));
            !aliases.is_empty()
        });
        if self.route_count() != before {
            Change::NEXTHOPS | Change::ROUTES
        } else {
            Change::NEXTHOPS
        }
    }

    // ----- neighbours -----

    /// `neigh_flush_dev`: all entries of the link (`arp_ifdown`), or the non-permanent ones
    /// (`neigh_carrier_down`).
    fn neigh_flush_dev(&mut self, ifindex: u32, all: bool) -> Change {
        let before = self.neighs.len();
        self.neighs.retain(|&(i, _), n| {
            let keep_permanent = !all && n.state.contains(NudState::PERMANENT);
            i != ifindex || keep_permanent
        });
        if self.neighs.len() != before {
            Change::NEIGHS
        } else {
            Change::NONE
        }
    }
}

/// Whether `a` and `b` are the same alias as the kernel sees it (`fa_match`: same type, scope
/// and `fib_info`), ignoring the path state flags that change under it.
fn same_alias(a: &Route, b: &Route) -> bool {
    a.kind == b.kind
        && a.scope == b.scope
        && a.protocol == b.protocol
        && a.prefsrc == b.prefsrc
        && a.mtu == b.mtu
        && a.nh_id == b.nh_id
        && a.nexthops.len() == b.nexthops.len()
        && a.nexthops.iter().zip(&b.nexthops).all(|(x, y)| {
            x.gateway == y.gateway
                && x.gateway6 == y.gateway6
                && x.ifindex == y.ifindex
                && x.weight == y.weight
                && x.onlink == y.onlink
                && x.encap == y.encap
        })
}

fn path_of(obj: &NexthopObject, weight: u16) -> NextHop {
    let (gateway, gateway6) = match obj.gateway {
        Some(IpAddr::V4(g)) => (Some(g), None),
        Some(IpAddr::V6(g)) => (None, Some(g)),
        None => (None, None),
    };
    NextHop {
        gateway,
        gateway6,
        ifindex: obj.ifindex,
        weight,
        onlink: obj.flags & RTNH_F_ONLINK != 0,
        dead: false,
        linkdown: obj.flags & RTNH_F_LINKDOWN != 0,
        encap: obj.encap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::netlink::{Link, NextHop, RoutePlacement::*};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn link(ifindex: u32, up: bool, carrier: bool) -> Link {
        Link {
            ifindex,
            name: format!("eth{ifindex}"),
            mac: Some([2, 0, 0, 0, 0, ifindex as u8]),
            mtu: 1500,
            admin_up: up,
            oper_up: up && carrier,
            kind: None,
            flags: u32::from(up),
            master: None,
        }
    }

    fn nh(gw: &str, ifindex: u32) -> NextHop {
        NextHop {
            gateway: (!gw.is_empty()).then(|| ip(gw)),
            gateway6: None,
            ifindex,
            weight: 1,
            onlink: false,
            dead: false,
            linkdown: false,
            encap: None,
        }
    }

    fn route(prefix: &str, metric: u32, nexthops: Vec<NextHop>) -> Route {
        let (dst, len) = prefix.split_once('/').unwrap();
        Route {
            table: RT_TABLE_MAIN,
            dst: ip(dst),
            dst_len: len.parse().unwrap(),
            tos: 0,
            priority: metric,
            kind: RouteKind::Unicast,
            protocol: 3,
            scope: 0,
            prefsrc: None,
            mtu: None,
            nexthops,
            nh_id: None,
        }
    }

    fn addr(ifindex: u32, local: &str, len: u8) -> Addr {
        Addr {
            ifindex,
            local: ip(local),
            prefix_len: len,
            broadcast: None,
            peer: None,
            flags: 0,
            scope: 0,
        }
    }

    fn neigh(ifindex: u32, a: &str, state: NudState) -> Neigh {
        Neigh {
            ifindex,
            ip: ip(a),
            mac: Some([2, 0, 0, 0, 0, 9]),
            state,
            flags: 0,
            ext_flags: 0,
        }
    }

    fn nh_obj(id: u32, gw: &str, ifindex: u32) -> NexthopObject {
        NexthopObject {
            id,
            family: 2,
            gateway: Some(IpAddr::V4(ip(gw))),
            ifindex,
            blackhole: false,
            fdb: false,
            group: vec![],
            resilient: false,
            flags: 0,
            protocol: 0,
            scope: 253,
            encap: None,
        }
    }

    fn group(id: u32, members: &[(u32, u16)]) -> NexthopObject {
        NexthopObject {
            family: 0,
            gateway: None,
            ifindex: 0,
            group: members.to_vec(),
            ..nh_obj(id, "0.0.0.0", 0)
        }
    }

    fn with_links() -> KernelState {
        let mut s = KernelState::new();
        s.apply(KernelEvent::NewLink(link(2, true, true)));
        s.apply(KernelEvent::NewLink(link(3, true, true)));
        s
    }

    fn main_prefixes(s: &KernelState) -> Vec<(Ipv4Addr, u8, u32, Option<Ipv4Addr>)> {
        s.main_routes()
            .map(|r| {
                (
                    r.dst,
                    r.dst_len,
                    r.priority,
                    r.nexthops.first().and_then(|n| n.gateway),
                )
            })
            .collect()
    }

    #[test]
    fn metrics_are_separate_keys_and_replace_hits_only_its_metric() {
        let mut s = with_links();
        assert_eq!(
            s.apply(KernelEvent::NewRoute(
                route("1.0.0.0/8", 10, vec![nh("10.0.0.2", 2)]),
                Prepend
            )),
            Change::ROUTES
        );
        s.apply(KernelEvent::NewRoute(
            route("1.0.0.0/8", 20, vec![nh("10.0.0.3", 2)]),
            Prepend,
        ));
        assert_eq!(s.route_count(), 2);
        // `ip route replace 1.0.0.0/8 via 10.0.0.4 metric 20`
        s.apply(KernelEvent::NewRoute(
            route("1.0.0.0/8", 20, vec![nh("10.0.0.4", 2)]),
            Replace,
        ));
        assert_eq!(
            main_prefixes(&s),
            vec![
                (ip("1.0.0.0"), 8, 10, Some(ip("10.0.0.2"))),
                (ip("1.0.0.0"), 8, 20, Some(ip("10.0.0.4")))
            ]
        );
        // `ip route del 1.0.0.0/8 metric 10`
        assert_eq!(
            s.apply(KernelEvent::DelRoute(route(
                "1.0.0.0/8",
                10,
                vec![nh("10.0.0.2", 2)]
            ))),
            Change::ROUTES
        );
        assert_eq!(
            main_prefixes(&s),
            vec![(ip("1.0.0.0"), 8, 20, Some(ip("10.0.0.4")))]
        );
        // Deleting it again (a replayed event) changes nothing.
        assert_eq!(
            s.apply(KernelEvent::DelRoute(route(
                "1.0.0.0/8",
                10,
                vec![nh("10.0.0.2", 2)]
            ))),
            Change::NONE
        );
    }

    #[test]
    fn aliases_follow_add_append_prepend_replace_like_fib_table_insert() {
        let mut s = with_links();
        let r = |gw| route("1.0.0.0/8", 0, vec![nh(gw, 2)]);
        s.apply(KernelEvent::NewRoute(r("10.0.0.2"), Prepend)); // ip route add
        s.apply(KernelEvent::NewRoute(r("10.0.0.3"), Append)); // ip route append
        s.apply(KernelEvent::NewRoute(r("10.0.0.4"), Prepend)); // ip route prepend
        s.apply(KernelEvent::NewRoute(r("10.0.0.5"), Replace)); // ip route replace: first alias
        let gws: Vec<_> = main_prefixes(&s)
            .into_iter()
            .map(|p| p.3.unwrap())
            .collect();
        // What `ip route show` printed for the same commands on 6.18.
        assert_eq!(gws, [ip("10.0.0.5"), ip("10.0.0.2"), ip("10.0.0.3")]);
        // A replayed add of an existing alias is refused like EEXIST.
        assert_eq!(
            s.apply(KernelEvent::NewRoute(r("10.0.0.2"), Prepend)),
            Change::NONE
        );
        assert_eq!(s.route_count(), 3);
        // Delete removes the matching alias, not the first.
        s.apply(KernelEvent::DelRoute(r("10.0.0.2")));
        let gws: Vec<_> = main_prefixes(&s)
            .into_iter()
            .map(|p| p.3.unwrap())
            .collect();
        assert_eq!(gws, [ip("10.0.0.5"), ip("10.0.0.3")]);
    }

    #[test]
    fn link_down_flushes_like_fib_sync_down_dev_and_up_revives() {
        let mut s = with_links();
        s.apply(KernelEvent::NewAddr(addr(2, "10.0.0.1", 24)));
        s.apply(KernelEvent::NewRoute(
            route("1.0.0.0/8", 0, vec![nh("10.0.0.2", 2)]),
            Prepend,
        ));
        s.apply(KernelEvent::NewRoute(
            route("3.0.0.0/8", 0, vec![nh("10.0.0.2", 2), nh("10.1.0.2", 3)]),
            Prepend,
        ));
        let mut local = route("10.0.0.1/32", 0, vec![nh("", 2)]);
        (local.table, local.kind, local.scope) = (RT_TABLE_LOCAL, RouteKind::Local, RT_SCOPE_HOST);
        s.apply(KernelEvent::NewRoute(local.clone(), Prepend));
        s.apply(KernelEvent::NewNeigh(neigh(
            2,
            "10.0.0.9",
            NudState::PERMANENT,
        )));
        s.apply(KernelEvent::NewNexthop(nh_obj(1, "10.0.0.2", 2)));
        let mut via_obj = route("4.0.0.0/8", 0, vec![]);
        via_obj.nh_id = Some(1);
        s.apply(KernelEvent::NewRoute(via_obj, Prepend));

        let change = s.apply(KernelEvent::NewLink(link(2, false, false)));
        assert!(
            change.contains(Change::LINKS | Change::ROUTES | Change::NEXTHOPS | Change::NEIGHS),
            "{change:?}"
        );
        // 1/8 gone, 4/8 gone with its object, 3/8 kept with a dead path, local route kept.
        assert!(
            s.route_aliases(&RouteKey::of(&route("1.0.0.0/8", 0, vec![])))
                .is_empty()
        );
        assert!(s.nexthops().is_empty());
        assert_eq!(s.main_routes().count(), 1);
        let mp = s.main_routes().next().unwrap();
        assert_eq!(
            (
                mp.nexthops[0].dead,
                mp.nexthops[0].linkdown,
                mp.nexthops[1].dead
            ),
            (true, true, false)
        );
        assert_eq!(s.table(RT_TABLE_LOCAL).count(), 1);
        assert!(
            s.neighs().is_empty(),
            "arp_ifdown flushes permanent entries too"
        );

        s.apply(KernelEvent::NewLink(link(2, true, true)));
        let mp = s.main_routes().next().unwrap();
        assert_eq!(
            (mp.nexthops[0].dead, mp.nexthops[0].linkdown),
            (false, false)
        );
    }

    #[test]
    fn carrier_loss_marks_linkdown_and_flushes_objects_but_keeps_routes() {
        let mut s = with_links();
        s.apply(KernelEvent::NewRoute(
            route("1.0.0.0/8", 0, vec![nh("10.0.0.2", 2)]),
            Prepend,
        ));
        s.apply(KernelEvent::NewNexthop(nh_obj(7, "10.0.0.2", 2)));
        s.apply(KernelEvent::NewNeigh(neigh(2, "10.0.0.8", NudState::STALE)));
        s.apply(KernelEvent::NewNeigh(neigh(
            2,
            "10.0.0.9",
            NudState::PERMANENT,
        )));
        s.apply(KernelEvent::NewLink(link(2, true, false)));
        let r = s.main_routes().next().unwrap();
        assert_eq!((r.nexthops[0].dead, r.nexthops[0].linkdown), (false, true));
        assert!(s.nexthops().is_empty());
        assert_eq!(
            s.neighs().len(),
            1,
            "neigh_carrier_down keeps permanent entries"
        );
        s.apply(KernelEvent::NewLink(link(2, true, true)));
        assert!(!s.main_routes().next().unwrap().nexthops[0].linkdown);
    }

    #[test]
    fn del_link_kills_every_route_touching_it_and_its_state() {
        let mut s = with_links();
        s.apply(KernelEvent::NewAddr(addr(3, "10.1.0.1", 24)));
        s.apply(KernelEvent::NewNeigh(neigh(
            3,
            "10.1.0.2",
            NudState::REACHABLE,
        )));
        s.apply(KernelEvent::NewRoute(
            route("3.0.0.0/8", 0, vec![nh("10.0.0.2", 2), nh("10.1.0.2", 3)]),
            Prepend,
        ));
        s.apply(KernelEvent::NewRoute(
            route("5.0.0.0/8", 0, vec![nh("10.0.0.2", 2)]),
            Prepend,
        ));
        let change = s.apply(KernelEvent::DelLink(3));
        assert!(
            change.contains(Change::LINKS | Change::ROUTES | Change::ADDRS | Change::NEIGHS),
            "{change:?}"
        );
        assert_eq!(
            main_prefixes(&s),
            vec![(ip("5.0.0.0"), 8, 0, Some(ip("10.0.0.2")))]
        );
        assert!(s.link(3).is_none() && s.addrs().next().is_none() && s.neighs().is_empty());
        // The kernel's own RTM_DELADDR/RTM_DELNEIGH arriving afterwards are no-ops.
        assert_eq!(
            s.apply(KernelEvent::DelAddr(addr(3, "10.1.0.1", 24))),
            Change::NONE
        );
        assert_eq!(
            s.apply(KernelEvent::DelNeigh(neigh(
                3,
                "10.1.0.2",
                NudState::REACHABLE
            ))),
            Change::NONE
        );
    }

    #[test]
    fn last_address_and_prefsrc_removal_flush_routes() {
        let mut s = with_links();
        s.apply(KernelEvent::NewAddr(addr(2, "10.0.0.1", 24)));
        s.apply(KernelEvent::NewAddr(addr(3, "10.1.0.1", 24)));
        let mut with_src = route("6.0.0.0/8", 0, vec![nh("10.0.0.2", 2)]);
        with_src.prefsrc = Some(ip("10.1.0.1"));
        s.apply(KernelEvent::NewRoute(with_src, Prepend));
        s.apply(KernelEvent::NewRoute(
            route("7.0.0.0/8", 0, vec![nh("10.1.0.2", 3)]),
            Prepend,
        ));
        s.apply(KernelEvent::NewRoute(
            route("8.0.0.0/8", 0, vec![nh("10.0.0.2", 2)]),
            Prepend,
        ));
        // Removing 10.1.0.1 (the last address of link 3): 6/8 goes (prefsrc), 7/8 goes (dev).
        let change = s.apply(KernelEvent::DelAddr(addr(3, "10.1.0.1", 24)));
        assert!(change.contains(Change::ADDRS | Change::ROUTES));
        assert_eq!(
            main_prefixes(&s),
            vec![(ip("8.0.0.0"), 8, 0, Some(ip("10.0.0.2")))]
        );
    }

    #[test]
    fn nexthop_deletion_cascades_through_groups_to_routes() {
        let mut s = with_links();
        s.apply(KernelEvent::NewNexthop(nh_obj(1, "10.0.0.2", 2)));
        s.apply(KernelEvent::NewNexthop(nh_obj(2, "10.1.0.2", 3)));
        s.apply(KernelEvent::NewNexthop(group(10, &[(1, 1), (2, 3)])));
        s.apply(KernelEvent::NewNexthop(group(11, &[(1, 1)])));
        for (p, id) in [("4.0.0.0/8", 1), ("5.0.0.0/8", 10), ("6.0.0.0/8", 11)] {
            let mut r = route(p, 0, vec![]);
            r.nh_id = Some(id);
            s.apply(KernelEvent::NewRoute(r, Prepend));
        }
        let r5 = s.main_routes().nth(1).unwrap().clone();
        match s.resolve(&r5) {
            Resolved::Paths(p) => assert_eq!(
                p.iter()
                    .map(|n| (n.gateway.unwrap(), n.ifindex, n.weight))
                    .collect::<Vec<_>>(),
                [(ip("10.0.0.2"), 2, 1), (ip("10.1.0.2"), 3, 3)]
            ),
            other => panic!("{other:?}"),
        }
        // `ip nexthop del id 1`: 4/8 goes, group 11 (only member) goes with 6/8, group 10 shrinks.
        let change = s.apply(KernelEvent::DelNexthop(1));
        assert_eq!(change, Change::NEXTHOPS | Change::ROUTES);
        assert_eq!(s.nexthops().keys().copied().collect::<Vec<_>>(), [2, 10]);
        assert_eq!(s.nexthops()[&10].group, [(2, 3)]);
        assert_eq!(
            main_prefixes(&s).iter().map(|p| p.0).collect::<Vec<_>>(),
            [ip("5.0.0.0")]
        );
        // The kernel's follow-up notifications are no-ops.
        assert_eq!(
            s.apply(KernelEvent::NewNexthop(group(10, &[(2, 3)]))),
            Change::NONE
        );
        assert_eq!(s.apply(KernelEvent::DelNexthop(11)), Change::NONE);
        assert_eq!(
            s.resolve(&route("9.9.9.9/32", 0, vec![])),
            Resolved::Paths(Cow::Borrowed(&[][..]))
        );
        let mut missing = route("9.0.0.0/8", 0, vec![]);
        missing.nh_id = Some(99);
        assert_eq!(s.resolve(&missing), Resolved::Missing(99));
    }

    #[test]
    fn blackhole_object_routes_are_stored_as_unicast_and_resolve_to_blackhole() {
        let mut s = with_links();
        s.apply(KernelEvent::NewNexthop(NexthopObject {
            blackhole: true,
            gateway: None,
            ..nh_obj(3, "0.0.0.0", 0)
        }));
        let mut r = route("6.0.0.0/8", 0, vec![]);
        (r.nh_id, r.kind) = (Some(3), RouteKind::Blackhole);
        s.apply(KernelEvent::NewRoute(r.clone(), Prepend));
        let stored = s.main_routes().next().unwrap().clone();
        assert_eq!(stored.kind, RouteKind::Unicast);
        assert_eq!(s.resolve(&stored), Resolved::Blackhole);
        // The kernel reports it as blackhole in a dump too: replace_all normalizes the same way.
        let dumped = KernelState::from_dump([
            KernelEvent::NewLink(link(2, true, true)),
            KernelEvent::NewLink(link(3, true, true)),
            KernelEvent::NewRoute(r.clone(), Append),
            KernelEvent::NewNexthop(s.nexthops()[&3].clone()),
        ]);
        assert_eq!(dumped, s);
        // Deleting it with the kernel's report finds it.
        s.apply(KernelEvent::DelRoute(r));
        assert_eq!(s.route_count(), 0);
        // Link down never flushes blackhole objects (they hang off lo).
        s.apply(KernelEvent::NewLink(link(2, false, false)));
        assert!(s.nexthops().contains_key(&3));
    }

    #[test]
    fn replace_all_reports_only_what_differs() {
        let events = vec![
            KernelEvent::NewLink(link(2, true, true)),
            KernelEvent::NewAddr(addr(2, "10.0.0.1", 24)),
            KernelEvent::NewRoute(route("1.0.0.0/8", 0, vec![nh("10.0.0.2", 2)]), Append),
            KernelEvent::NewNeigh(neigh(2, "10.0.0.2", NudState::REACHABLE)),
        ];
        let mut s = KernelState::new();
        assert_eq!(
            s.replace_all(events.clone()),
            Change::LINKS | Change::ADDRS | Change::ROUTES | Change::NEIGHS
        );
        assert_eq!(s.replace_all(events.clone()), Change::NONE);
        let mut fewer = events;
        fewer.pop();
        assert_eq!(s.replace_all(fewer), Change::NEIGHS);
        assert_eq!(s.apply(KernelEvent::Overrun), Change::RESYNC);
    }

    #[test]
    fn local_addrs_has_addresses_and_directed_broadcasts() {
        let mut s = with_links();
        s.apply(KernelEvent::NewAddr(addr(2, "10.0.0.1", 24)));
        s.apply(KernelEvent::NewAddr(Addr {
            flags: IFA_F_SECONDARY,
            ..addr(2, "10.0.0.5", 24)
        }));
        s.apply(KernelEvent::NewAddr(addr(3, "192.0.2.1", 31)));
        s.apply(KernelEvent::NewAddr(Addr {
            broadcast: Some(ip("172.16.0.255")),
            ..addr(3, "172.16.0.1", 16)
        }));
        s.apply(KernelEvent::NewAddr(Addr {
            peer: Some(ip("10.9.0.2")),
            ..addr(3, "10.9.0.1", 32)
        }));
        let want: BTreeSet<Ipv4Addr> = [
            "10.0.0.1",
            "10.0.0.5",
            "10.0.0.255",
            "192.0.2.1",
            "172.16.0.1",
            "172.16.0.255",
            "172.16.255.255",
            "10.9.0.1",
        ]
        .into_iter()
        .map(ip)
        .collect();
        assert_eq!(s.local_addrs(), want);
        assert_eq!(s.link_by_name("eth3").map(|l| l.ifindex), Some(3));
    }

    #[test]
    fn point_to_point_addresses_with_distinct_peers_are_distinct() {
        let mut s = with_links();
        s.apply(KernelEvent::NewAddr(Addr {
            peer: Some(ip("10.9.0.2")),
            ..addr(3, "10.9.0.1", 32)
        }));
        s.apply(KernelEvent::NewAddr(Addr {
            peer: Some(ip("10.9.0.3")),
            ..addr(3, "10.9.0.1", 32)
        }));
        assert_eq!(s.addrs().count(), 2);
        s.apply(KernelEvent::DelAddr(Addr {
            peer: Some(ip("10.9.0.2")),
            ..addr(3, "10.9.0.1", 32)
        }));
        assert_eq!(s.addrs().next().unwrap().peer, Some(ip("10.9.0.3")));
    }

    #[test]
    fn change_debug_names_flags() {
        assert_eq!(
            format!("{:?}", Change::ROUTES | Change::NEIGHS),
            "ROUTES|NEIGHS"
        );
        assert_eq!(format!("{:?}", Change::NONE), "NONE");
        assert!(Change::ALL.contains(Change::NEXTHOPS) && !Change::ALL.contains(Change::RESYNC));
    }
}

//! The forwarding information base the workers read: routes, next hops and their L2 rewrites.
//!
//! ```text
//!              Fib snapshot (published whole, RCU-style: workers load one per batch)
//!   ┌──────────────────────────────────────────────────────────────────────────────┐
//!   │ routes: Arc<RouteTable>  (rebuilt when routes, addresses or links change)      │
//!   │    lpm: prefix ──► entry index ──► FibEntry::{Gateway{nh}, Attached{port},     │
//!   │                                     Local, Blackhole, Unreachable, Prohibit, ..}│
//!   │    nexthops[nh] = (egress port, gateway address)                               │
//!   │ adj: Arc<AdjTable>       (rebuilt alone when only neighbours change)           │
//!   │    gateways[nh] = Adj { state, 14-byte L2 header, mtu }     (Linux hh_cache)   │
//!   │    hosts[(port, addr)] = Adj  for hosts on attached subnets                    │
//!   │ ports: Arc<[PortInfo]>   the interfaces xfwd drives, index = port id           │
//!   └──────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! The split mirrors Linux: `fib_lookup` yields a `fib_nh` (gateway + device), and
//! `neigh_output` finds the cached hardware header separately, so ARP churn never rebuilds the
//! route table (a full table takes seconds to build; a neighbour update must take microseconds).

pub mod dir16;
pub mod lpm;
pub mod multipath;
pub mod rib;

use std::net::Ipv4Addr;
use std::sync::Arc;

pub use dir16::{Dir16, Grace};
pub use lpm::{FastMap, Lpm};
pub use multipath::{MP_BUCKETS, MpGroup, MultipathHash, flow_hash};
pub use rib::{Rib, RibError};

use crate::drop::DropReason;

/// Index of an interface xfwd drives, in `--iface` order. Every worker has one socket per port.
pub type PortId = u16;

/// Most interfaces one xfwd instance drives (the XDP program's slot space).
pub const MAX_PORTS: usize = 64;

/// Ethernet header length, and the size of a prebuilt L2 rewrite.
pub const L2_LEN: usize = 14;

/// An interface xfwd drives, as the kernel describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// Kernel interface index.
    pub ifindex: u32,
    /// Interface name.
    pub name: String,
    /// The interface's MAC address: source of every frame xfwd sends on it.
    pub mac: [u8; 6],
    /// Interface MTU (IPv4 packets larger than this are not sent as they are).
    pub mtu: u32,
    /// Whether the link is administratively up and has carrier.
    pub up: bool,
}

/// A next hop on a port: the address whose MAC the frame is sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NextHopKey {
    /// Egress port.
    pub port: PortId,
    /// Next-hop IPv4 address, host order: the gateway, or the destination on attached subnets.
    pub ip: u32,
}

impl NextHopKey {
    /// Packs the key into one integer (hash key).
    #[inline]
    pub const fn packed(self) -> u64 {
        ((self.port as u64) << 32) | self.ip as u64
    }
}

/// What a route says to do with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FibEntry {
    /// Send via a gateway: index into [`RouteTable::nexthops`].
    Gateway {
        /// Next-hop index.
        nh: u32,
    },
    /// Destination is on a subnet attached to this port: the next hop is the destination.
    Attached {
        /// Egress port.
        port: PortId,
    },
    /// One of the router's own addresses (or a subnet broadcast): the kernel's business.
    Local,
    /// `blackhole`: discard silently.
    Blackhole,
    /// `unreachable`: discard, ICMP net unreachable.
    Unreachable,
    /// `prohibit`: discard, ICMP administratively prohibited.
    Prohibit,
    /// Unicast route out of an interface xfwd does not drive.
    NotManaged,
    /// The directed broadcast address of a connected subnet (RFC 1812 §5.3.5.2).
    Broadcast,
    /// Send via one of several gateways (ECMP), chosen by the packet's flow hash: index into
    /// [`RouteTable::groups`].
    Multipath {
        /// Group index.
        group: u32,
    },
}

/// The kernel route types the FIB distinguishes (`RTN_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteType {
    /// `RTN_UNICAST`.
    Unicast,
    /// `RTN_BLACKHOLE`.
    Blackhole,
    /// `RTN_UNREACHABLE`.
    Unreachable,
    /// `RTN_PROHIBIT`.
    Prohibit,
    /// `RTN_LOCAL` (and broadcast): delivered to the router itself.
    Local,
}

/// A next hop of a route, as the kernel gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteNextHop {
    /// Gateway address; `None` for a directly attached route.
    pub gateway: Option<Ipv4Addr>,
    /// Egress interface.
    pub ifindex: u32,
    /// ECMP weight (1 for a single path; `rtnh_hops + 1`, or the group member's weight).
    pub weight: u16,
}

/// One route to install: the best kernel route for its prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInput {
    /// Destination prefix.
    pub dst: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub len: u8,
    /// Route type.
    pub kind: RouteType,
    /// Next hops (unicast routes). Two or more gateways on ports xfwd drives make a
    /// [`FibEntry::Multipath`] entry; otherwise the first next hop is used.
    pub nexthops: Vec<RouteNextHop>,
    /// The route's `mtu` metric (`RTAX_MTU`), 0 when it has none.
    pub mtu: u32,
}

/// A neighbour (ARP) entry, as the kernel gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighInput {
    /// Interface.
    pub ifindex: u32,
    /// Neighbour address.
    pub ip: Ipv4Addr,
    /// Link-layer address, when known.
    pub mac: Option<[u8; 6]>,
    /// `NUD_VALID`: the MAC may be used to send.
    pub valid: bool,
    /// `NUD_FAILED`: resolution failed.
    pub failed: bool,
    /// `NUD_STALE`: usable, but the kernel wants traffic through it to trigger a confirmation.
    pub stale: bool,
}

/// The route half of a snapshot: the lookup structure (shared with the [`RouteSet`] that updates
/// it in place) and the entries its results name.
#[derive(Debug, Default)]
pub struct RouteTable {
    /// `None` only for the empty table before the first build.
    dir: Option<Arc<Dir16>>,
    /// Held while this snapshot is in use: chunks retired after it was published are not reused
    /// until every holder is gone.
    grace: Arc<Grace>,
    entries: Arc<[FibEntry]>,
    /// The route's `mtu` metric per entry (`RTAX_MTU`), 0 = the device's.
    mtus: Arc<[u32]>,
    /// Some entry has an `mtu` metric.
    any_mtu: bool,
    nexthops: Arc<[NextHopKey]>,
    /// ECMP groups, index = `FibEntry::Multipath::group`.
    groups: Arc<[MpGroup]>,
    prefixes: usize,
}

/// Resolution state of a next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdjState {
    /// The MAC is known: `l2` is the frame header to write.
    Resolved,
    /// Not known yet (no entry, or incomplete).
    Incomplete,
    /// The kernel gave up resolving it (`NUD_FAILED`).
    Failed,
}

/// A next hop's L2 rewrite: Linux's `hh_cache`, VPP's `ip_adjacency_t` rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Adj {
    /// Resolution state; `l2` is meaningful only when `Resolved`.
    pub state: AdjState,
    /// Egress port.
    pub port: PortId,
    /// Egress MTU.
    pub mtu: u32,
    /// The next hop's address, host order.
    pub ip: u32,
    /// The kernel's entry is `STALE`: forwarding through it should ask the kernel to confirm it,
    /// as Linux's `neigh_event_send` does for its own traffic.
    pub stale: bool,
    /// Destination MAC, source MAC (the port's), EtherType IPv4.
    pub l2: [u8; L2_LEN],
}

impl Adj {
    /// The next hop this rewrite belongs to.
    #[inline]
    pub fn key(&self) -> NextHopKey {
        NextHopKey {
            port: self.port,
            ip: self.ip,
        }
    }
}

/// The neighbour half of a snapshot.
#[derive(Debug, Default)]
pub struct AdjTable {
    gateways: Vec<Adj>,
    hosts: FastMap<u64, Adj>,
}

/// One of the router's IPv4 addresses on a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortAddr {
    /// The address, host order.
    pub addr: u32,
    /// Prefix length of its subnet.
    pub prefix_len: u8,
    /// `IFA_F_SECONDARY`: never chosen as a source (Linux `inet_select_addr`).
    pub secondary: bool,
}

/// The router's own addresses: per port (to pick the source of ICMP errors and record-route
/// entries) and all of them (martian source check).
#[derive(Debug, Default, Clone)]
pub struct IfAddrs {
    /// Index = port id, in the kernel's order.
    pub ports: Vec<Vec<PortAddr>>,
    /// Every local IPv4 address of the namespace, host order, sorted.
    pub local: Vec<u32>,
    /// The directed broadcast addresses of the namespace's subnets, host order, sorted.
    pub bcast: Vec<u32>,
    /// One bit per [`filter_bit`] of every local and broadcast address: a one-instruction
    /// "certainly not special" test for the forwarding fast path.
    filter: u64,
}

/// The bit of an address in [`IfAddrs`]' filter.
#[inline(always)]
const fn filter_bit(addr: u32) -> u64 {
    1 << (addr.wrapping_mul(0x9e37_79b1) >> 26)
}

impl IfAddrs {
    /// The addresses of each port, every local address and every directed broadcast address
    /// (host order; the lists are sorted here).
    pub fn new(ports: Vec<Vec<PortAddr>>, mut local: Vec<u32>, mut bcast: Vec<u32>) -> Self {
        local.sort_unstable();
        local.dedup();
        bcast.sort_unstable();
        bcast.dedup();
        let filter = local
            .iter()
            .chain(bcast.iter())
            .fold(0, |f, a| f | filter_bit(*a));
        IfAddrs {
            ports,
            local,
            bcast,
            filter,
        }
    }

    /// Whether `addr` may be local or a directed broadcast (no false negatives): the fast-path
    /// test; [`Self::is_local`] and [`Self::is_bcast`] say which.
    #[inline(always)]
    pub fn maybe_special(&self, addr: u32) -> bool {
        self.filter & filter_bit(addr) != 0
    }
}

impl IfAddrs {
    /// Linux `inet_select_addr(dev, dst, scope)`: the first primary address of `port` whose
    /// subnet holds `dst`, else the first primary address; `None` when the port has none.
    pub fn select(&self, port: PortId, dst: u32) -> Option<u32> {
        let addrs = self.ports.get(usize::from(port))?;
        let mut first = None;
        for a in addrs.iter().filter(|a| !a.secondary) {
            let mask = if a.prefix_len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(a.prefix_len.min(32)))
            };
            if dst != 0 && (dst ^ a.addr) & mask == 0 {
                return Some(a.addr);
            }
            first.get_or_insert(a.addr);
        }
        first
    }

    /// Whether `addr` (host order) is one of the router's own addresses.
    #[inline]
    pub fn is_local(&self, addr: u32) -> bool {
        contains(&self.local, addr)
    }

    /// Whether `addr` (host order) is a directed broadcast address of a local subnet.
    #[inline]
    pub fn is_bcast(&self, addr: u32) -> bool {
        contains(&self.bcast, addr)
    }
}

#[inline]
fn contains(sorted: &[u32], addr: u32) -> bool {
    if sorted.len() <= 8 {
        sorted.contains(&addr)
    } else {
        sorted.binary_search(&addr).is_ok()
    }
}

/// One immutable forwarding snapshot. Workers hold an `Arc<Fib>` for one batch at a time.
#[derive(Debug, Default)]
pub struct Fib {
    /// Routes.
    pub routes: Arc<RouteTable>,
    /// Neighbour rewrites.
    pub adj: Arc<AdjTable>,
    /// The ports, index = [`PortId`].
    pub ports: Arc<[PortInfo]>,
    /// Incremented on every publish; workers compare it to notice a new snapshot.
    pub generation: u64,
    /// The router's own addresses.
    pub addrs: Arc<IfAddrs>,
}

/// Where a looked-up packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Send on `adj.port` with `adj.l2`.
    Forward(&'a Adj),
    /// The next hop has no MAC yet: hold the packet and ask the kernel to resolve `key`.
    Resolve {
        /// The next hop to resolve.
        key: NextHopKey,
        /// Egress MTU, so MTU checks run before the packet is queued.
        mtu: u32,
    },
    /// Not forwarded.
    Drop(DropReason),
}

/// The lookup result meaning "no route" (no entry index is this large).
pub const NO_ROUTE: u32 = dir16::MISS;

/// The control-plane side of the route table: every prefix (the [`Rib`]), the entries and next
/// hops their values name, and how to change one prefix in place.
#[derive(Debug)]
pub struct RouteSet {
    rib: Rib,
    entries: Vec<FibEntry>,
    /// The `mtu` metric of each entry (0: the device's).
    mtus: Vec<u32>,
    entry_ids: std::collections::HashMap<(FibEntry, u32), u32>,
    nexthops: Vec<NextHopKey>,
    nh_ids: FastMap<u64, u32>,
    groups: Vec<MpGroup>,
    /// Group index by its members (next-hop key, weight), sorted.
    group_ids: std::collections::HashMap<Vec<(u64, u16)>, u32>,
    /// Kernel ifindex of each port.
    ifindexes: Vec<u32>,
    /// The router's own addresses: their /32 is `Local` whatever the routes say.
    local: std::collections::HashSet<u32>,
    /// Directed broadcast addresses of connected subnets (not local): /32 `Broadcast`.
    broadcasts: Vec<u32>,
    /// `local` and `broadcasts`: /32s routes never override.
    special: std::collections::HashSet<u32>,
    /// The entries and next hops as last published (they only grow between full builds).
    shared: Option<Shared>,
}

/// The entries and next hops a snapshot shares with its successors.
type Shared = (
    Arc<[FibEntry]>,
    Arc<[u32]>,
    Arc<[NextHopKey]>,
    Arc<[MpGroup]>,
);

/// What [`RouteSet::set`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOutcome {
    /// The prefix was changed in place (or already had that answer).
    Done,
    /// The route names an entry or next hop the published snapshot does not know: readers of
    /// the current snapshot could not interpret it, so the caller rebuilds the table instead.
    NeedsRebuild,
}

impl RouteSet {
    /// Builds the route set from the best route of each prefix, the router's own addresses and
    /// the ports. Routes for prefixes longer than 32 are skipped (the kernel never sends them).
    ///
    /// # Errors
    ///
    /// When the lookup structure cannot be reserved or is full.
    pub fn build(
        routes: impl IntoIterator<Item = RouteInput>,
        local: impl IntoIterator<Item = Ipv4Addr>,
        ports: &[PortInfo],
    ) -> Result<Self, RibError> {
        Self::build_with_broadcasts(routes, local, std::iter::empty(), ports)
    }

    /// [`Self::build`], plus the directed broadcast addresses of connected subnets (host routes
    /// of type [`FibEntry::Broadcast`], Linux's `RTN_BROADCAST` routes of the local table).
    ///
    /// # Errors
    ///
    /// As [`Self::build`].
    pub fn build_with_broadcasts(
        routes: impl IntoIterator<Item = RouteInput>,
        local: impl IntoIterator<Item = Ipv4Addr>,
        broadcasts: impl IntoIterator<Item = Ipv4Addr>,
        ports: &[PortInfo],
    ) -> Result<Self, RibError> {
        let local: std::collections::HashSet<u32> =
            local.into_iter().map(Ipv4Addr::to_bits).collect();
        let broadcasts: Vec<u32> = broadcasts
            .into_iter()
            .map(Ipv4Addr::to_bits)
            .filter(|b| !local.contains(b))
            .collect();
        let mut t = RouteSet {
            rib: Rib::new()?,
            entries: Vec::new(),
            mtus: Vec::new(),
            entry_ids: Default::default(),
            nexthops: Vec::new(),
            nh_ids: FastMap::default(),
            groups: Vec::new(),
            group_ids: Default::default(),
            ifindexes: ports.iter().map(|p| p.ifindex).collect(),
            special: local.iter().chain(&broadcasts).copied().collect(),
            local,
            broadcasts,
            shared: None,
        };
        let mut prefixes: Vec<(u32, u8, u32)> = Vec::new();
        for r in routes {
            if r.len > 32 || (r.len == 32 && t.special.contains(&r.dst.to_bits())) {
                continue;
            }
            let entry = t.entry_for(&r, true);
            prefixes.push((r.dst.to_bits(), r.len, t.intern(entry, r.mtu)));
        }
        let bcast_id = t.intern(FibEntry::Broadcast, 0);
        prefixes.extend(t.broadcasts.iter().map(|&a| (a, 32, bcast_id)));
        let local_id = t.intern(FibEntry::Local, 0);
        prefixes.extend(t.local.iter().map(|&a| (a, 32, local_id)));
        // Shortest first: each prefix then writes only the slots it owns.
        prefixes.sort_by_key(|r| r.1);
        for (p, l, v) in prefixes {
            t.rib.insert(p, l, v)?;
        }
        Ok(t)
    }

    /// What a route says to do, interning its next hop when `add` (else a next hop not yet
    /// known is reported as `None`).
    fn entry_for_opt(&mut self, r: &RouteInput, add: bool) -> Option<FibEntry> {
        Some(match r.kind {
            RouteType::Blackhole => FibEntry::Blackhole,
            RouteType::Unreachable => FibEntry::Unreachable,
            RouteType::Prohibit => FibEntry::Prohibit,
            RouteType::Local => FibEntry::Local,
            RouteType::Unicast if r.nexthops.len() > 1 && self.multipath_ok(r) => {
                return self.multipath_entry(r, add);
            }
            RouteType::Unicast => match r.nexthops.first() {
                None => FibEntry::Unreachable,
                Some(nh) => match self.ifindexes.iter().position(|&i| i == nh.ifindex) {
                    None => FibEntry::NotManaged,
                    Some(port) => match nh.gateway {
                        None => FibEntry::Attached {
                            port: port as PortId,
                        },
                        Some(gw) => {
                            let key = NextHopKey {
                                port: port as PortId,
                                ip: gw.to_bits(),
                            };
                            FibEntry::Gateway {
                                nh: self.nexthop_id(key, add)?,
                            }
                        }
                    },
                },
            },
        })
    }

    /// The index of next hop `key`, interned when `add`.
    fn nexthop_id(&mut self, key: NextHopKey, add: bool) -> Option<u32> {
        match self.nh_ids.get(&key.packed()) {
            Some(&id) => Some(id),
            None if add => {
                self.nexthops.push(key);
                let id = (self.nexthops.len() - 1) as u32;
                self.nh_ids.insert(key.packed(), id);
                Some(id)
            }
            None => None,
        }
    }

    /// Whether a route with several next hops becomes an ECMP group: every path a gateway on a
    /// port xfwd drives. A route mixing in attached or foreign paths keeps using its first path
    /// (flows hashed to a path xfwd cannot send on would have nowhere to go).
    fn multipath_ok(&self, r: &RouteInput) -> bool {
        r.nexthops
            .iter()
            .all(|nh| nh.gateway.is_some() && self.ifindexes.contains(&nh.ifindex))
    }

    /// The [`FibEntry::Multipath`] entry of `r` (see [`Self::multipath_ok`]), interning its
    /// next hops and group when `add`.
    fn multipath_entry(&mut self, r: &RouteInput, add: bool) -> Option<FibEntry> {
        let mut members: Vec<(NextHopKey, u16)> = Vec::with_capacity(r.nexthops.len());
        for nh in &r.nexthops {
            let port = self.ifindexes.iter().position(|&i| i == nh.ifindex)? as PortId;
            let key = NextHopKey {
                port,
                ip: nh.gateway?.to_bits(),
            };
            // The same gateway twice counts once, with the weights added.
            match members.iter_mut().find(|m| m.0 == key) {
                Some(m) => m.1 = m.1.saturating_add(nh.weight.max(1)),
                None => members.push((key, nh.weight.max(1))),
            }
        }
        members.sort_unstable();
        if members.len() == 1 {
            return Some(FibEntry::Gateway {
                nh: self.nexthop_id(members[0].0, add)?,
            });
        }
        let ids: Vec<(u64, u16)> = members.iter().map(|m| (m.0.packed(), m.1)).collect();
        if let Some(&g) = self.group_ids.get(&ids) {
            return Some(FibEntry::Multipath { group: g });
        }
        if !add {
            return None;
        }
        let nhs: Vec<(u32, u64, u16)> = members
            .iter()
            .map(|&(k, w)| Some((self.nexthop_id(k, true)?, k.packed(), w)))
            .collect::<Option<_>>()?;
        self.groups.push(MpGroup::new(&nhs));
        let g = (self.groups.len() - 1) as u32;
        self.group_ids.insert(ids, g);
        Some(FibEntry::Multipath { group: g })
    }

    fn entry_for(&mut self, r: &RouteInput, add: bool) -> FibEntry {
        self.entry_for_opt(r, add).unwrap_or(FibEntry::Unreachable)
    }

    fn intern(&mut self, e: FibEntry, mtu: u32) -> u32 {
        if let Some(&id) = self.entry_ids.get(&(e, mtu)) {
            return id;
        }
        self.entries.push(e);
        self.mtus.push(mtu);
        let id = (self.entries.len() - 1) as u32;
        self.entry_ids.insert((e, mtu), id);
        id
    }

    /// Sets the route of `dst/len` in place: `Some(route)` installs or replaces it, `None`
    /// removes it (its addresses go to the covering prefix). Lookups running concurrently see
    /// each address answered by either the old or the new route.
    ///
    /// # Errors
    ///
    /// When the lookup structure refuses the change (full, or a bad length).
    pub fn set(
        &mut self,
        dst: Ipv4Addr,
        len: u8,
        route: Option<&RouteInput>,
    ) -> Result<SetOutcome, RibError> {
        let p = dst.to_bits();
        if len > 32 || (len == 32 && self.special.contains(&p)) {
            return Ok(SetOutcome::Done);
        }
        let Some(r) = route else {
            self.rib.remove(p, len)?;
            return Ok(SetOutcome::Done);
        };
        let Some(entry) = self.entry_for_opt(r, false) else {
            return Ok(SetOutcome::NeedsRebuild);
        };
        let Some(&id) = self.entry_ids.get(&(entry, r.mtu)) else {
            return Ok(SetOutcome::NeedsRebuild);
        };
        if self.rib.get(p, len) != Some(id) {
            self.rib.insert(p, len, id)?;
        }
        Ok(SetOutcome::Done)
    }

    /// A snapshot for readers: ends the current grace period (reclaiming chunks no reader can
    /// still see) and hands out the next one.
    pub fn snapshot(&mut self) -> RouteTable {
        let grace = self.rib.dir().publish_grace();
        let (entries, mtus, nexthops, groups) = match &self.shared {
            Some((e, m, n, g))
                if e.len() == self.entries.len()
                    && n.len() == self.nexthops.len()
                    && g.len() == self.groups.len() =>
            {
                (e.clone(), m.clone(), n.clone(), g.clone())
            }
            _ => {
                let e: Arc<[FibEntry]> = self.entries.as_slice().into();
                let m: Arc<[u32]> = self.mtus.as_slice().into();
                let n: Arc<[NextHopKey]> = self.nexthops.as_slice().into();
                let g: Arc<[MpGroup]> = self.groups.as_slice().into();
                self.shared = Some((e.clone(), m.clone(), n.clone(), g.clone()));
                (e, m, n, g)
            }
        };
        RouteTable {
            dir: Some(self.rib.dir().clone()),
            grace,
            any_mtu: mtus.iter().any(|&m| m != 0),
            entries,
            mtus,
            nexthops,
            groups,
            prefixes: self.rib.len(),
        }
    }

    /// The RIB.
    pub fn rib(&self) -> &Rib {
        &self.rib
    }
}

impl RouteTable {
    /// Builds the route half from the best route of each prefix, the router's own addresses and
    /// the ports (see [`RouteSet::build`]).
    ///
    /// # Errors
    ///
    /// As [`RouteSet::build`].
    pub fn build(
        routes: impl IntoIterator<Item = RouteInput>,
        local: impl IntoIterator<Item = Ipv4Addr>,
        ports: &[PortInfo],
    ) -> Result<Self, RibError> {
        Ok(RouteSet::build(routes, local, ports)?.snapshot())
    }

    /// [`Self::build`], plus the directed broadcast addresses of connected subnets (see
    /// [`RouteSet::build_with_broadcasts`]).
    ///
    /// # Errors
    ///
    /// As [`RouteSet::build`].
    pub fn build_with_broadcasts(
        routes: impl IntoIterator<Item = RouteInput>,
        local: impl IntoIterator<Item = Ipv4Addr>,
        broadcasts: impl IntoIterator<Item = Ipv4Addr>,
        ports: &[PortInfo],
    ) -> Result<Self, RibError> {
        Ok(RouteSet::build_with_broadcasts(routes, local, broadcasts, ports)?.snapshot())
    }

    /// Entry index for `dst` (host order), or [`NO_ROUTE`].
    #[inline]
    pub fn lookup(&self, dst: u32) -> u32 {
        self.dir.as_ref().map_or(NO_ROUTE, |d| d.lookup(dst))
    }

    /// Looks up a batch of destinations (host order) into entry indexes.
    ///
    /// # Panics
    ///
    /// If `out` is shorter than `dsts`.
    #[inline]
    pub fn lookup_batch(&self, dsts: &[u32], out: &mut [u32]) {
        match &self.dir {
            Some(d) => d.lookup_batch(dsts, out),
            None => out[..dsts.len()].fill(NO_ROUTE),
        }
    }

    /// The entry an index from [`Self::lookup`] names; `None` for [`NO_ROUTE`].
    #[inline]
    pub fn entry(&self, id: u32) -> Option<FibEntry> {
        self.entries.get(id as usize).copied()
    }

    /// The forwarding MTU of entry `id` given the egress device's `dev_mtu`: the route's `mtu`
    /// metric when it has one (Linux `ip_dst_mtu_maybe_forward`), never above the device's.
    #[inline]
    pub fn mtu(&self, id: u32, dev_mtu: u32) -> u32 {
        if !self.any_mtu {
            return dev_mtu;
        }
        match self.mtus.get(id as usize) {
            Some(&m) if m != 0 => m.min(dev_mtu),
            _ => dev_mtu,
        }
    }

    /// The gateway next hops routes point at, index = `FibEntry::Gateway::nh`.
    pub fn nexthops(&self) -> &[NextHopKey] {
        &self.nexthops
    }

    /// The ECMP groups multipath routes point at, index = `FibEntry::Multipath::group`.
    pub fn groups(&self) -> &[MpGroup] {
        &self.groups
    }

    /// Entry `id` for people: `Gateway via GW port P`, `Multipath via A port P (weight W), ...`,
    /// `Attached port P`, or the route type (`xfwd show routes ADDRESS`).
    pub fn describe(&self, id: u32) -> Option<String> {
        let via = |nh: u32| {
            self.nexthops.get(nh as usize).map_or_else(
                || format!("next hop #{nh}"),
                |k| format!("via {} port {}", Ipv4Addr::from_bits(k.ip), k.port),
            )
        };
        Some(match self.entry(id)? {
            FibEntry::Gateway { nh } => format!("Gateway {}", via(nh)),
            FibEntry::Attached { port } => format!("Attached port {port}"),
            FibEntry::Multipath { group } => match self.groups.get(group as usize) {
                Some(g) => format!(
                    "Multipath {}",
                    g.members()
                        .iter()
                        .map(|&(nh, w)| format!("{} (weight {w})", via(nh)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => format!("Multipath group #{group}"),
            },
            e => format!("{e:?}"),
        })
    }

    /// Number of prefixes installed (routes plus local addresses).
    pub fn prefixes(&self) -> usize {
        self.prefixes
    }

    /// The grace period this snapshot holds open.
    pub fn grace(&self) -> &Arc<Grace> {
        &self.grace
    }

    /// Bytes of the lookup structure.
    pub fn lookup_bytes(&self) -> usize {
        self.dir.as_ref().map_or(0, |d| d.bytes())
    }
}

impl AdjTable {
    /// Builds the neighbour half for `routes`' gateways and for every neighbour on a port.
    pub fn build(
        routes: &RouteTable,
        neighs: impl IntoIterator<Item = NeighInput>,
        ports: &[PortInfo],
    ) -> Self {
        let mut hosts: FastMap<u64, Adj> = FastMap::default();
        for n in neighs {
            let Some(port) = ports.iter().position(|p| p.ifindex == n.ifindex) else {
                continue;
            };
            let port = port as PortId;
            let key = NextHopKey {
                port,
                ip: n.ip.to_bits(),
            };
            hosts.insert(key.packed(), adj_for(&ports[port as usize], key, &n));
        }
        let gateways = routes
            .nexthops
            .iter()
            .map(|key| {
                hosts
                    .get(&key.packed())
                    .copied()
                    .unwrap_or_else(|| incomplete(ports, *key))
            })
            .collect();
        AdjTable { gateways, hosts }
    }

    /// The rewrite for a next hop, resolved or not.
    #[inline]
    pub fn host(&self, key: NextHopKey, ports: &[PortInfo]) -> Adj {
        self.hosts
            .get(&key.packed())
            .copied()
            .unwrap_or_else(|| incomplete(ports, key))
    }

    /// Number of neighbours known.
    pub fn neighbours(&self) -> usize {
        self.hosts.len()
    }
}

fn incomplete(ports: &[PortInfo], key: NextHopKey) -> Adj {
    Adj {
        state: AdjState::Incomplete,
        port: key.port,
        mtu: ports.get(usize::from(key.port)).map_or(0, |p| p.mtu),
        ip: key.ip,
        stale: false,
        l2: [0; L2_LEN],
    }
}

fn adj_for(p: &PortInfo, key: NextHopKey, n: &NeighInput) -> Adj {
    let mut adj = incomplete(std::slice::from_ref(p), NextHopKey { port: 0, ..key });
    adj.port = key.port;
    match (n.valid, n.mac) {
        (true, Some(mac)) => {
            adj.state = AdjState::Resolved;
            adj.stale = n.stale;
            adj.l2[..6].copy_from_slice(&mac);
            adj.l2[6..12].copy_from_slice(&p.mac);
            adj.l2[12..].copy_from_slice(&0x0800u16.to_be_bytes());
        }
        _ if n.failed => adj.state = AdjState::Failed,
        _ => {}
    }
    adj
}

impl Fib {
    /// Where a packet to `dst` (host order) goes, given its lookup result `entry`; a multipath
    /// route picks its path by the hash of the addresses `(0, dst)` (Linux's hash of a flow whose
    /// source is not chosen yet). The pipeline uses [`Self::verdict_hashed`].
    #[inline(always)]
    pub fn verdict(&self, entry: u32, dst: u32) -> Verdict<'_> {
        self.verdict_hashed(entry, dst, || flow_hash(0, dst, 0))
    }

    /// [`Self::verdict`], with the flow hash of the packet (see [`flow_hash`]): computed only
    /// when `entry` is a multipath route. Always inlined: as an out-of-line call it cost ~21
    /// instructions a packet (callgrind, `xfwd-bench pipeline`).
    #[inline(always)]
    pub fn verdict_hashed(&self, entry: u32, dst: u32, hash: impl FnOnce() -> u32) -> Verdict<'_> {
        let adj = match self.routes.entry(entry) {
            None => return Verdict::Drop(DropReason::NoRoute),
            Some(FibEntry::Gateway { nh }) => {
                let adj = &self.adj.gateways[nh as usize];
                if adj.state == AdjState::Resolved {
                    return Verdict::Forward(adj);
                }
                return Verdict::Resolve {
                    key: self.routes.nexthops[nh as usize],
                    mtu: adj.mtu,
                };
            }
            Some(FibEntry::Attached { port }) => {
                let key = NextHopKey { port, ip: dst };
                match self.adj.hosts.get(&key.packed()) {
                    Some(adj) if adj.state == AdjState::Resolved => adj,
                    _ => {
                        let mtu = self.ports.get(port as usize).map_or(0, |p| p.mtu);
                        return Verdict::Resolve { key, mtu };
                    }
                }
            }
            Some(FibEntry::Local) => return Verdict::Drop(DropReason::RouteLocal),
            Some(FibEntry::Blackhole) => return Verdict::Drop(DropReason::RouteBlackhole),
            Some(FibEntry::Unreachable) => return Verdict::Drop(DropReason::RouteUnreachable),
            Some(FibEntry::Prohibit) => return Verdict::Drop(DropReason::RouteProhibit),
            Some(FibEntry::NotManaged) => return Verdict::Drop(DropReason::EgressNotManaged),
            Some(FibEntry::Broadcast) => return Verdict::Drop(DropReason::DirectedBroadcast),
            Some(FibEntry::Multipath { group }) => return self.multipath(group, hash()),
        };
        Verdict::Forward(adj)
    }

    /// Linux `fib_select_multipath`: the path of group `group` that the flow hash `hash` owns;
    /// a path whose neighbour the kernel gave up on (`NUD_FAILED`) is skipped for the next
    /// bucket's, so its flows spread over the live paths (and come back when it resolves).
    #[inline(never)]
    fn multipath(&self, group: u32, hash: u32) -> Verdict<'_> {
        let Some(g) = self.routes.groups.get(group as usize) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        let nh = g.select(hash, |nh| {
            self.adj
                .gateways
                .get(nh as usize)
                .is_some_and(|a| a.state != AdjState::Failed)
        });
        let adj = &self.adj.gateways[nh as usize];
        if adj.state == AdjState::Resolved {
            return Verdict::Forward(adj);
        }
        Verdict::Resolve {
            key: self.routes.nexthops[nh as usize],
            mtu: adj.mtu,
        }
    }

    /// The current rewrite for a next hop (used to release packets held while it resolved).
    pub fn neighbour(&self, key: NextHopKey) -> Adj {
        self.adj.host(key, &self.ports)
    }
}

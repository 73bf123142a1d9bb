//! From the kernel mirror to forwarding snapshots: which route wins each prefix, which paths
//! xfwd can use, and when to rebuild which half of the [`Fib`].

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use arc_swap::ArcSwap;

use super::mirror::{Change, KernelState, Resolved};
use super::netlink::{NextHop, Route, RouteKind};
use crate::fib::{
    AdjTable, Fib, IfAddrs, NeighInput, PortAddr, PortInfo, RouteInput, RouteNextHop, RouteSet,
    RouteTable, RouteType, SetOutcome,
};

/// `IFA_F_SECONDARY`.
const IFA_F_SECONDARY: u32 = 0x01;

/// The router's addresses per port and in all, and the directed broadcast addresses of the
/// connected subnets (`IFA_BROADCAST`, else the all-ones host part for prefixes up to /30: what
/// the kernel installs as `RTN_BROADCAST` in its local table).
pub fn if_addrs(state: &KernelState, ports: &[PortInfo]) -> (IfAddrs, Vec<Ipv4Addr>) {
    let per_port = ports
        .iter()
        .map(|p| {
            state
                .addrs_of(p.ifindex)
                .map(|a| PortAddr {
                    addr: a.local.to_bits(),
                    prefix_len: a.prefix_len,
                    secondary: a.flags & IFA_F_SECONDARY != 0,
                })
                .collect()
        })
        .collect();
    let mut local: Vec<u32> = state.addrs().map(|a| a.local.to_bits()).collect();
    local.sort_unstable();
    local.dedup();
    let mut bcast: Vec<Ipv4Addr> = state
        .addrs()
        .filter_map(|a| {
            a.broadcast.or_else(|| {
                (a.prefix_len <= 30 && a.peer.is_none())
                    .then(|| Ipv4Addr::from_bits(a.local.to_bits() | (u32::MAX >> a.prefix_len)))
            })
        })
        .filter(|b| !b.is_broadcast())
        .collect();
    // Linux's own list (`KernelState::local_addrs`: primary subnets' broadcasts) as well.
    bcast.extend(
        state
            .local_addrs()
            .into_iter()
            .filter(|a| local.binary_search(&a.to_bits()).is_err()),
    );
    bcast.sort_unstable();
    bcast.dedup();
    let bits = bcast.iter().map(|b| b.to_bits()).collect();
    (IfAddrs::new(per_port, local, bits), bcast)
}

/// The kernel's main routing table (`RT_TABLE_MAIN`).
pub const MAIN_TABLE: u32 = 254;

/// The interfaces xfwd was asked to drive, as the kernel describes them, in `--iface` order.
///
/// # Errors
///
/// When an interface does not exist or has no Ethernet address.
pub fn ports(state: &KernelState, names: &[String]) -> Result<Vec<PortInfo>> {
    names
        .iter()
        .map(|name| {
            let Some(link) = state.link_by_name(name) else {
                bail!("interface {name} does not exist in this network namespace");
            };
            let Some(mac) = link.mac.filter(|m| *m != [0; 6]) else {
                bail!("interface {name} has no Ethernet address; xfwd forwards between Ethernet interfaces");
            };
            Ok(port_info(link, mac))
        })
        .collect()
}

fn port_info(link: &super::netlink::Link, mac: [u8; 6]) -> PortInfo {
    PortInfo {
        ifindex: link.ifindex,
        name: link.name.clone(),
        mac,
        mtu: link.mtu,
        up: link.admin_up && link.oper_up,
    }
}

/// The route that wins each prefix of the main table, as the FIB installs it.
///
/// Among the kernel's routes for one prefix, Linux uses the lowest metric (`fib_table_lookup`
/// walks aliases in priority order) and, among equal metrics, the first alias. Routes with a
/// non-zero TOS match only packets with that TOS, which xfwd does not look at: they are skipped.
pub fn route_inputs(state: &KernelState) -> Vec<RouteInput> {
    let mut best: Vec<&Route> = Vec::new();
    for r in state.table(MAIN_TABLE) {
        if r.tos != 0 {
            continue;
        }
        match best.last_mut() {
            Some(b) if b.dst == r.dst && b.dst_len == r.dst_len => {
                if r.priority < b.priority {
                    *b = r;
                }
            }
            _ => best.push(r),
        }
    }
    best.into_iter()
        .filter_map(|r| route_input(state, r))
        .collect()
}

/// The route that wins `dst/len` in the main table now, as the FIB installs it; `None` when no
/// installable route is left (its addresses go to the covering prefix). Same choice as
/// [`route_inputs`], for one prefix.
pub fn prefix_input(state: &KernelState, dst: Ipv4Addr, len: u8) -> Option<RouteInput> {
    let r = state.prefix_routes(MAIN_TABLE, dst, len).next()?;
    route_input(state, r)
}

fn route_input(state: &KernelState, r: &Route) -> Option<RouteInput> {
    let kind = match r.kind {
        RouteKind::Unicast => RouteType::Unicast,
        RouteKind::Blackhole => RouteType::Blackhole,
        RouteKind::Unreachable => RouteType::Unreachable,
        RouteKind::Prohibit => RouteType::Prohibit,
        RouteKind::Local | RouteKind::Broadcast | RouteKind::Anycast => RouteType::Local,
        // Multicast, throw, NAT and unknown types are the kernel's: not installed.
        _ => return None,
    };
    let mut input = RouteInput {
        dst: r.dst,
        len: r.dst_len,
        kind,
        nexthops: Vec::new(),
        mtu: r.mtu.unwrap_or(0),
    };
    if kind == RouteType::Unicast {
        match state.resolve(r) {
            Resolved::Blackhole => input.kind = RouteType::Blackhole,
            // Not in sync for a moment: leave the prefix to its covering route.
            Resolved::Missing(_) => return None,
            Resolved::Paths(paths) => {
                input.nexthops = paths.iter().filter_map(usable_path).collect();
                if input.nexthops.is_empty() {
                    // Every path is dead or of a kind xfwd cannot send on (IPv6 gateway,
                    // encapsulation): a path out of no interface xfwd drives.
                    input.nexthops.push(RouteNextHop {
                        gateway: None,
                        ifindex: 0,
                        weight: 1,
                    });
                }
            }
        }
    }
    Some(input)
}

/// A path xfwd can forward on: alive, plain IPv4 (no IPv6 gateway, no encapsulation).
fn usable_path(nh: &NextHop) -> Option<RouteNextHop> {
    (!nh.dead && nh.gateway6.is_none() && nh.encap.is_none()).then_some(RouteNextHop {
        gateway: nh.gateway,
        ifindex: nh.ifindex,
        weight: nh.weight,
    })
}

/// The kernel's IPv4 neighbours as the FIB wants them.
pub fn neigh_inputs(state: &KernelState) -> impl Iterator<Item = NeighInput> + '_ {
    state.neighs().values().map(|n| NeighInput {
        ifindex: n.ifindex,
        ip: n.ip,
        mac: n.mac,
        valid: n.state.is_valid(),
        failed: n.state.is_failed(),
        // Exactly STALE: PERMANENT and NOARP entries never need (and must not get) a confirmation.
        stale: n.state.bits() == super::netlink::NudState::STALE.bits(),
    })
}

/// Builds and publishes snapshots, rebuilding only the half a change touches.
#[derive(Debug)]
pub struct TableBuilder {
    names: Vec<String>,
    ports: Arc<[PortInfo]>,
    /// Every prefix, updated in place for route changes; `None` until the first build
    /// succeeds.
    route_set: Option<RouteSet>,
    routes: Arc<RouteTable>,
    addrs: Arc<IfAddrs>,
    published: Arc<ArcSwap<Fib>>,
    generation: u64,
}

impl TableBuilder {
    /// Builds the first snapshot from `state`.
    ///
    /// # Errors
    ///
    /// As [`ports`].
    pub fn new(state: &KernelState, names: &[String]) -> Result<Self> {
        let ports: Arc<[PortInfo]> = ports(state, names)?.into();
        let mut b = TableBuilder {
            names: names.to_vec(),
            ports,
            route_set: None,
            routes: Arc::default(),
            addrs: Arc::default(),
            published: Arc::new(ArcSwap::from_pointee(Fib::default())),
            generation: 0,
        };
        b.rebuild(state, Change::ALL);
        Ok(b)
    }

    /// The published snapshot, for workers and readers.
    pub fn published(&self) -> Arc<ArcSwap<Fib>> {
        self.published.clone()
    }

    /// The ports, index = port id.
    pub fn ports(&self) -> &Arc<[PortInfo]> {
        &self.ports
    }

    /// Applies route changes confined to the prefixes `touched` (main-table `(dst, len)`), in
    /// place, and publishes a new snapshot: a change of one route costs one prefix update, not a
    /// rebuild of the whole table. Anything else `change` says (links, addresses, next-hop
    /// objects), a route naming a next hop the table does not know yet, or a refused update
    /// falls back to [`Self::rebuild`].
    pub fn update(&mut self, state: &KernelState, change: Change, touched: &[(Ipv4Addr, u8)]) {
        let only_routes = change.intersects(Change::ROUTES)
            && !change
                .intersects(Change::LINKS | Change::ADDRS | Change::NEXTHOPS | Change::RESYNC);
        let Some(set) = self.route_set.as_mut().filter(|_| only_routes) else {
            return self.rebuild(state, change);
        };
        let t0 = Instant::now();
        for &(dst, len) in touched {
            let input = prefix_input(state, dst, len);
            match set.set(dst, len, input.as_ref()) {
                Ok(SetOutcome::Done) => {}
                Ok(SetOutcome::NeedsRebuild) => return self.rebuild(state, change),
                Err(e) => {
                    tracing::warn!("updating {dst}/{len} in place ({e}): rebuilding the table");
                    return self.rebuild(state, change);
                }
            }
        }
        self.routes = Arc::new(set.snapshot());
        tracing::debug!(
            prefixes_changed = touched.len(),
            took_us = t0.elapsed().as_micros() as u64,
            "routes updated in place"
        );
        self.publish(state, true, t0);
    }

    /// Rebuilds what `change` touched and publishes a new snapshot.
    pub fn rebuild(&mut self, state: &KernelState, change: Change) {
        if change.is_empty() {
            return;
        }
        let t0 = Instant::now();
        if change.intersects(Change::LINKS) {
            // A driven interface that vanished keeps its last description: its socket is bound
            // to the old ifindex; routes out of it go away with it in the kernel anyway.
            let ports: Vec<PortInfo> = self
                .names
                .iter()
                .zip(self.ports.iter())
                .map(|(name, old)| match state.link_by_name(name) {
                    Some(l) if l.ifindex == old.ifindex => port_info(l, l.mac.unwrap_or(old.mac)),
                    _ => PortInfo {
                        up: false,
                        ..old.clone()
                    },
                })
                .collect();
            if *ports != *self.ports {
                self.ports = ports.into();
            }
        }
        let routes_changed =
            change.intersects(Change::LINKS | Change::ADDRS | Change::ROUTES | Change::NEXTHOPS);
        if routes_changed {
            let (addrs, bcast) = if_addrs(state, &self.ports);
            let local: Vec<Ipv4Addr> = addrs
                .local
                .iter()
                .map(|a| Ipv4Addr::from_bits(*a))
                .collect();
            self.addrs = Arc::new(addrs);
            match RouteSet::build_with_broadcasts(route_inputs(state), local, bcast, &self.ports) {
                Ok(mut set) => {
                    self.routes = Arc::new(set.snapshot());
                    self.route_set = Some(set);
                }
                Err(e) => {
                    tracing::error!("rebuilding the route table (keeping the previous one): {e}")
                }
            }
        }
        self.publish(state, routes_changed, t0);
    }

    /// Publishes a snapshot of the current routes with a fresh neighbour half.
    fn publish(&mut self, state: &KernelState, routes_changed: bool, t0: Instant) {
        let adj = AdjTable::build(&self.routes, neigh_inputs(state), &self.ports);
        self.generation += 1;
        let fib = Fib {
            routes: self.routes.clone(),
            adj: Arc::new(adj),
            ports: self.ports.clone(),
            generation: self.generation,
            addrs: self.addrs.clone(),
        };
        tracing::debug!(
            generation = self.generation,
            routes_rebuilt = routes_changed,
            prefixes = fib.routes.prefixes(),
            lookup_bytes = fib.routes.lookup_bytes(),
            neighbours = fib.adj.neighbours(),
            took_us = t0.elapsed().as_micros() as u64,
            "published forwarding tables"
        );
        self.published.store(Arc::new(fib));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::netlink::{KernelEvent, Link, RoutePlacement};
    use proptest::prelude::*;

    fn link(ifindex: u32) -> Link {
        Link {
            ifindex,
            name: format!("eth{ifindex}"),
            mac: Some([2, 0, 0, 0, 0, ifindex as u8]),
            mtu: 1500,
            admin_up: true,
            oper_up: true,
            kind: None,
            flags: 1,
            master: None,
        }
    }

    fn route(dst: u32, len: u8, metric: u32, gw: Option<u32>, ifindex: u32) -> Route {
        Route {
            table: MAIN_TABLE,
            dst: Ipv4Addr::from_bits(dst & crate::fib::lpm::mask(len)),
            dst_len: len,
            tos: 0,
            priority: metric,
            kind: RouteKind::Unicast,
            protocol: 3,
            scope: 0,
            prefsrc: None,
            mtu: None,
            nexthops: vec![NextHop {
                gateway: gw.map(Ipv4Addr::from_bits),
                gateway6: None,
                ifindex,
                weight: 1,
                onlink: false,
                dead: false,
                linkdown: false,
                encap: None,
            }],
            nh_id: None,
        }
    }

    /// What a snapshot answers for `addrs`: the entry, with a gateway's next-hop index replaced
    /// by the next hop itself (indexes differ between builds).
    fn answers(
        b: &TableBuilder,
        addrs: &[u32],
    ) -> Vec<Option<(crate::fib::FibEntry, Option<crate::fib::NextHopKey>)>> {
        use crate::fib::FibEntry;
        let fib = b.published().load_full();
        addrs
            .iter()
            .map(|&a| {
                fib.routes.entry(fib.routes.lookup(a)).map(|e| match e {
                    FibEntry::Gateway { nh } => (
                        FibEntry::Gateway { nh: 0 },
                        Some(fib.routes.nexthops()[nh as usize]),
                    ),
                    e => (e, None),
                })
            })
            .collect()
    }

    #[test]
    fn multipath_routes_become_groups_without_dead_or_unusable_paths() {
        use crate::fib::FibEntry;
        let mut state = KernelState::new();
        state.apply(KernelEvent::NewLink(link(2)));
        state.apply(KernelEvent::NewLink(link(3)));
        let names = vec!["eth2".to_owned(), "eth3".to_owned()];
        let nh = |gw: u32, ifindex: u32, weight: u16, dead: bool| {
            let mut r = route(0, 0, 0, Some(gw), ifindex);
            let mut n = r.nexthops.pop().unwrap();
            (n.weight, n.dead) = (weight, dead);
            n
        };
        let mut r = route(0xc633_6400, 24, 0, None, 2);
        r.nexthops = vec![
            nh(0x0a00_0001, 2, 1, false),
            nh(0x0a00_0002, 3, 3, false),
            nh(0x0a00_0003, 3, 1, true),
        ];
        state.apply(KernelEvent::NewRoute(r.clone(), RoutePlacement::Replace));
        let mut b = TableBuilder::new(&state, &names).unwrap();
        let entry = |b: &TableBuilder| {
            let fib = b.published().load_full();
            let e = fib.routes.entry(fib.routes.lookup(0xc633_6407));
            (e, fib.routes.describe(fib.routes.lookup(0xc633_6407)))
        };
        let (e, d) = entry(&b);
        assert!(matches!(e, Some(FibEntry::Multipath { .. })), "{e:?}");
        assert_eq!(
            d.unwrap(),
            "Multipath via 10.0.0.1 port 0 (weight 1), via 10.0.0.2 port 1 (weight 3)"
        );
        // Down to one live path: a plain gateway, in place.
        r.nexthops[1].dead = true;
        let change = state.apply(KernelEvent::NewRoute(r.clone(), RoutePlacement::Replace));
        b.update(&state, change, &[(r.dst, 24)]);
        assert_eq!(entry(&b).0, Some(FibEntry::Gateway { nh: 0 }));
        // A path out of an interface xfwd does not drive: first path only (no group).
        r.nexthops = vec![nh(0x0a00_0001, 2, 1, false), nh(0x0a00_0009, 9, 1, false)];
        let change = state.apply(KernelEvent::NewRoute(r.clone(), RoutePlacement::Replace));
        b.update(&state, change, &[(r.dst, 24)]);
        assert_eq!(entry(&b).0, Some(FibEntry::Gateway { nh: 0 }));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Route events applied in place give the same answers as a table built from scratch on
        /// the same kernel state, through adds, metric changes, deletes and new gateways.
        #[test]
        fn in_place_updates_match_a_full_build(
            ops in proptest::collection::vec(
                (0u32..6, 8u8..=32, 0u32..3, 0u32..4, any::<bool>(), any::<u32>()), 1..40),
            probes in proptest::collection::vec(any::<u32>(), 32),
        ) {
            let mut state = KernelState::new();
            state.apply(KernelEvent::NewLink(link(2)));
            state.apply(KernelEvent::NewLink(link(3)));
            let names = vec!["eth2".to_owned(), "eth3".to_owned()];
            let mut b = TableBuilder::new(&state, &names).unwrap();
            let mut addrs = probes.clone();
            for (base, len, metric, gw, add, noise) in ops {
                // A few bases so prefixes nest; gateways 10.0.0.1..4 (new ones force a rebuild).
                let dst = (base << 28) | (noise & 0x0fff_ffff);
                let r = route(dst, len, metric, Some(0x0a00_0001 + gw), 2 + (gw & 1));
                addrs.push(dst);
                let ev = if add {
                    KernelEvent::NewRoute(r.clone(), RoutePlacement::Replace)
                } else {
                    KernelEvent::DelRoute(r.clone())
                };
                let change = state.apply(ev);
                if !change.is_empty() {
                    b.update(&state, change, &[(r.dst, len)]);
                }
                let fresh = TableBuilder::new(&state, &names).unwrap();
                prop_assert_eq!(answers(&b, &addrs), answers(&fresh, &addrs));
            }
        }
    }
}

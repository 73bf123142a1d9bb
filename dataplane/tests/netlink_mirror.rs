//! Privileged tests of the rtnetlink client and the kernel mirror, each in its own namespace.
//!
//! The oracle: after any sequence of `ip` commands, the state built from the live events equals
//! the state built from a fresh dump.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use xfwd::control::mirror::{
    Change, KernelState, RT_TABLE_LOCAL, RT_TABLE_MAIN, Resolved, RouteKey,
};
use xfwd::control::netlink::{
    KernelEvent, Netlink, NetlinkConfig, NextHop, NudState, Route, RouteKind,
};
use xfwd_testbed::NetNs;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn sh(ns: &NetNs, cmd: &str) {
    let argv: Vec<&str> = cmd.split_whitespace().collect();
    ns.exec(&argv).unwrap_or_else(|e| panic!("{cmd}: {e:#}"));
}

fn open(ns: &NetNs) -> Netlink {
    ns.run(Netlink::open)
        .expect("entering netns")
        .expect("opening netlink")
}

fn fresh_dump(ns: &NetNs) -> KernelState {
    // A small event buffer: this socket only dumps.
    let cfg = NetlinkConfig {
        event_rcvbuf: 64 << 10,
        ..NetlinkConfig::default()
    };
    let mut nl = ns.run(|| Netlink::open_with(&cfg)).unwrap().unwrap();
    KernelState::from_dump(nl.dump().expect("dump"))
}

/// Applies queued events until the socket has been quiet for 50 ms.
fn follow(nl: &mut Netlink, state: &mut KernelState) -> Change {
    let mut change = Change::NONE;
    let mut out = Vec::new();
    loop {
        nl.recv(&mut out, Duration::from_millis(50)).expect("recv");
        if out.is_empty() {
            return change;
        }
        for ev in out.drain(..) {
            change |= state.apply(ev);
        }
        assert!(!change.contains(Change::RESYNC), "unexpected overrun");
    }
}

fn describe_diff(events: &KernelState, dump: &KernelState) -> String {
    let mut s = String::new();
    for (i, l) in events.links() {
        if dump.link(*i) != Some(l) {
            writeln!(
                s,
                "link {i}: events {l:?}\n          dump   {:?}",
                dump.link(*i)
            )
            .unwrap();
        }
    }
    for (i, l) in dump.links() {
        if events.link(*i).is_none() {
            writeln!(s, "link only in dump: {l:?}").unwrap();
        }
    }
    let only = |a: Vec<String>, b: &Vec<String>| {
        a.into_iter().filter(|x| !b.contains(x)).collect::<Vec<_>>()
    };
    let lists = |st: &KernelState| {
        let mut v: Vec<String> = st.addrs().map(|a| format!("{a:?}")).collect();
        v.extend(st.routes().map(|r| format!("{r:?}")));
        v.extend(st.nexthops().values().map(|n| format!("{n:?}")));
        let mut neighs: Vec<String> = st.neighs().values().map(|n| format!("{n:?}")).collect();
        neighs.sort();
        v.extend(neighs);
        v
    };
    let (a, b) = (lists(events), lists(dump));
    for x in only(a.clone(), &b) {
        writeln!(s, "only from events: {x}").unwrap();
    }
    for x in only(b, &a) {
        writeln!(s, "only in dump:     {x}").unwrap();
    }
    if s.is_empty() {
        s.push_str("(same items, different alias order)");
    }
    s
}

/// Follows events, then checks the mirror against a fresh dump. Retries for a while because
/// some link flags (IFF_RUNNING via linkwatch) settle asynchronously.
#[track_caller]
fn assert_in_sync(ns: &NetNs, nl: &mut Netlink, state: &mut KernelState, step: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        follow(nl, state);
        let dump = fresh_dump(ns);
        if dump == *state {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "after `{step}`: events and dump differ:\n{}",
                describe_diff(state, &dump)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Two veth pairs inside one namespace: d0 (10.0.0.1/24, peer d0p) and d1 (10.1.0.1/24, d1p).
fn two_links(ns: &NetNs) {
    for (d, net) in [("d0", "10.0.0"), ("d1", "10.1.0")] {
        sh(ns, &format!("ip link add {d} type veth peer name {d}p"));
        sh(ns, &format!("ip link set {d}p up"));
        sh(ns, &format!("ip link set {d} up"));
        sh(ns, &format!("ip addr add {net}.1/24 dev {d}"));
    }
}

fn nh(gw: Option<&str>, ifindex: u32, weight: u16) -> NextHop {
    NextHop {
        gateway: gw.map(ip),
        gateway6: None,
        ifindex,
        weight,
        onlink: false,
        dead: false,
        linkdown: false,
        encap: None,
    }
}

fn find<'a>(s: &'a KernelState, table: u32, prefix: &str) -> &'a Route {
    let (dst, len) = prefix.split_once('/').unwrap();
    s.table(table)
        .find(|r| r.dst == ip(dst) && r.dst_len == len.parse::<u8>().unwrap())
        .unwrap_or_else(|| panic!("no route {prefix} in table {table}"))
}

#[test]
fn dump_sees_what_ip_set() {
    xfwd_testbed::require_privileges!();
    let ns = NetNs::new("nld").unwrap();
    two_links(&ns);
    sh(&ns, "ip link set d0 mtu 1400");
    for cmd in [
        "ip route add 1.0.0.0/8 via 10.0.0.2 metric 10",
        "ip route add 2.0.0.0/8 nexthop via 10.0.0.2 weight 1 nexthop via 10.1.0.2 weight 3",
        "ip route add blackhole 3.0.0.0/8",
        "ip route add unreachable 4.0.0.0/8",
        "ip route add prohibit 5.0.0.0/8",
        "ip nexthop add id 1 via 10.0.0.3 dev d0",
        "ip nexthop add id 2 via 10.1.0.3 dev d1",
        "ip nexthop add id 3 blackhole",
        "ip nexthop add id 10 group 1/2,4",
        "ip route add 6.0.0.0/8 nhid 1",
        "ip route add 7.0.0.0/8 nhid 10",
        "ip route add 13.0.0.0/8 nhid 3",
        "ip route add 8.0.0.0/8 via 10.0.0.2 table 100",
        "ip route add 9.0.0.0/8 via 10.1.0.2 table 1000",
        "ip route add 11.0.0.0/8 via 10.0.0.2 mtu 1300 src 10.0.0.1 proto static",
        "ip route add 12.0.0.0/8 via inet6 fe80::1 dev d0",
        "ip route add 14.0.0.0/8 via 10.0.0.2 onlink dev d0 tos 0x10",
        "ip neigh add 10.0.0.2 lladdr 02:00:00:00:00:02 dev d0 nud permanent",
        "ip neigh add 10.1.0.2 lladdr 02:00:00:00:00:12 dev d1 nud stale",
    ] {
        sh(&ns, cmd);
    }
    let mut nl = open(&ns);
    let events = nl.dump().unwrap();
    let s = KernelState::from_dump(events.clone());
    let d0 = s.link_by_name("d0").unwrap().clone();
    let d1 = s.link_by_name("d1").unwrap().clone();
    assert_eq!(
        (d0.mtu, d0.admin_up, d0.oper_up, d0.kind.as_deref()),
        (1400, true, true, Some("veth"))
    );
    assert!(s.link_by_name("lo").unwrap().admin_up);
    // Dump order: links, addresses, nexthops, routes, neighbours.
    let rank = |e: &KernelEvent| match e {
        KernelEvent::NewLink(_) => 0,
        KernelEvent::NewAddr(_) => 1,
        KernelEvent::NewNexthop(_) => 2,
        KernelEvent::NewRoute(..) => 3,
        KernelEvent::NewNeigh(_) => 4,
        other => panic!("unexpected in a dump: {other:?}"),
    };
    assert!(events.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])));

    let a = s.addrs_of(d0.ifindex).next().unwrap();
    assert_eq!((a.local, a.prefix_len, a.peer), (ip("10.0.0.1"), 24, None));

    let r = find(&s, RT_TABLE_MAIN, "1.0.0.0/8");
    assert_eq!(
        (r.priority, r.kind, r.protocol),
        (10, RouteKind::Unicast, 3)
    );
    assert_eq!(r.nexthops, [nh(Some("10.0.0.2"), d0.ifindex, 1)]);

    let r = find(&s, RT_TABLE_MAIN, "2.0.0.0/8");
    assert_eq!(
        r.nexthops,
        [
            nh(Some("10.0.0.2"), d0.ifindex, 1),
            nh(Some("10.1.0.2"), d1.ifindex, 3)
        ]
    );

    for (p, kind) in [
        ("3.0.0.0/8", RouteKind::Blackhole),
        ("4.0.0.0/8", RouteKind::Unreachable),
        ("5.0.0.0/8", RouteKind::Prohibit),
    ] {
        let r = find(&s, RT_TABLE_MAIN, p);
        assert_eq!((r.kind, r.nexthops.len()), (kind, 0), "{p}");
    }

    let r = find(&s, RT_TABLE_MAIN, "6.0.0.0/8");
    assert_eq!(
        (r.nh_id, r.nexthops.len()),
        (Some(1), 0),
        "compat expansion dropped"
    );
    assert_eq!(
        s.resolve(r),
        Resolved::Paths(vec![nh(Some("10.0.0.3"), d0.ifindex, 1)].into())
    );
    let r = find(&s, RT_TABLE_MAIN, "7.0.0.0/8");
    assert_eq!(
        s.resolve(r),
        Resolved::Paths(
            vec![
                nh(Some("10.0.0.3"), d0.ifindex, 1),
                nh(Some("10.1.0.3"), d1.ifindex, 4)
            ]
            .into()
        )
    );
    let r = find(&s, RT_TABLE_MAIN, "13.0.0.0/8");
    assert_eq!(
        (r.kind, s.resolve(r)),
        (RouteKind::Unicast, Resolved::Blackhole)
    );
    assert_eq!(s.nexthops()[&10].group, [(1, 1), (2, 4)]);
    assert!(s.nexthops()[&3].blackhole);

    assert_eq!(
        find(&s, 100, "8.0.0.0/8").nexthops,
        [nh(Some("10.0.0.2"), d0.ifindex, 1)]
    );
    assert_eq!(
        find(&s, 1000, "9.0.0.0/8").table,
        1000,
        "RTA_TABLE beyond 255"
    );

    let r = find(&s, RT_TABLE_MAIN, "11.0.0.0/8");
    assert_eq!(
        (r.mtu, r.prefsrc, r.protocol),
        (Some(1300), Some(ip("10.0.0.1")), 4)
    );

    let r = find(&s, RT_TABLE_MAIN, "12.0.0.0/8");
    let want6: Ipv6Addr = "fe80::1".parse().unwrap();
    assert_eq!(
        (r.nexthops[0].gateway, r.nexthops[0].gateway6),
        (None, Some(want6)),
        "RFC 5549 path kept"
    );

    let r = find(&s, RT_TABLE_MAIN, "14.0.0.0/8");
    assert_eq!((r.tos, r.nexthops[0].onlink), (0x10, true));

    // Connected and local routes the kernel made for the addresses.
    let r = find(&s, RT_TABLE_MAIN, "10.0.0.0/24");
    assert_eq!(
        (r.protocol, r.scope, r.prefsrc),
        (2, 253, Some(ip("10.0.0.1")))
    );
    assert_eq!(r.nexthops, [nh(None, d0.ifindex, 1)]);
    assert_eq!(
        find(&s, RT_TABLE_LOCAL, "10.0.0.1/32").kind,
        RouteKind::Local
    );
    assert_eq!(
        find(&s, RT_TABLE_LOCAL, "10.0.0.255/32").kind,
        RouteKind::Broadcast
    );

    let n = s.neigh(d0.ifindex, ip("10.0.0.2")).unwrap();
    assert_eq!(
        (n.mac, n.state),
        (Some([2, 0, 0, 0, 0, 2]), NudState::PERMANENT)
    );
    assert!(n.state.is_valid());
    let n = s.neigh(d1.ifindex, ip("10.1.0.2")).unwrap();
    assert_eq!(n.state, NudState::STALE);

    assert!(
        s.local_addrs().is_superset(
            &[
                ip("10.0.0.1"),
                ip("10.0.0.255"),
                ip("10.1.0.1"),
                ip("127.0.0.1")
            ]
            .into()
        )
    );
    assert_eq!(
        s.nexthops().get(&2).map(|n| n.gateway),
        Some(Some(IpAddr::V4(ip("10.1.0.3"))))
    );
}

#[test]
fn live_routes_addresses_and_neighbours_match_a_fresh_dump() {
    xfwd_testbed::require_privileges!();
    let ns = NetNs::new("nll").unwrap();
    let mut nl = open(&ns);
    let mut state = KernelState::from_dump(nl.dump().unwrap());
    two_links(&ns);
    assert_in_sync(&ns, &mut nl, &mut state, "two links");
    let steps = [
        "ip route add 1.0.0.0/8 via 10.0.0.2",
        "ip route add 1.0.0.0/8 via 10.1.0.2 metric 50",
        "ip route append 1.0.0.0/8 via 10.0.0.3",
        "ip route prepend 1.0.0.0/8 via 10.0.0.4",
        "ip route replace 1.0.0.0/8 via 10.0.0.5",
        "ip route del 1.0.0.0/8 via 10.0.0.2",
        "ip route del 1.0.0.0/8 metric 50",
        "ip route add 2.0.0.0/8 nexthop via 10.0.0.2 nexthop via 10.1.0.2 weight 2",
        "ip route replace 2.0.0.0/8 nexthop via 10.0.0.2 weight 5 nexthop via 10.1.0.3",
        "ip route add blackhole 3.0.0.0/8",
        "ip route replace unreachable 3.0.0.0/8",
        "ip route add 5.0.0.0/16 via 10.0.0.2 table 300",
        "ip route add default via 10.1.0.254",
        "ip route add 6.0.0.0/8 via 10.0.0.2 src 10.1.0.1",
        "ip addr add 10.0.0.7/24 dev d0",
        "ip addr add 10.5.0.1/16 dev d1",
        "ip addr del 10.0.0.7/24 dev d0",
        "ip addr add 10.1.0.9/24 dev d1",
        // Deleting the primary also deletes its secondaries (promote_secondaries=0).
        "ip addr del 10.1.0.1/24 dev d1",
        "ip neigh add 10.0.0.2 lladdr 02:00:00:00:00:02 dev d0 nud permanent",
        "ip neigh add 10.0.0.3 lladdr 02:00:00:00:00:03 dev d0 nud stale",
        "ip neigh replace 10.0.0.3 lladdr 02:00:00:00:00:33 dev d0 nud reachable",
        "ip neigh del 10.0.0.3 dev d0",
        "ip route flush table 300",
    ];
    for step in steps {
        sh(&ns, step);
        assert_in_sync(&ns, &mut nl, &mut state, step);
    }
    assert!(
        state.main_routes().any(|r| r.dst_len == 0),
        "default route mirrored"
    );
}

#[test]
fn link_down_up_carrier_and_delete_match_a_fresh_dump() {
    xfwd_testbed::require_privileges!();
    let ns = NetNs::new("nlk").unwrap();
    let mut nl = open(&ns);
    let mut state = KernelState::from_dump(nl.dump().unwrap());
    two_links(&ns);
    for cmd in [
        "ip addr add 10.0.0.5/24 dev d0",
        "ip route add 1.0.0.0/8 via 10.0.0.2",
        "ip route add 2.0.0.0/8 nexthop via 10.0.0.2 nexthop via 10.1.0.2",
        "ip route add 3.0.0.0/8 dev d0 scope host",
        "ip route add 4.0.0.0/8 via 10.1.0.2",
        "ip route add 6.0.0.0/8 via 10.1.0.2 src 10.0.0.1",
        "ip neigh add 10.0.0.9 lladdr 02:00:00:00:00:09 dev d0 nud permanent",
        "ip neigh add 10.1.0.8 lladdr 02:00:00:00:00:08 dev d1 nud stale",
        "ip neigh add 10.1.0.9 lladdr 02:00:00:00:00:09 dev d1 nud permanent",
    ] {
        sh(&ns, cmd);
    }
    assert_in_sync(&ns, &mut nl, &mut state, "setup");
    let steps = [
        // Silent: routes via d0 flushed, multipath path marked dead, host scope kept.
        "ip link set d0 down",
        "ip link set d0 up",
        // Carrier loss on d1: linkdown flags, non-permanent neighbours flushed.
        "ip link set d1p down",
        "ip link set d1p up",
        // Last address of d0 gone: even host-scope routes via d0 go; prefsrc routes go.
        "ip addr flush dev d0",
        "ip addr add 10.0.0.1/24 dev d0",
        "ip route replace 2.0.0.0/8 nexthop via 10.0.0.2 nexthop via 10.1.0.2",
        // Deleting d1: every route touching d1 goes, addresses and neighbours too.
        "ip link del d1",
    ];
    for step in steps {
        sh(&ns, step);
        assert_in_sync(&ns, &mut nl, &mut state, step);
    }
    assert!(state.link_by_name("d1").is_none() && state.link_by_name("d1p").is_none());
}

/// Nexthop objects in both compat modes: replacement, group change, deletion, and the silent
/// flushes on link down.
fn nexthop_objects(compat: &str) {
    let ns = NetNs::new("nln").unwrap();
    sh(
        &ns,
        &format!("sysctl -qw net.ipv4.nexthop_compat_mode={compat}"),
    );
    let mut nl = open(&ns);
    let mut state = KernelState::from_dump(nl.dump().unwrap());
    two_links(&ns);
    let steps = [
        "ip nexthop add id 1 via 10.0.0.2 dev d0",
        "ip nexthop add id 2 via 10.1.0.2 dev d1",
        "ip nexthop add id 3 blackhole",
        "ip nexthop add id 10 group 1/2,3",
        "ip nexthop add id 11 group 1",
        "ip route add 4.0.0.0/8 nhid 1",
        "ip route add 5.0.0.0/8 nhid 10",
        "ip route add 6.0.0.0/8 nhid 3",
        "ip route add 7.0.0.0/8 nhid 11",
        "ip route add 8.0.0.0/8 nhid 2 table 200",
        "ip nexthop replace id 1 via 10.0.0.3 dev d0",
        "ip nexthop replace id 10 group 2",
        "ip nexthop replace id 3 via 10.0.0.9 dev d0",
        "ip nexthop replace id 3 blackhole",
        "ip nexthop del id 1",
        "ip nexthop add id 1 via 10.0.0.2 dev d0",
        "ip nexthop replace id 10 group 1/2",
        "ip route add 4.0.0.0/8 nhid 1",
        "ip route replace 5.0.0.0/8 nhid 10",
        // Silent: object 2 flushed, group 10 shrinks, 8/8 goes.
        "ip link set d1 down",
        "ip link set d1 up",
        "ip nexthop add id 2 via 10.1.0.2 dev d1",
        "ip route add 9.0.0.0/8 nhid 2",
        // Silent: carrier loss flushes objects too.
        "ip link set d1p down",
        "ip link set d1p up",
        "ip nexthop add id 2 via 10.1.0.2 dev d1",
        "ip route add 9.0.0.0/8 nhid 2",
        "ip link del d0",
    ];
    for step in steps {
        sh(&ns, step);
        assert_in_sync(&ns, &mut nl, &mut state, step);
    }
    assert!(state.nexthops().contains_key(&2) && !state.nexthops().contains_key(&1));
}

#[test]
fn nexthop_objects_compat_mode_1_match_a_fresh_dump() {
    xfwd_testbed::require_privileges!();
    nexthop_objects("1");
}

#[test]
fn nexthop_objects_compat_mode_0_match_a_fresh_dump() {
    xfwd_testbed::require_privileges!();
    nexthop_objects("0");
}

#[test]
fn overrun_is_reported_and_a_resync_gives_the_kernel_state() {
    xfwd_testbed::require_privileges!();
    let ns = NetNs::new("nlo").unwrap();
    two_links(&ns);
    // The smallest buffer the kernel allows, so a burst overflows it.
    let cfg = NetlinkConfig {
        event_rcvbuf: 4096,
        ..NetlinkConfig::default()
    };
    let mut nl = ns.run(|| Netlink::open_with(&cfg)).unwrap().unwrap();
    let mut state = KernelState::from_dump(nl.dump().unwrap());
    let batch = std::env::temp_dir().join(format!("xfwd-nlo-{}.batch", std::process::id()));
    let mut text = String::new();
    for i in 0..3000u32 {
        writeln!(
            text,
            "route add 20.{}.{}.0/24 via 10.0.0.2",
            i >> 8,
            i & 0xff
        )
        .unwrap();
    }
    std::fs::write(&batch, text).unwrap();
    sh(&ns, &format!("ip -batch {}", batch.display()));
    std::fs::remove_file(&batch).unwrap();

    let mut out = Vec::new();
    let mut overrun = false;
    let mut change = Change::NONE;
    loop {
        nl.recv(&mut out, Duration::from_millis(50)).unwrap();
        if out.is_empty() {
            break;
        }
        for ev in out.drain(..) {
            overrun |= ev == KernelEvent::Overrun;
            change |= state.apply(ev);
        }
    }
    assert!(
        overrun && change.contains(Change::RESYNC),
        "3000 routes into a 4 KiB buffer must overrun"
    );
    assert!(nl.stats().overruns >= 1);
    assert!(
        state.route_count() < 3000,
        "events were lost, so the mirror is short"
    );
    // Resync: dump, replace everything, then go on following events.
    let c = state.replace_all(nl.dump().unwrap());
    assert!(c.contains(Change::ROUTES));
    assert_eq!(
        state
            .main_routes()
            .filter(|r| r.dst.octets()[0] == 20)
            .count(),
        3000
    );
    assert_eq!(state, fresh_dump(&ns));
    sh(&ns, "ip route add 21.0.0.0/8 via 10.0.0.2");
    follow(&mut nl, &mut state);
    assert_eq!(
        state,
        fresh_dump(&ns),
        "events keep flowing after an overrun"
    );
    assert!(
        state
            .route_aliases(&RouteKey {
                table: 254,
                dst: ip("21.0.0.0"),
                dst_len: 8,
                tos: 0,
                priority: 0
            })
            .len()
            == 1
    );
}

#[test]
fn events_queued_before_the_dump_replay_onto_it() {
    xfwd_testbed::require_privileges!();
    let ns = NetNs::new("nlr").unwrap();
    two_links(&ns);
    sh(
        &ns,
        "ip route add 2.0.0.0/8 nexthop via 10.0.0.2 nexthop via 10.1.0.2",
    );
    sh(&ns, "ip route add 3.0.0.0/8 via 10.0.0.2");
    sh(&ns, "ip nexthop add id 1 via 10.0.0.2 dev d0");
    sh(&ns, "ip route add 4.0.0.0/8 nhid 1");
    // Subscribed from here on: everything below is queued, then the dump is taken after all of
    // it, and the queued events are replayed over the dump. The result must still be exact.
    let mut nl = open(&ns);
    for cmd in [
        "ip route add 1.0.0.0/8 via 10.0.0.2",
        "ip link set d0 down",
        "ip link set d0 up",
        "ip route add 5.0.0.0/8 via 10.0.0.2",
        "ip nexthop add id 1 via 10.0.0.3 dev d0",
        "ip route add 4.0.0.0/8 nhid 1",
        "ip addr del 10.1.0.1/24 dev d1",
        "ip addr add 10.1.0.1/24 dev d1",
        "ip route add 6.0.0.0/8 via 10.1.0.2",
        "ip neigh add 10.0.0.9 lladdr 02:00:00:00:00:09 dev d0 nud permanent",
        "ip link add d2 type veth peer name d2p",
        "ip link set d2 up",
        "ip link del d2",
        "ip route replace 2.0.0.0/8 via 10.1.0.3",
    ] {
        sh(&ns, cmd);
    }
    let mut state = KernelState::from_dump(nl.dump().unwrap());
    let snapshot = state.clone();
    let change = follow(&mut nl, &mut state);
    assert!(!change.is_empty(), "the queued events were replayed");
    assert_eq!(
        state, snapshot,
        "replaying history over a later snapshot lands on the snapshot"
    );
    assert_eq!(state, fresh_dump(&ns));
}

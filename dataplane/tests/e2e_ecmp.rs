//! End to end: multipath (ECMP) routes from the kernel, spread by xfwd.
//!
//! `h1 — [p0] router [p1] — h2`, with three gateways on the p1 link: h2 itself and two more
//! addresses the router has permanent neighbour entries for (their frames reach h2's interface
//! too, where a promiscuous raw socket sees which gateway MAC each flow was sent to). The route
//! `203.0.113.0/24 nexthop via h2 nexthop via G1 nexthop via G2` is the kernel's; xfwd mirrors
//! it into an ECMP group.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use common::XfwdTopo;
use xfwd_testbed::packet::parse;
use xfwd_testbed::{End, RawSocket, require_privileges};

const PORT: u16 = 7979;
const FLOWS: u16 = 240;
const G1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x51];
const G2_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x52];

fn dst(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, n)
}

/// Starts xfwd with `extra` flags and installs the three-way multipath route.
fn setup(ns: &str, extra: &[&str]) -> (XfwdTopo, [Ipv4Addr; 3]) {
    let x = XfwdTopo::start(ns, extra).unwrap();
    x.warm_up();
    let t = &x.topo;
    let subnet = t.iface(End::H2).subnet;
    let gws = [
        t.iface(End::H2).addr,
        subnet.host(51).unwrap(),
        subnet.host(52).unwrap(),
    ];
    for (gw, mac) in [(gws[1], G1_MAC), (gws[2], G2_MAC)] {
        t.router_permanent_neigh("p1", gw, mac).unwrap();
    }
    route(&x, "add", &gws);
    (x, gws)
}

/// `ip route VERB 203.0.113.0/24` with a next hop per gateway, and waits until xfwd's FIB has it.
fn route(x: &XfwdTopo, verb: &str, gws: &[Ipv4Addr]) {
    let mut argv = vec![
        "route".to_owned(),
        verb.to_owned(),
        "203.0.113.0/24".to_owned(),
    ];
    for gw in gws {
        argv.extend(["nexthop", "via", &gw.to_string(), "dev", "p1"].map(str::to_owned));
    }
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    x.topo.router().ip(&argv).unwrap();
    let want: Vec<String> = gws.iter().map(|g| format!("via {g} ")).collect();
    let e = x.wait_fib_entry(dst(7), Duration::from_secs(5), |e| {
        want.iter().all(|w| e.contains(w)) && e.matches("via ").count() == gws.len()
    });
    assert!(
        want.iter().all(|w| e.contains(w)) && e.matches("via ").count() == gws.len(),
        "xfwd's FIB did not follow `ip route {verb}` to {gws:?}: {e:?}"
    );
    if gws.len() > 1 {
        assert!(e.starts_with("Multipath"), "{e}");
    }
}

/// Sends one UDP datagram per `(dst, sport)` twice from h1; returns the gateway MAC each flow
/// reached h2's link with (every flow must arrive on exactly one gateway, both copies).
fn flows(
    x: &XfwdTopo,
    tx: &RawSocket,
    rx: &RawSocket,
    to: &[(Ipv4Addr, u16)],
) -> HashMap<(Ipv4Addr, u16), [u8; 6]> {
    try_flows(x, tx, rx, to).unwrap_or_else(|e| panic!("{e}"))
}

/// [`flows`], returning what went wrong instead of failing: while a change is still reaching
/// xfwd, the two copies of a flow may legitimately take the old and the new path.
fn try_flows(
    x: &XfwdTopo,
    tx: &RawSocket,
    rx: &RawSocket,
    to: &[(Ipv4Addr, u16)],
) -> Result<HashMap<(Ipv4Addr, u16), [u8; 6]>, String> {
    for _ in 0..2 {
        for &(d, sport) in to {
            let f = x
                .topo
                .frame_from(End::H1, d)
                .udp(sport, PORT, b"ecmp")
                .unwrap();
            tx.send(&f).unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut seen: HashMap<(Ipv4Addr, u16), HashSet<[u8; 6]>> = HashMap::new();
    let mut n = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while n < 2 * to.len() && std::time::Instant::now() < deadline {
        let Ok(Some(frame)) = rx.recv_timeout(Duration::from_millis(50)) else {
            continue;
        };
        let Ok(p) = parse(&frame) else { continue };
        let Some(u) = p.udp().filter(|u| u.dst_port == PORT) else {
            continue;
        };
        let d = p.ip().unwrap().dst;
        seen.entry((d, u.src_port)).or_default().insert(p.dst_mac);
        n += 1;
    }
    if n != 2 * to.len() {
        return Err(format!(
            "{n} of {} datagrams forwarded\n{}",
            2 * to.len(),
            x.xfwd.log()
        ));
    }
    seen.into_iter()
        .map(|(k, macs)| match macs.len() {
            1 => Ok((k, macs.into_iter().next().unwrap())),
            _ => Err(format!("flow {k:?} took several paths: {macs:x?}")),
        })
        .collect()
}

fn capture(x: &XfwdTopo) -> RawSocket {
    let rx = x.h2_socket();
    rx.set_promiscuous(true).unwrap();
    rx.drain().unwrap();
    rx
}

#[test]
fn l4_hash_spreads_flows_and_a_removed_path_moves_only_its_flows() {
    require_privileges!();
    let (x, gws) = setup("ecmp1", &["--multipath-hash", "l4"]);
    let (tx, rx) = (x.h1_socket(), capture(&x));
    let to: Vec<(Ipv4Addr, u16)> = (0..FLOWS).map(|i| (dst(7), 20_000 + i)).collect();
    let before = flows(&x, &tx, &rx, &to);
    let per_path =
        |m: &HashMap<_, [u8; 6]>, mac: [u8; 6]| m.values().filter(|&&v| v == mac).count();
    let h2_mac = End::H2.mac();
    for mac in [h2_mac, G1_MAC, G2_MAC] {
        let n = per_path(&before, mac);
        assert!(
            n >= usize::from(FLOWS) / 6,
            "one source/destination pair, {FLOWS} ports: path {mac:x?} got {n} flows"
        );
    }
    // Again: every flow takes the path it took before.
    assert_eq!(
        flows(&x, &tx, &rx, &to),
        before,
        "flows moved without a route change"
    );

    // Drop G2 from the group: only its flows move.
    route(&x, "replace", &gws[..2]);
    let after = flows(&x, &tx, &rx, &to);
    for (k, mac) in &before {
        if *mac == G2_MAC {
            assert_ne!(after[k], G2_MAC, "{k:?} still on the removed path");
        } else {
            assert_eq!(after[k], *mac, "{k:?} moved although its path stayed");
        }
    }
    // One path left: a plain gateway route, everything on h2's or G1's path as before.
    route(&x, "replace", &gws[..1]);
    let single = flows(&x, &tx, &rx, &to);
    assert!(single.values().all(|&m| m == h2_mac));
}

#[test]
fn l3_hash_keeps_an_address_pair_on_one_path() {
    require_privileges!();
    let (x, _) = setup("ecmp2", &[]);
    let (tx, rx) = (x.h1_socket(), capture(&x));
    // The default policy hashes addresses: one pair, any ports, one path.
    let to: Vec<(Ipv4Addr, u16)> = (0..FLOWS).map(|i| (dst(7), 20_000 + i)).collect();
    let m = flows(&x, &tx, &rx, &to);
    let first = m[&to[0]];
    assert!(m.values().all(|&v| v == first), "l3 split one address pair");
    // Different destinations spread over the paths.
    let to: Vec<(Ipv4Addr, u16)> = (1..=200u8).map(|n| (dst(n), 20_000)).collect();
    let m = flows(&x, &tx, &rx, &to);
    let paths: HashSet<[u8; 6]> = m.values().copied().collect();
    assert_eq!(
        paths.len(),
        3,
        "200 destinations over three paths: {paths:x?}"
    );
}

#[test]
fn nexthop_object_groups_spread_by_weight() {
    require_privileges!();
    let x = XfwdTopo::start("ecmp3", &["--multipath-hash", "l4"]).unwrap();
    x.warm_up();
    let t = &x.topo;
    let h2 = t.iface(End::H2).addr.to_string();
    let g1 = t.iface(End::H2).subnet.host(51).unwrap().to_string();
    let r = t.router();
    r.ip(&[
        "neigh",
        "replace",
        &g1,
        "lladdr",
        "02:00:00:00:02:51",
        "dev",
        "p1",
        "nud",
        "permanent",
    ])
    .unwrap();
    r.ip(&["nexthop", "add", "id", "11", "via", &h2, "dev", "p1"])
        .unwrap();
    r.ip(&["nexthop", "add", "id", "12", "via", &g1, "dev", "p1"])
        .unwrap();
    r.ip(&["nexthop", "add", "id", "10", "group", "11,1/12,3"])
        .unwrap();
    r.ip(&["route", "add", "203.0.113.0/24", "nhid", "10"])
        .unwrap();
    let e = x.wait_fib_entry(dst(7), Duration::from_secs(5), |e| {
        e.starts_with("Multipath")
    });
    assert!(
        e.contains(&format!("via {h2} port 1 (weight 1)"))
            && e.contains(&format!("via {g1} port 1 (weight 3)")),
        "{e}"
    );
    let (tx, rx) = (x.h1_socket(), capture(&x));
    let to: Vec<(Ipv4Addr, u16)> = (0..FLOWS).map(|i| (dst(7), 30_000 + i)).collect();
    let m = flows(&x, &tx, &rx, &to);
    let heavy = m.values().filter(|&&v| v == G1_MAC).count();
    let light = m.values().filter(|&&v| v == End::H2.mac()).count();
    assert_eq!(heavy + light, usize::from(FLOWS));
    assert!(
        heavy > 2 * light && light > 0,
        "weights 1:3 gave {light}:{heavy} flows"
    );
}

#[test]
fn a_path_whose_neighbour_failed_is_skipped_until_it_resolves() {
    require_privileges!();
    let (x, gws) = setup("ecmp4", &["--multipath-hash", "l4"]);
    let (tx, rx) = (x.h1_socket(), capture(&x));
    let to: Vec<(Ipv4Addr, u16)> = (0..FLOWS).map(|i| (dst(9), 40_000 + i)).collect();
    let before = flows(&x, &tx, &rx, &to);
    assert!(before.values().any(|&m| m == G2_MAC));
    // The kernel gives up on G2 (Linux `fib_multipath_use_neigh`): its flows go to live paths,
    // the others stay where they were.
    let g2 = gws[2].to_string();
    x.topo
        .router()
        .ip(&["neigh", "replace", &g2, "dev", "p1", "nud", "failed"])
        .unwrap();
    let mut after = try_flows(&x, &tx, &rx, &to);
    for _ in 0..50 {
        if matches!(&after, Ok(a) if a.values().all(|&m| m != G2_MAC)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        after = try_flows(&x, &tx, &rx, &to);
    }
    let after = after.unwrap_or_else(|e| panic!("{e}"));
    for (k, mac) in &before {
        if *mac == G2_MAC {
            assert_ne!(after[k], G2_MAC, "{k:?} still sent to a FAILED neighbour");
        } else {
            assert_eq!(after[k], *mac, "{k:?} moved although its path is alive");
        }
    }
    // G2 resolves again: every flow is back on its own path.
    x.topo
        .router()
        .ip(&[
            "neigh",
            "replace",
            &g2,
            "lladdr",
            "02:00:00:00:02:52",
            "dev",
            "p1",
            "nud",
            "permanent",
        ])
        .unwrap();
    let mut back = try_flows(&x, &tx, &rx, &to);
    for _ in 0..50 {
        if back.as_ref() == Ok(&before) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        back = try_flows(&x, &tx, &rx, &to);
    }
    let back = back.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, before, "flows did not return once G2 resolved");
}

//! End to end: the RFC 1812 behaviour of xfwd on the wire: ICMP errors (time exceeded,
//! fragmentation needed, net/host unreachable, prohibited, neighbour failure), fragmentation,
//! martians and ICMP rate limiting, through `h1 — [p0] router(xfwd) [p1] — h2`.
//!
//! One topology for every check (a topology costs seconds); each check sends from its own
//! source address on h1 so that the per-destination ICMP rate limit of one does not touch the
//! next.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::{XfwdTopo, collect_udp};
use xfwd_testbed::packet::parse;
use xfwd_testbed::{End, ParsedFrame, RawSocket, require_privileges};

const PORT: u16 = 7778;

/// ICMP errors (types 3, 11, 12) sent to `to`, collected for `wait`.
fn icmp_errors(sock: &RawSocket, to: Ipv4Addr, want: usize, wait: Duration) -> Vec<ParsedFrame> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        let Ok(Some(f)) = sock.recv_timeout(Duration::from_millis(50)) else {
            continue;
        };
        let Ok(p) = parse(&f) else { continue };
        let is_err = p.icmp().is_some_and(|i| matches!(i.icmp_type, 3 | 11 | 12));
        if is_err && p.ip().is_ok_and(|ip| ip.dst == to) {
            got.push(p);
        }
    }
    got
}

#[test]
fn icmp_errors_fragmentation_martians_and_rate_limits_on_the_wire() {
    require_privileges!();
    let x = XfwdTopo::start("rfc1", &[]).unwrap();
    let t = &x.topo;
    let r = t.router();
    let h1if = t.iface(End::H1);
    let p0 = t.iface(End::P0).addr;
    let h2 = t.iface(End::H2).addr;
    // Sources on h1, one per check.
    for n in 10..=17 {
        t.h1()
            .ip(&["addr", "add", &format!("10.0.1.{n}/24"), "dev", h1if.name])
            .unwrap();
    }
    r.ip(&["route", "add", "unreachable", "203.0.113.0/24"])
        .unwrap();
    r.ip(&["route", "add", "prohibit", "198.51.100.0/24"])
        .unwrap();
    r.ip(&["link", "set", "dev", "p1", "mtu", "1400"]).unwrap();
    x.warm_up();
    // Let the mirror see the MTU and routes.
    std::thread::sleep(Duration::from_millis(300));

    let tx = x.h1_socket();
    let rx1 = x.h1_socket();
    rx1.drain().unwrap();
    let rx2 = x.h2_socket();
    let src = |n: u8| Ipv4Addr::new(10, 0, 1, n);
    let frame = |from: u8, dst: Ipv4Addr| {
        let mut f = t.frame_from(End::H1, dst);
        f.src = src(from);
        f
    };

    // 1. TTL 1: time exceeded from p0's address, quoting the datagram as it arrived.
    let mut f = frame(10, h2);
    f.ttl = 1;
    f.tos = 0xb9;
    let sent = f.udp(40000, PORT, &[7; 64]).unwrap();
    tx.send(&sent).unwrap();
    let got = icmp_errors(&rx1, src(10), 1, Duration::from_secs(3));
    assert_eq!(got.len(), 1, "time exceeded\n{}", x.xfwd.log());
    let ip = got[0].ip().unwrap();
    let icmp = got[0].icmp().unwrap();
    assert_eq!((icmp.icmp_type, icmp.code), (11, 0));
    assert!(icmp.checksum_ok && ip.header_checksum_ok);
    assert_eq!(
        ip.src, p0,
        "source: the router's address towards the sender"
    );
    assert_eq!(ip.ttl, 64);
    assert_eq!(
        ip.tos, 0xd8,
        "(tos & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL"
    );
    assert_eq!(
        icmp.payload,
        sent[14..],
        "whole datagram quoted (< 548 bytes)"
    );
    assert_eq!(got[0].dst_mac, h1if.mac);

    // 2. DF set and larger than p1's MTU: fragmentation needed with MTU 1400.
    let mut f = frame(11, h2);
    f.dont_fragment = true;
    tx.send(&f.udp(40000, PORT, &[1; 1450]).unwrap()).unwrap();
    let got = icmp_errors(&rx1, src(11), 1, Duration::from_secs(3));
    assert_eq!(got.len(), 1, "frag needed\n{}", x.xfwd.log());
    let icmp = got[0].icmp().unwrap();
    assert_eq!((icmp.icmp_type, icmp.code), (3, 4));
    assert_eq!(icmp.next_hop_mtu(), 1400);

    // 3. DF clear: fragmented by xfwd; the fragments reassemble to the datagram.
    let f = frame(12, h2);
    let payload: Vec<u8> = (0..1472u32).map(|i| (i * 13) as u8).collect();
    let sent = f.udp(40000, PORT, &payload).unwrap();
    tx.send(&sent).unwrap();
    let mut frags = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while frags.len() < 2 && Instant::now() < deadline {
        let Ok(Some(fr)) = rx2.recv_timeout(Duration::from_millis(50)) else {
            continue;
        };
        let Ok(p) = parse(&fr) else { continue };
        if p.ip()
            .is_ok_and(|ip| ip.src == src(12) && ip.protocol == 17)
        {
            frags.push(p);
        }
    }
    assert_eq!(frags.len(), 2, "two fragments at h2\n{}", x.xfwd.log());
    frags.sort_by_key(|p| p.ip().unwrap().fragment_offset);
    let (a, b) = (frags[0].ip().unwrap(), frags[1].ip().unwrap());
    assert!(a.header_checksum_ok && b.header_checksum_ok);
    assert!(a.more_fragments && !b.more_fragments);
    assert_eq!(a.fragment_offset, 0);
    assert_eq!(usize::from(b.fragment_offset) * 8, a.payload.len());
    assert!(a.total_len <= 1400);
    assert_eq!(a.identification, b.identification);
    assert_eq!((a.ttl, b.ttl), (63, 63));
    let mut whole = a.payload.clone();
    whole.extend_from_slice(&b.payload);
    assert_eq!(whole, sent[34..], "reassembled payload");

    // 4. Route errors: no route (net unreachable), unreachable (host), prohibit (13).
    for (n, dst, code) in [
        (13, Ipv4Addr::new(8, 8, 8, 8), 0),
        (14, Ipv4Addr::new(203, 0, 113, 9), 1),
        (15, Ipv4Addr::new(198, 51, 100, 9), 13),
    ] {
        tx.send(&frame(n, dst).udp(40000, PORT, b"x").unwrap())
            .unwrap();
        let got = icmp_errors(&rx1, src(n), 1, Duration::from_secs(3));
        assert_eq!(got.len(), 1, "unreachable to {dst}\n{}", x.xfwd.log());
        let icmp = got[0].icmp().unwrap();
        assert_eq!((icmp.icmp_type, icmp.code), (3, code), "to {dst}");
    }

    // 5. A martian: counted under its own reason, not forwarded, no ICMP.
    let before = x.drops("martian_src_loopback");
    let mut f = t.frame_from(End::H1, h2);
    f.src = Ipv4Addr::new(127, 0, 0, 1);
    tx.send(&f.udp(40000, PORT, b"martian").unwrap()).unwrap();
    let s = x.wait_stats(Duration::from_secs(2), |s| {
        s["drops"]["martian_src_loopback"].as_u64() > Some(before)
    });
    assert_eq!(
        s["drops"]["martian_src_loopback"].as_u64(),
        Some(before + 1)
    );
    assert!(collect_udp(&rx2, PORT, 1, Duration::from_millis(200)).is_empty());

    // 6. Rate limit: 10 expiring packets from one source → a burst of 6 errors (icmp_ratelimit
    // 1000 ms, XRLIM_BURST_FACTOR 6).
    for _ in 0..10 {
        let mut f = frame(16, h2);
        f.ttl = 1;
        tx.send(&f.udp(40000, PORT, b"rl").unwrap()).unwrap();
    }
    let got = icmp_errors(&rx1, src(16), 10, Duration::from_millis(1500));
    assert_eq!(got.len(), 6, "burst of 6\n{}", x.xfwd.log());
    let s = x.stats().unwrap();
    assert!(
        s["events"]["icmp_ratelimit_host"].as_u64() >= Some(4),
        "{s:#}"
    );
    assert!(
        s["events"]["icmp_tx_time_exceeded"].as_u64() >= Some(7),
        "{s:#}"
    );

    // 7. A next hop that never answers ARP: host unreachable once resolution gives up (3 s).
    tx.send(
        &frame(17, Ipv4Addr::new(10, 0, 2, 77))
            .udp(40000, PORT, b"nobody")
            .unwrap(),
    )
    .unwrap();
    let got = icmp_errors(&rx1, src(17), 1, Duration::from_secs(6));
    assert_eq!(got.len(), 1, "host unreachable\n{}", x.xfwd.log());
    let icmp = got[0].icmp().unwrap();
    assert_eq!((icmp.icmp_type, icmp.code), (3, 1));
    assert_eq!(
        icmp.payload[8], 63,
        "quoted after the TTL decrement, as Linux"
    );
    let s = x.stats().unwrap();
    assert!(s["drops"]["neigh_failed"].as_u64() >= Some(1), "{s:#}");
    let p0_drops = &s["interfaces"][0]["drops"];
    assert!(p0_drops["ttl_expired"].as_u64() >= Some(11), "{s:#}");

    // `xfwd show errors --json` lists the ICMP events beside the drop reasons.
    let out = std::process::Command::new(common::xfwd_bin())
        .args(["show", "errors", "--json", "--control"])
        .arg(&x.control)
        .output()
        .unwrap();
    assert!(out.status.success());
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = |list: &str, name: &str| {
        e[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["reason"] == name)
            .unwrap_or_else(|| panic!("{name} in {list}: {e:#}"))
            .clone()
    };
    assert!(row("events", "icmp_tx_time_exceeded")["count"].as_u64() >= Some(7));
    assert!(row("errors", "martian_src_loopback")["count"].as_u64() >= Some(1));
    assert!(
        !row("events", "icmp_ratelimit_host")["description"]
            .as_str()
            .unwrap()
            .is_empty()
    );
}

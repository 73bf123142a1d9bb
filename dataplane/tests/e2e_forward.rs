//! End to end: xfwd forwarding real packets between network namespaces.
//!
//! Each test builds its own `h1 — [p0] router [p1] — h2` topology, runs the `xfwd` binary in the
//! router namespace with kernel forwarding off, and checks what reaches h2 and what xfwd counted.

mod common;

use std::time::Duration;

use common::{XfwdTopo, behind_h2, collect_udp, stream_during};
use xfwd_testbed::packet::{Malform, parse};
use xfwd_testbed::process::{Signal, ping};
use xfwd_testbed::{End, require_privileges};

const PORT: u16 = 7777;

#[test]
fn ping_and_udp_cross_with_ttl_decremented_and_valid_checksums() {
    require_privileges!();
    let x = XfwdTopo::start("xe1", &[]).unwrap();
    let t = &x.topo;
    let h2 = t.iface(End::H2).addr;

    let r = ping(t.h1(), h2, 3, None).unwrap();
    assert!(
        r.all_replied(),
        "ping h1 -> h2 through xfwd: {r:?}\n{}",
        x.xfwd.log()
    );
    let r = ping(t.h1(), behind_h2(t, 1), 2, None).unwrap();
    assert!(r.all_replied(), "ping behind h2: {r:?}");

    let tx = x.h1_socket();
    let rx = x.h2_socket();
    const N: usize = 50;
    for i in 0..N {
        let mut f = t.frame_from(End::H1, h2);
        f.ttl = 64;
        f.identification = i as u16;
        tx.send(&f.udp(40000, PORT, &[i as u8; 100]).unwrap())
            .unwrap();
    }
    let got = collect_udp(&rx, PORT, N, Duration::from_secs(3));
    assert_eq!(got.len(), N, "all datagrams reach h2\n{}", x.xfwd.log());
    for p in &got {
        let ip = p.ip().unwrap();
        assert_eq!(ip.ttl, 63, "TTL decremented once");
        assert!(
            ip.header_checksum_ok,
            "IPv4 header checksum valid after the incremental update"
        );
        assert!(
            p.udp().unwrap().checksum_ok,
            "UDP checksum untouched and valid"
        );
        assert_eq!(p.src_mac, t.iface(End::P1).mac, "sent from p1's MAC");
        assert_eq!(p.dst_mac, t.iface(End::H2).mac, "to h2's MAC");
    }

    let s = x.stats().unwrap();
    assert!(s["forwarded"].as_u64().unwrap() >= N as u64 + 10, "{s:#}");
    let ifs = s["interfaces"].as_array().unwrap();
    assert_eq!(ifs[0]["name"], "p0");
    assert!(ifs[0]["rx_packets"].as_u64().unwrap() >= N as u64);
    assert!(ifs[1]["tx_packets"].as_u64().unwrap() >= N as u64);
    assert_eq!(
        s["drops"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        0
    );
}

#[test]
fn live_route_change_takes_effect_without_restart() {
    require_privileges!();
    let x = XfwdTopo::start("xe2", &[]).unwrap();
    let t = &x.topo;
    let dst = behind_h2(t, 9);
    let prefix = t.behind_h2()[0].to_string();
    x.warm_up();

    let tx = x.h1_socket();
    let rx = x.h2_socket();
    let send = |n: usize| {
        for _ in 0..n {
            tx.send(
                &t.frame_from(End::H1, dst)
                    .udp(40000, PORT, b"route")
                    .unwrap(),
            )
            .unwrap();
        }
    };
    send(10);
    assert_eq!(
        collect_udp(&rx, PORT, 10, Duration::from_secs(2)).len(),
        10,
        "before the change"
    );

    t.router()
        .exec(&["ip", "route", "replace", "blackhole", &prefix])
        .unwrap();
    let s = x.wait_stats(Duration::from_secs(2), |s| {
        s["fib"]["generation"].as_u64() > Some(1)
    });
    assert!(s["fib"]["generation"].as_u64().unwrap() > 1);
    // Mirroring takes milliseconds: give it a moment, then every packet must hit the blackhole.
    std::thread::sleep(Duration::from_millis(100));
    let before = x.drops("route_blackhole");
    send(10);
    let s = x.wait_stats(Duration::from_secs(2), |s| {
        s["drops"]["route_blackhole"].as_u64() >= Some(before + 10)
    });
    assert_eq!(
        s["drops"]["route_blackhole"].as_u64(),
        Some(before + 10),
        "{s:#}"
    );
    assert!(
        collect_udp(&rx, PORT, 1, Duration::from_millis(300)).is_empty(),
        "blackholed"
    );

    t.router()
        .exec(&[
            "ip",
            "route",
            "replace",
            &prefix,
            "via",
            &t.iface(End::H2).addr.to_string(),
        ])
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    send(10);
    assert_eq!(
        collect_udp(&rx, PORT, 10, Duration::from_secs(2)).len(),
        10,
        "after restoring"
    );
    assert_eq!(x.xfwd.log().matches("ready").count(), 1, "never restarted");
}

#[test]
fn route_change_under_load_does_not_stall_forwarding() {
    require_privileges!();
    let x = XfwdTopo::start("xe3", &[]).unwrap();
    let t = &x.topo;
    let h2 = t.iface(End::H2).addr;
    let prefix = t.behind_h2()[0].to_string();
    x.warm_up();
    let tx = x.h1_socket();
    let rx = x.h2_socket();
    let frame = t
        .frame_from(End::H1, h2)
        .udp(40000, PORT, b"steady")
        .unwrap();
    // A steady stream to h2 while the routing table churns under a different prefix.
    let is_stream = |f: &[u8]| parse(f).is_ok_and(|p| p.udp().is_some_and(|u| u.dst_port == PORT));
    let (sent, got) = stream_during(&tx, &rx, &frame, 20, is_stream, || {
        for i in 0..50 {
            let kind = if i % 2 == 0 {
                "blackhole"
            } else {
                "unreachable"
            };
            t.router()
                .exec(&["ip", "route", "replace", kind, &prefix])
                .unwrap();
        }
    });
    assert_eq!(
        got, sent,
        "no packet of the steady stream lost while routes changed"
    );
    let s = x.stats().unwrap();
    assert!(
        s["fib"]["generation"].as_u64().unwrap() >= 25,
        "the churn was mirrored: {s:#}"
    );
}

#[test]
fn unresolved_next_hop_is_resolved_by_the_kernel_and_packets_are_released() {
    require_privileges!();
    let x = XfwdTopo::start("xe4", &[]).unwrap();
    let t = &x.topo;
    let h2 = t.iface(End::H2).addr;
    let neigh = t
        .router()
        .exec(&["ip", "neigh", "show", "dev", "p1"])
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&neigh.stdout).contains(&h2.to_string()),
        "precondition: the router has no neighbour entry for h2"
    );
    let tx = x.h1_socket();
    let rx = x.h2_socket();
    for i in 0..5u8 {
        tx.send(
            &t.frame_from(End::H1, behind_h2(t, 1))
                .udp(40000, PORT, &[i; 8])
                .unwrap(),
        )
        .unwrap();
    }
    let got = collect_udp(&rx, PORT, 5, Duration::from_secs(3));
    let order: Vec<u8> = got.iter().map(|p| p.udp().unwrap().payload[0]).collect();
    assert_eq!(
        order,
        [0, 1, 2, 3, 4],
        "held while ARP ran, then released in order"
    );
    let neigh = t
        .router()
        .exec(&["ip", "neigh", "show", "dev", "p1"])
        .unwrap();
    let neigh = String::from_utf8_lossy(&neigh.stdout);
    assert!(
        neigh.contains(&h2.to_string()) && neigh.contains("lladdr"),
        "kernel resolved h2: {neigh}"
    );
    // Counters are published a batch at a time: wait for the snapshot taken
    // after the release rather than racing the worker.
    let s = x.wait_stats(Duration::from_secs(2), |s| s["workers"][0]["pending"] == 0);
    assert_eq!(s["workers"][0]["pending"], 0, "{s:#}");
}

#[test]
fn unresolvable_next_hop_holds_a_bounded_queue_then_drops() {
    require_privileges!();
    let x = XfwdTopo::start(
        "xe5",
        &["--unres-qlen", "4", "--resolve-timeout-ms", "1000"],
    )
    .unwrap();
    let t = &x.topo;
    // A gateway that does not exist on p1's subnet.
    t.router()
        .exec(&["ip", "route", "add", "203.0.113.0/24", "via", "10.0.2.99"])
        .unwrap();
    let tx = x.h1_socket();
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..10 {
        tx.send(
            &t.frame_from(End::H1, "203.0.113.7".parse().unwrap())
                .udp(40000, PORT, b"x")
                .unwrap(),
        )
        .unwrap();
    }
    // The failed packets turn into ICMP host unreachable errors to h1, which may wait for h1's
    // address to resolve in turn: wait until nothing is held any more.
    let s = x.wait_stats(Duration::from_secs(5), |s| {
        s["drops"]["neigh_failed"].as_u64() >= Some(4) && s["workers"][0]["pending"] == 0
    });
    assert_eq!(
        s["drops"]["neigh_queue_full"], 6,
        "oldest pushed out beyond unres_qlen: {s:#}"
    );
    assert_eq!(
        s["drops"]["neigh_failed"], 4,
        "the held ones dropped when resolution failed"
    );
    assert_eq!(s["workers"][0]["pending"], 0);
}

#[test]
fn ttl_expiring_packets_are_not_forwarded() {
    require_privileges!();
    let x = XfwdTopo::start("xe6", &[]).unwrap();
    let t = &x.topo;
    let h2 = t.iface(End::H2).addr;
    x.warm_up();
    let tx = x.h1_socket();
    let rx = x.h2_socket();
    for ttl in [1u8, 0, 1] {
        let mut f = t.frame_from(End::H1, h2);
        f.ttl = ttl;
        tx.send(&f.udp(40000, PORT, b"ttl").unwrap()).unwrap();
    }
    let mut f = t.frame_from(End::H1, h2);
    f.ttl = 2;
    tx.send(&f.udp(40000, PORT, b"ttl2").unwrap()).unwrap();
    let got = collect_udp(&rx, PORT, 2, Duration::from_secs(1));
    assert_eq!(got.len(), 1, "only the TTL 2 packet crosses");
    assert_eq!(got[0].ip().unwrap().ttl, 1);
    assert_eq!(x.drops("ttl_expired"), 3);
}

#[test]
fn malformed_ipv4_is_dropped_and_counted_by_reason() {
    require_privileges!();
    let x = XfwdTopo::start("xe7", &[]).unwrap();
    let t = &x.topo;
    let h2 = t.iface(End::H2).addr;
    x.warm_up();
    let tx = x.h1_socket();
    let rx = x.h2_socket();
    let cases = [
        (Malform::BadHeaderChecksum, "ip4_bad_checksum"),
        (Malform::Version(6), "ip4_version"),
        (Malform::Ihl(4), "ip4_bad_ihl"),
        (Malform::TotalLength(19), "ip4_bad_total_len"),
        (Malform::TotalLength(1400), "ip4_truncated"),
    ];
    for (m, _) in cases {
        let mut frame = t
            .frame_from(End::H1, h2)
            .udp(40000, PORT, &[0; 64])
            .unwrap();
        m.apply(&mut frame).unwrap();
        tx.send(&frame).unwrap();
    }
    let s = x.wait_stats(Duration::from_secs(2), |s| {
        cases.iter().all(|(_, r)| s["drops"][r].as_u64() == Some(1))
    });
    for (m, reason) in cases {
        assert_eq!(s["drops"][reason], 1, "{m:?} counted as {reason}: {s:#}");
    }
    assert!(
        collect_udp(&rx, PORT, 1, Duration::from_millis(300)).is_empty(),
        "none forwarded"
    );
}

#[test]
fn two_workers_on_two_queues_forward() {
    require_privileges!();
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("SKIPPED two_workers_on_two_queues_forward: needs 2 CPUs");
        return;
    }
    let x = XfwdTopo::start_with(
        xfwd_testbed::Topology::builder("xe8").queues(2),
        &["--cpus", "0-1"],
    )
    .unwrap();
    let t = &x.topo;
    let r = ping(t.h1(), t.iface(End::H2).addr, 3, None).unwrap();
    assert!(r.all_replied(), "{r:?}");
    let s = x.stats().unwrap();
    assert_eq!(s["workers"].as_array().unwrap().len(), 2);
    assert!(s["forwarded"].as_u64().unwrap() >= 6);
}

#[test]
fn stale_neighbour_in_use_is_confirmed_and_a_changed_mac_relearned() {
    require_privileges!();
    let x = XfwdTopo::start("xe9", &[]).unwrap();
    let t = &x.topo;
    let h2 = t.iface(End::H2).addr.to_string();
    for (k, v) in [("delay_first_probe_time", "1"), ("retrans_time_ms", "200")] {
        t.router()
            .sysctl(&format!("net.ipv4.neigh.p1.{k}"), v)
            .unwrap();
    }
    // The router believes h2 has another MAC, and the entry is STALE: Linux would use it, and
    // its own traffic through it would make the kernel probe it.
    t.router()
        .exec(&[
            "ip",
            "neigh",
            "replace",
            &h2,
            "dev",
            "p1",
            "lladdr",
            "02:00:00:00:99:99",
            "nud",
            "stale",
        ])
        .unwrap();
    let tx = x.h1_socket();
    let rx = x.h2_socket();
    let frame = t
        .frame_from(End::H1, t.iface(End::H2).addr)
        .udp(40000, PORT, b"stale")
        .unwrap();
    let h2_mac = t.iface(End::H2).mac;
    let mut misaddressed = 0;
    let mut delivered = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        tx.send(&frame).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        for p in collect_udp(&rx, PORT, 1, Duration::from_millis(10)) {
            // The raw socket sees frames for any MAC: count the ones h2's stack would take.
            if p.dst_mac == h2_mac {
                delivered += 1
            } else {
                misaddressed += 1
            }
        }
        if delivered >= 3 {
            break;
        }
    }
    assert!(
        misaddressed > 0,
        "the stale entry's MAC was used first, as Linux would"
    );
    let neigh = t
        .router()
        .exec(&["ip", "neigh", "show", &h2, "dev", "p1"])
        .unwrap();
    let neigh = String::from_utf8_lossy(&neigh.stdout);
    assert!(
        delivered >= 3,
        "traffic recovered once the kernel relearned h2's MAC; neigh: {neigh}"
    );
    assert!(
        neigh.contains("02:00:00:00:02:02"),
        "kernel learned the real MAC: {neigh}"
    );
}

#[test]
fn a_worker_kept_off_its_cpu_counts_a_stall() {
    require_privileges!();
    // A spinning worker never sleeps on purpose, so any gap in its loop is a stall.
    let x = XfwdTopo::start("xst", &["--idle", "spin"]).unwrap();
    let before = x.stats().unwrap()["workers"][0]["stalls"].as_u64().unwrap();
    // Every thread frozen for 60 ms: the worker's CPU taken away, as a hypervisor or another
    // task would.
    x.xfwd.signal(Signal::Stop).unwrap();
    // A thread waiting for a contended CPU stops only once it runs (and a SIGCONT before then
    // would cancel the stop): freeze for 60 ms from the moment every thread is stopped.
    let tasks = format!("/proc/{}/task", x.xfwd.pid());
    let all_stopped = || {
        std::fs::read_dir(&tasks).unwrap().all(|t| {
            std::fs::read_to_string(t.unwrap().path().join("status"))
                .is_ok_and(|s| s.contains("State:\tT"))
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !all_stopped() {
        assert!(std::time::Instant::now() < deadline, "xfwd did not stop");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(60));
    x.xfwd.signal(Signal::Cont).unwrap();
    // (Other tests' workers may share the CPU and add short stalls of their own.)
    let s = x.wait_stats(Duration::from_secs(5), |s| {
        s["workers"][0]["longest_stall_ns"].as_u64().unwrap_or(0) >= 50_000_000
    });
    let w = &s["workers"][0];
    let longest = w["longest_stall_ns"].as_u64().unwrap();
    assert!(
        longest >= 50_000_000,
        "the 60 ms freeze is the longest stall: {s}"
    );
    assert!(w["stalls"].as_u64().unwrap() > before, "{s}");
    assert!(w["stall_ns"].as_u64().unwrap() >= longest, "{s}");
    let out = std::process::Command::new(common::xfwd_bin())
        .args(["show", "runtime", "--control"])
        .arg(&x.control)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("stalls") && text.contains(" ms"), "{text}");
}

//! Scale measurement (not a pass/fail timing assertion): a full table in a namespace, dumped and
//! mirrored, then 100 k live route changes followed.
//!
//! ```text
//! cargo test -p xfwd --release --test netlink_scale -- --ignored --nocapture
//! ```
//!
//! The table comes from `routes-v4-1m.txt.gz` (see `shared/data/README.md`), found through
//! `XFWD_ROUTES_1M` or in a `shared/data/` directory above the crate; without it a table of the
//! same size and prefix-length mix is generated, and the test says so.

mod common;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use xfwd::control::mirror::{Change, KernelState};
use xfwd::control::netlink::{KernelEvent, Netlink, NetlinkConfig, Route};
use xfwd::control::tables::TableBuilder;
use xfwd_testbed::NetNs;

fn sh(ns: &NetNs, cmd: &str) {
    let argv: Vec<&str> = cmd.split_whitespace().collect();
    ns.exec(&argv).unwrap_or_else(|e| panic!("{cmd}: {e:#}"));
}

/// `VmHWM` (peak RSS) and `VmRSS` of this process, in MiB.
fn memory_mib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    (kib("VmHWM:") / 1024, kib("VmRSS:") / 1024)
}

/// `(prefix, next hop index)` pairs, deduplicated.
fn load_table() -> Vec<(String, u32)> {
    let candidates: Vec<PathBuf> = std::env::var_os("XFWD_ROUTES_1M")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .map(|d| d.join("shared/data/routes-v4-1m.txt.gz")),
        )
        .collect();
    let mut seen = HashSet::new();
    if let Some(path) = candidates.iter().find(|p| p.exists()) {
        let out = std::process::Command::new("zcat")
            .arg(path)
            .output()
            .expect("zcat");
        let text = String::from_utf8(out.stdout).unwrap();
        let table: Vec<(String, u32)> = text
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(p, _)| seen.insert(p.to_string()))
            .map(|(p, nh)| (p.to_string(), nh.trim().parse().unwrap()))
            .collect();
        eprintln!(
            "table: {} ({} unique prefixes)",
            path.display(),
            table.len()
        );
        return table;
    }
    // Same size and shape (57.7 % /24, 16 % /23, 12 % /22, the rest /8../21), deterministic.
    eprintln!(
        "table: routes-v4-1m.txt.gz not found, GENERATING 1,031,772 prefixes of the same length mix"
    );
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut table = Vec::new();
    while table.len() < 1_031_772 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let roll = x % 1000;
        let len = match roll {
            0..577 => 24,
            577..737 => 23,
            737..857 => 22,
            _ => 8 + (x >> 20) as u8 % 14,
        };
        let addr = ((x >> 32) as u32 | 0x0100_0000) & !(u32::MAX >> len) & 0xdfff_ffff;
        let p = format!("{}/{len}", Ipv4Addr::from(addr));
        if Ipv4Addr::from(addr).octets()[0] != 10 && seen.insert(p.clone()) {
            table.push((p, (x % 512) as u32));
        }
    }
    table
}

fn gateway(nh: u32) -> String {
    format!("10.0.{}.{}", 1 + (nh >> 8), nh & 0xff)
}

/// CPU time (user + system) of the calling thread, from `/proc/thread-self/stat` (clock ticks,
/// `USER_HZ` = 100).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of proc(5), counted from `state` (field 3) at index 0.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn is_route_event(ev: &KernelEvent) -> bool {
    matches!(ev, KernelEvent::NewRoute(..) | KernelEvent::DelRoute(_))
}

#[test]
#[ignore = "loads a full table (1 M routes) into a namespace: cargo test --release --test netlink_scale -- --ignored --nocapture"]
fn full_table_dump_mirror_and_live_changes() {
    xfwd_testbed::require_privileges!();
    eprintln!(
        "size_of: Route {} B, NextHop {} B, KernelEvent {} B",
        size_of::<Route>(),
        size_of::<xfwd::control::netlink::NextHop>(),
        size_of::<KernelEvent>()
    );
    let table = load_table();
    let ns = NetNs::new("nlsc").unwrap();
    sh(&ns, "ip link add d0 type veth peer name d0p");
    sh(&ns, "ip link set d0p up");
    sh(&ns, "ip link set d0 up");
    sh(&ns, "ip addr add 10.0.0.1/16 dev d0");

    let batch = common::batch_file(
        "load",
        table
            .iter()
            .map(|(p, nh)| format!("route add {p} via {} dev d0", gateway(*nh))),
    );
    let t = Instant::now();
    sh(&ns, &format!("ip -batch {}", batch.display()));
    eprintln!(
        "load: ip -batch of {} routes: {:.1} s",
        table.len(),
        t.elapsed().as_secs_f64()
    );
    std::fs::remove_file(&batch).unwrap();

    let t = Instant::now();
    let out = ns
        .exec(&["ip", "-4", "route", "show", "table", "all"])
        .unwrap();
    eprintln!(
        "reference: `ip -4 route show table all` ({} lines): {:.2} s",
        out.stdout.iter().filter(|&&b| b == b'\n').count(),
        t.elapsed().as_secs_f64()
    );
    drop(out);

    let (hwm0, rss0) = memory_mib();
    let mut nl = ns.run(Netlink::open).unwrap().unwrap();
    let t = Instant::now();
    let events = nl.dump().unwrap();
    let dump_s = t.elapsed().as_secs_f64();
    let (hwm1, _) = memory_mib();
    let n_events = events.len();
    let t = Instant::now();
    let mut state = KernelState::from_dump(events);
    let build_s = t.elapsed().as_secs_f64();
    let (hwm2, rss2) = memory_mib();
    eprintln!(
        "dump(): {n_events} events in {dump_s:.2} s ({:.0} k/s); KernelState::from_dump: {build_s:.2} s; \
         total {:.2} s",
        n_events as f64 / dump_s / 1e3,
        dump_s + build_s
    );
    eprintln!(
        "memory: RSS before {rss0} MiB; peak after dump {hwm1} MiB, after build {hwm2} MiB (peak before {hwm0}); \
         RSS with the mirror alone {rss2} MiB"
    );
    assert!(state.main_routes().count() >= table.len());

    // The FIB from the mirror: what stands between the dump and forwarding.
    let names = vec!["d0".to_owned()];
    let t = Instant::now();
    let mut tables = TableBuilder::new(&state, &names).unwrap();
    let fib = tables.published().load_full();
    eprintln!(
        "fib: TableBuilder::new (route selection + RIB + Dir16) of {} prefixes: {:.2} s; lookup \
         structure {:.1} MiB; dump to forwarding tables {:.2} s",
        fib.routes.prefixes(),
        t.elapsed().as_secs_f64(),
        fib.routes.lookup_bytes() as f64 / (1 << 20) as f64,
        dump_s + build_s + t.elapsed().as_secs_f64()
    );
    drop(fib);

    // 100 k live changes: 50 k replaced (new gateway), 25 k deleted, 25 k added.
    let changes = common::batch_file(
        "changes",
        table[..50_000]
            .iter()
            .map(|(p, nh)| format!("route replace {p} via {} dev d0", gateway((nh + 1) % 512)))
            .chain(
                table[50_000..75_000]
                    .iter()
                    .map(|(p, _)| format!("route del {p}")),
            )
            .chain((0..25_000u32).map(|i| {
                format!(
                    "route add 240.{}.{}.0/24 via 10.0.1.1 dev d0",
                    i >> 8,
                    i & 0xff
                )
            })),
    );
    let t = Instant::now();
    let cpu0 = thread_cpu();
    let mut child = ns
        .command("ip")
        .args(["-batch"])
        .arg(&changes)
        .spawn()
        .unwrap();
    let (mut applied, mut overruns) = (0usize, 0usize);
    let mut apply_time = Duration::ZERO;
    let mut fib_time = Duration::ZERO;
    let mut out = Vec::new();
    let mut exited = None;
    let mut last_event = t.elapsed();
    loop {
        nl.recv(&mut out, Duration::from_millis(200)).unwrap();
        let ta = Instant::now();
        let mut change = Change::NONE;
        let mut touched = Vec::new();
        for ev in out.drain(..) {
            if ev == KernelEvent::Overrun {
                overruns += 1;
            }
            if is_route_event(&ev) {
                applied += 1;
                last_event = t.elapsed();
            }
            if let KernelEvent::NewRoute(r, _) | KernelEvent::DelRoute(r) = &ev {
                touched.push((r.dst, r.dst_len));
            }
            change |= state.apply(ev);
        }
        apply_time += ta.elapsed();
        let tf = Instant::now();
        if !change.is_empty() {
            tables.update(&state, change, &touched);
        }
        fib_time += tf.elapsed();
        if exited.is_none()
            && let Some(status) = child.try_wait().unwrap()
        {
            assert!(status.success());
            exited = Some(t.elapsed());
        }
        if exited.is_some()
            && (applied >= 100_000 || t.elapsed() > last_event + Duration::from_secs(2))
        {
            break;
        }
    }
    let cpu = thread_cpu() - cpu0;
    std::fs::remove_file(&changes).unwrap();
    let batch_s = exited.unwrap().as_secs_f64();
    eprintln!(
        "live: 100 k changes by ip -batch in {batch_s:.2} s; {applied} route events mirrored, last one {:.2} s after \
         the start; time inside apply() {:.3} s ({:.2} µs/event); overruns {overruns}",
        last_event.as_secs_f64(),
        apply_time.as_secs_f64(),
        apply_time.as_secs_f64() * 1e6 / applied.max(1) as f64
    );
    eprintln!(
        "live: CPU time of the following thread (recv + decode + apply) {:.2} s ({:.1} µs/event)",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / applied.max(1) as f64
    );
    eprintln!(
        "live: FIB updated in place per netlink batch: {:.3} s for {applied} events ({:.2} µs/event)",
        fib_time.as_secs_f64(),
        fib_time.as_secs_f64() * 1e6 / applied.max(1) as f64
    );
    assert_eq!(overruns, 0, "the 64 MiB event buffer kept up");
    assert_eq!(applied, 100_000);

    let t = Instant::now();
    let cfg = NetlinkConfig {
        event_rcvbuf: 64 << 10,
        ..NetlinkConfig::default()
    };
    let mut check = ns.run(|| Netlink::open_with(&cfg)).unwrap().unwrap();
    let fresh = KernelState::from_dump(check.dump().unwrap());
    assert!(
        fresh == state,
        "mirror after 100 k live changes differs from a fresh dump"
    );
    eprintln!(
        "check: mirror == fresh dump ({} routes), verified in {:.2} s",
        state.route_count(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let change = state.replace_all(nl.dump().unwrap());
    eprintln!(
        "resync of a correct mirror (dump + replace_all + compare): {:.2} s, change {change:?}",
        t.elapsed().as_secs_f64()
    );
    assert!(change.is_empty());
    // The table maintained in place answers as one built from scratch on the final state.
    let fresh = TableBuilder::new(&state, &names).unwrap();
    let (a, b) = (
        tables.published().load_full(),
        fresh.published().load_full(),
    );
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..1_000_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Half random, half inside the changed prefixes.
        let addr = if i % 2 == 0 {
            (x >> 32) as u32
        } else {
            let (p, _) = &table[(x % 75_000) as usize];
            let net: Ipv4Addr = p.split('/').next().unwrap().parse().unwrap();
            net.to_bits() | (x as u32 & 0xff)
        };
        let key = |f: &xfwd::fib::Fib| {
            f.routes.entry(f.routes.lookup(addr)).map(|e| match e {
                xfwd::fib::FibEntry::Gateway { nh } => Err(f.routes.nexthops()[nh as usize]),
                e => Ok(e),
            })
        };
        assert_eq!(key(&a), key(&b), "{}", Ipv4Addr::from_bits(addr));
    }
    eprintln!("check: in-place FIB == FIB built from scratch on 1 M addresses");
    let (hwm, _) = memory_mib();
    eprintln!("memory: final peak {hwm} MiB (with two mirrors alive for the check)");
}

//! End to end with a routing daemon: BIRD (Debian `bird2`) in the router namespace peers over
//! eBGP with a BIRD in h2's namespace, installs the learned route into the router's kernel, and
//! xfwd forwards along it; when h2 withdraws the route, xfwd stops using it.
//!
//! ```text
//!  h1 ── p0 [router: xfwd + BIRD AS 65001] p1 ── eth0 [h2: BIRD AS 65002, lo 198.51.100.1/24]
//!                         ◄──── eBGP 10.0.2.1 ↔ 10.0.2.2: 198.51.100.0/24 next hop 10.0.2.2
//! ```

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::XfwdTopo;
use xfwd_testbed::process::{Daemon, ping};
use xfwd_testbed::{End, NetNs, Topology, require_privileges};

const PREFIX: &str = "198.51.100.0/24";
const TARGET: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

/// BGP timers short enough for a test: connect at once, retry every second, hold 3 s.
const TIMERS: &str = "hold time 3; keepalive time 1; connect delay time 1; \
                      connect retry time 1; error wait time 1, 2;";

fn bird(ns: &NetNs, dir: &Path, name: &str, conf: &str) -> Daemon {
    let c = dir.join(format!("{name}.conf"));
    std::fs::write(&c, conf).unwrap();
    let sock = dir.join(format!("{name}.ctl"));
    let pid = dir.join(format!("{name}.pid"));
    Daemon::spawn(
        ns,
        &[
            "bird",
            "-f",
            "-c",
            c.to_str().unwrap(),
            "-s",
            sock.to_str().unwrap(),
            "-P",
            pid.to_str().unwrap(),
        ],
    )
    .expect("bird (Debian package bird2)")
}

fn birdc(ns: &NetNs, dir: &Path, name: &str, cmd: &[&str]) -> String {
    let sock = dir.join(format!("{name}.ctl"));
    let mut argv = vec!["birdc", "-s", sock.to_str().unwrap()];
    argv.extend_from_slice(cmd);
    let out = ns.exec(&argv).unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kernel_route(ns: &NetNs) -> String {
    let out = ns.exec(&["ip", "route", "show", PREFIX]).unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if f() {
            return t0.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} within {timeout:?}");
}

#[test]
fn bgp_route_from_bird_is_forwarded_and_withdrawal_stops_it() {
    require_privileges!();
    assert!(
        std::process::Command::new("bird")
            .arg("--version")
            .output()
            .is_ok(),
        "bird not installed (Debian package bird2; cargo xtask test installs it)"
    );
    let x = XfwdTopo::start_with(Topology::builder("opsb").behind_h2(&[]), &[]).unwrap();
    let t = &x.topo;
    let (r_addr, h2_addr) = (t.iface(End::P1).addr, t.iface(End::H2).addr);
    t.h2()
        .ip(&["addr", "add", "198.51.100.1/24", "dev", "lo"])
        .unwrap();
    let dir = std::env::temp_dir().join(format!("xfwd-bird-{}", t.router().name()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let _router_bird = bird(
        t.router(),
        &dir,
        "router",
        &format!(
            "router id {r_addr};\nprotocol device {{ scan time 1; }}\n\
             protocol kernel {{ scan time 1; ipv4 {{ import none; export all; }}; }}\n\
             protocol bgp downlink {{ local {r_addr} as 65001; neighbor {h2_addr} as 65002; {TIMERS}\n\
               ipv4 {{ import all; export none; }}; }}\n"
        ),
    );
    let _h2_bird = bird(
        t.h2(),
        &dir,
        "h2",
        &format!(
            "router id {h2_addr};\nprotocol device {{ scan time 1; }}\n\
             protocol static s1 {{ ipv4; route {PREFIX} unreachable; }}\n\
             protocol bgp uplink {{ local {h2_addr} as 65002; neighbor {r_addr} as 65001; {TIMERS}\n\
               ipv4 {{ import none; export where proto = \"s1\"; next hop self; }}; }}\n"
        ),
    );

    let learned = wait_until(
        "BIRD installs the BGP route into the router's kernel",
        Duration::from_secs(15),
        || kernel_route(t.router()).contains("proto bird"),
    );
    let route = kernel_route(t.router());
    assert!(route.contains(&format!("via {h2_addr} dev p1")), "{route}");
    println!(
        "BGP route installed {learned:?} after both BIRDs started: {}",
        route.trim()
    );

    // xfwd follows the kernel and forwards along the route (the router's kernel forwarding is
    // off: only xfwd can deliver this ping).
    x.warm_up();
    let before = x.stats().unwrap()["forwarded"].as_u64().unwrap();
    let p = ping(t.h1(), TARGET, 3, None).unwrap();
    assert!(p.all_replied(), "{p:?}\n{}", x.xfwd.log());
    let after = x.stats().unwrap()["forwarded"].as_u64().unwrap();
    assert!(
        after >= before + 6,
        "xfwd forwarded the pings both ways: {before} -> {after}"
    );
    let out = std::process::Command::new(common::xfwd_bin())
        .args(["show", "routes", &TARGET.to_string(), "--json", "--control"])
        .arg(&x.control)
        .output()
        .unwrap();
    let routes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(routes["routes"][0]["prefix"], PREFIX, "{routes}");
    assert_eq!(routes["routes"][0]["protocol"], "bird", "{routes}");

    // Withdraw on h2: BGP UPDATE withdraws, BIRD removes the kernel route, xfwd stops using it.
    let no_route = x.drops("no_route");
    birdc(t.h2(), &dir, "h2", &["disable", "s1"]);
    let gone = wait_until(
        "the withdrawn route leaves the router's kernel",
        Duration::from_secs(10),
        || kernel_route(t.router()).trim().is_empty(),
    );
    println!("withdrawal reached the router's kernel {gone:?} after `birdc disable`");
    let p = ping(t.h1(), TARGET, 2, None).unwrap();
    assert_eq!(p.received, 0, "no route, no reply: {p:?}");
    let s = x.wait_stats(Duration::from_secs(2), |s| {
        s["drops"]["no_route"].as_u64().unwrap_or(0) >= no_route + 2
    });
    assert!(
        s["drops"]["no_route"].as_u64().unwrap() >= no_route + 2,
        "xfwd drops as no_route: {s}"
    );

    // Announced again: forwarded again.
    birdc(t.h2(), &dir, "h2", &["enable", "s1"]);
    wait_until("the route comes back", Duration::from_secs(10), || {
        kernel_route(t.router()).contains("proto bird")
    });
    let p = ping(t.h1(), TARGET, 2, None).unwrap();
    assert!(p.all_replied(), "{p:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

//! End to end: starting, stopping and refusing to start.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{XfwdTopo, xfwd_bin};
use xfwd_testbed::process::{Signal, ping};
use xfwd_testbed::{End, NetNs, Topology, require_privileges};

#[test]
fn clean_stop_detaches_and_traffic_falls_back_to_the_kernel() {
    require_privileges!();
    for (prefix, sig) in [("xl1", Signal::Term), ("xl2", Signal::Int)] {
        let mut x = XfwdTopo::start(prefix, &[]).unwrap();
        let t = &x.topo;
        let h2 = t.iface(End::H2).addr;
        assert!(ping(t.h1(), h2, 2, None).unwrap().all_replied());
        assert!(x.xdp_attached("p0") && x.xdp_attached("p1"));
        assert!(x.control.exists());

        let status = x.stop(sig).unwrap();
        assert!(status.success(), "{sig:?}: exit {status}\n{}", x.xfwd.log());
        let log = x.xfwd.log();
        assert!(log.contains("stopped"), "{log}");
        assert!(
            !x.xdp_attached("p0") && !x.xdp_attached("p1"),
            "XDP detached on exit"
        );
        assert!(!x.control.exists(), "control socket removed");

        // With xfwd gone, the kernel is the router again.
        assert!(
            !ping(x.topo.h1(), h2, 1, None).unwrap().all_replied(),
            "kernel forwarding is off"
        );
        x.topo.set_router_forwarding(true).unwrap();
        assert!(
            ping(x.topo.h1(), h2, 2, None).unwrap().all_replied(),
            "kernel forwards after xfwd left"
        );
    }
}

#[test]
fn sigkill_leaves_the_kernel_in_charge() {
    require_privileges!();
    let mut x = XfwdTopo::start("xl3", &[]).unwrap();
    x.topo.set_router_forwarding(true).unwrap();
    let h2 = x.topo.iface(End::H2).addr;
    assert!(ping(x.topo.h1(), h2, 1, None).unwrap().all_replied());
    x.stop(Signal::Kill).unwrap();
    // The bpf_link and the sockets die with the process: frames pass to the kernel again.
    let mut detached = false;
    for _ in 0..100 {
        if !x.xdp_attached("p0") {
            detached = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(detached, "XDP program gone after SIGKILL");
    assert!(ping(x.topo.h1(), h2, 2, None).unwrap().all_replied());
}

fn run_in(ns: &NetNs, args: &[&str]) -> (i32, String) {
    let out = ns.command(xfwd_bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn refuses_bad_input_with_one_clear_line_and_leaves_nothing_attached() {
    require_privileges!();
    let t = Topology::builder("xl4").build().unwrap();
    let ctl = std::env::temp_dir().join(format!("{}.sock", t.router().name()));
    let ctl = ctl.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "--iface", "p0", "--iface", "nope0", "--control", ctl],
            "interface nope0 does not exist",
        ),
        (
            &["run", "--iface", "p0", "--iface", "p0", "--control", ctl],
            "--iface p0 given twice",
        ),
        (
            &["run", "--iface", "p0", "--cpus", "99", "--control", ctl],
            "CPU 99 does not exist",
        ),
        (
            &["run", "--iface", "p0", "--cpus", "1-0", "--control", ctl],
            "reversed",
        ),
        (
            &[
                "run",
                "--iface",
                "p0",
                "--ring-size",
                "1000",
                "--control",
                ctl,
            ],
            "--ring-size 1000",
        ),
        (
            &[
                "run",
                "--iface",
                "p0",
                "--frame-size",
                "1500",
                "--control",
                ctl,
            ],
            "--frame-size 1500",
        ),
        (
            &["run", "--iface", "lo", "--control", ctl],
            "no Ethernet address",
        ),
        (
            &["run", "--iface", "p0", "--cpus", "0-1", "--control", ctl],
            "rx queue",
        ),
    ];
    for (args, want) in cases {
        if args.contains(&"0-1") && std::thread::available_parallelism().map_or(1, |n| n.get()) < 2
        {
            continue;
        }
        let (code, err) = run_in(t.router(), args);
        assert_ne!(code, 0, "{args:?} must fail");
        assert!(err.contains(want), "{args:?}: expected {want:?} in:\n{err}");
        assert!(
            err.lines().filter(|l| l.contains("error")).count() == 1,
            "one error line:\n{err}"
        );
        for ifname in ["p0", "p1"] {
            let link = t.router().exec(&["ip", "link", "show", ifname]).unwrap();
            assert!(
                !String::from_utf8_lossy(&link.stdout).contains("xdp"),
                "{args:?} left XDP on {ifname}"
            );
        }
    }
    // clap rejects unknown flags with usage and exit status 2.
    let (code, err) = run_in(t.router(), &["run", "--iface", "p0", "--bogus"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--bogus"), "{err}");
}

#[test]
fn second_instance_on_the_same_control_socket_is_refused() {
    require_privileges!();
    let x = XfwdTopo::start("xl5", &[]).unwrap();
    let ctl = x.control.to_str().unwrap();
    let (code, err) = run_in(x.topo.router(), &["run", "--iface", "p1", "--control", ctl]);
    assert_ne!(code, 0);
    // Either the XDP slot is taken or the socket is: both must be named, and the first instance
    // must keep forwarding.
    assert!(err.contains("already"), "{err}");
    assert!(
        ping(x.topo.h1(), x.topo.iface(End::H2).addr, 2, None)
            .unwrap()
            .all_replied()
    );
    assert!(x.xdp_attached("p0") && x.xdp_attached("p1"));
}

#[test]
fn missing_capabilities_are_named() {
    require_privileges!();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ])
        .args([
            xfwd_bin(),
            "run",
            "--iface",
            "lo",
            "--control",
            "/tmp/xfwd-nobody.sock",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for cap in ["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_BPF", "CAP_IPC_LOCK"] {
        assert!(err.contains(cap), "{cap} named in: {err}");
    }
}

#[test]
fn show_without_a_running_instance_says_so() {
    let out = Command::new(xfwd_bin())
        .args(["show", "stats", "--control", "/nonexistent/xfwd.sock"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is `xfwd run` running?"), "{err}");
}

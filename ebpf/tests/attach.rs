//! Attaching the steering program to real interfaces in network namespaces: modes,
//! fallback, conflicts, real traffic through it, and detachment on drop and on kill.

mod common;

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{assert_detached, has_xdp, ifindex, out, veth_pair};
use xfwd_ebpf::{AttachMode, AttachedMode, Error, Sink, SinkConfig, Steer, Verdict};
use xfwd_testbed::NetNs;

fn pair(prefix: &str) -> (NetNs, NetNs, u32) {
    let a = NetNs::new(prefix).unwrap();
    let b = NetNs::new(prefix).unwrap();
    veth_pair(&a, &b, &[]);
    let a0 = ifindex(&a, "a0");
    (a, b, a0)
}

#[test]
fn native_attach_steers_real_traffic_and_detaches_on_drop() {
    xfwd_testbed::require_privileges!();
    let (a, b, a0) = pair("xan");
    a.exec(&["ip", "addr", "add", "10.9.0.1/24", "dev", "a0"])
        .unwrap();
    b.exec(&["ip", "addr", "add", "10.9.0.2/24", "dev", "b0"])
        .unwrap();

    let mut steer = Steer::load().unwrap();
    let mode = a
        .run(|| steer.attach(a0, 0, AttachMode::Native))
        .unwrap()
        .unwrap();
    assert_eq!(mode, AttachedMode::Native);
    let attachment = steer.attachment(a0).unwrap();
    assert_eq!(attachment.ifname, "a0");
    assert!(attachment.native_refused.is_none());
    let shown = out(&a, &["ip", "link", "show", "dev", "a0"]);
    assert!(shown.contains("xdp"), "{shown}");
    assert!(!shown.contains("xdpgeneric"), "{shown}");

    // With no socket in the map, everything reaches the kernel: ping works through it.
    b.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.9.0.1"])
        .unwrap();
    let c = steer.counters().unwrap();
    assert!(c.get(Verdict::PassArp) >= 1, "{c:?}");
    assert!(c.get(Verdict::PassNoSocket) >= 3, "{c:?}");
    assert_eq!(c.get(Verdict::PassLocal), 0, "{c:?}");
    assert_eq!(c.get(Verdict::Redirect), 0, "{c:?}");

    // Once the address is known local, the echo requests are counted as such.
    steer
        .set_local_addrs([Ipv4Addr::new(10, 9, 0, 1), Ipv4Addr::new(10, 9, 0, 255)])
        .unwrap();
    b.exec(&["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.9.0.1"])
        .unwrap();
    let c2 = steer.counters().unwrap().since(&c);
    assert!(c2.get(Verdict::PassLocal) >= 2, "{c2:?}");

    drop(steer);
    assert_detached(&a, "a0");
    // And the kernel path still works without it.
    b.exec(&["ping", "-c", "1", "-W", "2", "10.9.0.1"]).unwrap();
}

#[test]
fn generic_mode_explicit_detach_and_reattach() {
    xfwd_testbed::require_privileges!();
    let (a, _b, a0) = pair("xag");
    let mut steer = Steer::load().unwrap();
    let mode = a
        .run(|| steer.attach(a0, 7, AttachMode::Generic))
        .unwrap()
        .unwrap();
    assert_eq!(mode, AttachedMode::Generic);
    assert!(out(&a, &["ip", "link", "show", "dev", "a0"]).contains("xdpgeneric"));
    // Attaching the same interface twice is refused by us, not by the kernel.
    let again = a.run(|| steer.attach(a0, 7, AttachMode::Generic)).unwrap();
    assert!(
        matches!(again, Err(Error::AlreadyAttached { ref ifname }) if ifname == "a0"),
        "{again:?}"
    );

    steer.detach(a0).unwrap();
    assert_detached(&a, "a0");
    assert!(matches!(steer.detach(a0), Err(Error::NotAttached { .. })));
    // The slot is free again after detach.
    steer.register_iface(12345, 7).unwrap();
    steer.unregister_iface(12345).unwrap();

    let mode = a
        .run(|| steer.attach(a0, 7, AttachMode::Auto))
        .unwrap()
        .unwrap();
    assert_eq!(mode, AttachedMode::Native, "veth supports native XDP");
    assert!(has_xdp(&a, "a0"));
    drop(steer);
    assert_detached(&a, "a0");
}

#[test]
fn auto_falls_back_to_generic_where_the_driver_has_no_xdp() {
    xfwd_testbed::require_privileges!();
    let ns = NetNs::new("xaa").unwrap();
    ns.exec(&["ip", "link", "add", "d0", "type", "bridge"])
        .unwrap();
    ns.exec(&["ip", "link", "set", "d0", "up"]).unwrap();
    let d0 = ifindex(&ns, "d0");
    let mut steer = Steer::load().unwrap();

    let native = ns.run(|| steer.attach(d0, 0, AttachMode::Native)).unwrap();
    match native {
        Err(Error::Attach {
            ref ifname,
            mode: "native",
            ..
        }) => assert_eq!(ifname, "d0"),
        other => panic!("native on a bridge: {other:?}"),
    }
    assert!(!has_xdp(&ns, "d0"));
    let mode = ns
        .run(|| steer.attach(d0, 0, AttachMode::Auto))
        .unwrap()
        .unwrap();
    assert_eq!(mode, AttachedMode::Generic);
    let refused = steer
        .attachment(d0)
        .unwrap()
        .native_refused
        .as_ref()
        .unwrap();
    assert_eq!(refused.raw_os_error(), Some(libc_eopnotsupp()), "{refused}");
    assert!(out(&ns, &["ip", "link", "show", "dev", "d0"]).contains("xdpgeneric"));
    drop(steer);
    assert_detached(&ns, "d0");
}

fn libc_eopnotsupp() -> i32 {
    95 // EOPNOTSUPP on Linux
}

#[test]
fn another_xdp_program_is_a_clear_error() {
    xfwd_testbed::require_privileges!();
    let (a, _b, a0) = pair("xab");
    let mut steer = Steer::load().unwrap();

    // Another bpf_link-attached program (our sink stands in for a foreign one).
    for other_mode in [AttachMode::Native, AttachMode::Generic] {
        let mut other = Sink::load(&SinkConfig::default()).unwrap();
        a.run(|| other.attach(a0, other_mode)).unwrap().unwrap();
        for mode in [AttachMode::Auto, AttachMode::Native, AttachMode::Generic] {
            let e = a.run(|| steer.attach(a0, 0, mode)).unwrap().unwrap_err();
            assert!(
                matches!(e, Error::XdpBusy { ref ifname } if ifname == "a0"),
                "{other_mode:?}/{mode:?}: {e:?}"
            );
            assert!(e.to_string().contains("ip link set dev a0 xdp off"), "{e}");
        }
        // The failed attempts left no registration behind: the slot is free.
        steer.register_iface(54321, 0).unwrap();
        steer.unregister_iface(54321).unwrap();
        drop(other);
        assert_detached(&a, "a0");
    }

    // A program attached the legacy way, over netlink, by iproute2.
    let obj = concat!(env!("OUT_DIR"), "/sink.bpf.o");
    a.exec(&[
        "ip",
        "link",
        "set",
        "dev",
        "a0",
        "xdpgeneric",
        "obj",
        obj,
        "sec",
        "xdp",
    ])
    .unwrap();
    assert!(has_xdp(&a, "a0"));
    let e = a
        .run(|| steer.attach(a0, 0, AttachMode::Auto))
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, Error::XdpBusy { .. }), "{e:?}");
    a.exec(&["ip", "link", "set", "dev", "a0", "xdpgeneric", "off"])
        .unwrap();
    assert_eq!(
        a.run(|| steer.attach(a0, 0, AttachMode::Auto))
            .unwrap()
            .unwrap(),
        AttachedMode::Native
    );
}

#[test]
fn missing_interface() {
    xfwd_testbed::require_privileges!();
    let ns = NetNs::new("xam").unwrap();
    let mut steer = Steer::load().unwrap();
    let e = ns
        .run(|| steer.attach(4242, 0, AttachMode::Auto))
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(e, Error::NoSuchInterface { ifindex: 4242 }),
        "{e:?}"
    );
}

const HELPER_DEV: &str = "XFWD_TEST_HELPER_DEV";

/// Run by `killed_process_detaches` in a namespace: attaches to `$XFWD_TEST_HELPER_DEV`,
/// says so, then waits to be killed.
#[test]
#[ignore = "helper process of killed_process_detaches"]
fn helper_attach_and_wait() {
    let Ok(dev) = std::env::var(HELPER_DEV) else {
        return;
    };
    let index: u32 = std::fs::read_to_string(format!("/sys/class/net/{dev}/ifindex"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut steer = Steer::load().unwrap();
    steer.attach(index, 0, AttachMode::Native).unwrap();
    println!("ATTACHED");
    std::thread::sleep(Duration::from_secs(60));
    panic!("helper was not killed within 60 s");
}

#[test]
fn killed_process_detaches() {
    xfwd_testbed::require_privileges!();
    let (a, _b, _) = pair("xak");
    let exe = std::env::current_exe().unwrap();
    let mut child = a
        .command(exe.to_str().unwrap())
        .args([
            "--ignored",
            "--exact",
            "helper_attach_and_wait",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_DEV, "a0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let attached = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("ATTACHED"));
    assert!(attached, "helper did not attach");
    assert!(has_xdp(&a, "a0"));
    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while has_xdp(&a, "a0") {
        assert!(
            Instant::now() < deadline,
            "XDP still attached 5 s after the owner was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn jumbo_mtu_needs_the_multi_buffer_variant_for_native_mode() {
    xfwd_testbed::require_privileges!();
    let (a, b, a0) = pair("xaj");
    b.exec(&["ip", "link", "set", "b0", "mtu", "9000"]).unwrap();

    let mut single = Steer::load().unwrap();
    let e = a
        .run(|| single.attach(a0, 0, AttachMode::Native))
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, Error::Attach { mode: "native", .. }), "{e:?}");
    assert!(e.to_string().contains("MultiBuffer"), "{e}");
    // Auto still drives the interface, in generic mode, and says why.
    assert_eq!(
        a.run(|| single.attach(a0, 0, AttachMode::Auto))
            .unwrap()
            .unwrap(),
        AttachedMode::Generic
    );
    let why = steer_refusal(&single, a0);
    assert_eq!(why, Some(34), "ERANGE from veth_xdp_set");
    drop(single);
    assert_detached(&a, "a0");

    let mut multi = Steer::load_variant(xfwd_ebpf::SteerVariant::MultiBuffer).unwrap();
    assert_eq!(
        a.run(|| multi.attach(a0, 0, AttachMode::Native))
            .unwrap()
            .unwrap(),
        AttachedMode::Native
    );

    // Jumbo frames arrive in several buffers and go to the kernel; the rest is steered.
    a.exec(&["ip", "link", "set", "a0", "mtu", "9000"]).unwrap();
    a.exec(&["ip", "addr", "add", "10.9.0.1/24", "dev", "a0"])
        .unwrap();
    b.exec(&["ip", "addr", "add", "10.9.0.2/24", "dev", "b0"])
        .unwrap();
    b.exec(&[
        "ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "8000", "10.9.0.1",
    ])
    .unwrap();
    let c = multi.counters().unwrap();
    assert!(c.get(Verdict::PassFrags) >= 2, "{c:?}");
    b.exec(&[
        "ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "1000", "10.9.0.1",
    ])
    .unwrap();
    let c2 = multi.counters().unwrap().since(&c);
    assert_eq!(c2.get(Verdict::PassFrags), 0, "{c2:?}");
    assert!(c2.get(Verdict::PassNoSocket) >= 2, "{c2:?}");
}

fn steer_refusal(steer: &Steer, ifindex: u32) -> Option<i32> {
    steer
        .attachment(ifindex)?
        .native_refused
        .as_ref()?
        .raw_os_error()
}

//! Privileged tests of neighbour resolution through the kernel: `RTM_NEWNEIGH` with `NTF_USE`
//! and managed entries, across a veth pair between two namespaces.

use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use xfwd::control::mirror::KernelState;
use xfwd::control::netlink::{KernelEvent, Neigh, Netlink, NudState};
use xfwd_testbed::NetNs;

const NTF_EXT_MANAGED: u32 = 1;

fn sh(ns: &NetNs, cmd: &str) {
    let argv: Vec<&str> = cmd.split_whitespace().collect();
    ns.exec(&argv).unwrap_or_else(|e| panic!("{cmd}: {e:#}"));
}

/// Namespace A (`a0`, 10.9.0.1/24) and B (`b0`, 10.9.0.2/24) joined by a veth pair. Returns
/// B's MAC.
fn pair(a: &NetNs, b: &NetNs) -> [u8; 6] {
    sh(
        a,
        &format!("ip link add a0 type veth peer name b0 netns {}", b.name()),
    );
    sh(a, "ip addr add 10.9.0.1/24 dev a0");
    sh(b, "ip addr add 10.9.0.2/24 dev b0");
    sh(b, "ip link set b0 up");
    sh(a, "ip link set a0 up");
    let out = b.exec(&["cat", "/sys/class/net/b0/address"]).unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let bytes: Vec<u8> = text
        .trim()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

/// Waits for a `NewNeigh` about `ip` that satisfies `done`, applying every event to `state` and
/// recording the states seen for `ip` with their time since `t0`.
fn wait_neigh(
    nl: &mut Netlink,
    state: &mut KernelState,
    ip: Ipv4Addr,
    t0: Instant,
    limit: Duration,
    done: impl Fn(&Neigh) -> bool,
) -> (Option<Neigh>, Vec<(Duration, NudState)>) {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    while t0.elapsed() < limit {
        nl.recv(&mut out, Duration::from_millis(100)).unwrap();
        for ev in out.drain(..) {
            state.apply(ev.clone());
            if let KernelEvent::NewNeigh(n) = ev
                && n.ip == ip
            {
                seen.push((t0.elapsed(), n.state));
                if done(&n) {
                    return (Some(n), seen);
                }
            }
        }
    }
    (None, seen)
}

/// `tcpdump` on `b0` in namespace B, printing ARP frames.
fn capture_arp(b: &NetNs) -> Child {
    let mut child = b
        .command("tcpdump")
        .args(["-i", "b0", "-nn", "-l", "-U", "arp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump (apt-get install tcpdump)");
    // Wait for "listening on b0" so no frame is missed; keep reading stderr in the background
    // so tcpdump never blocks on it.
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("listening on") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("tcpdump did not start listening");
    child
}

#[test]
fn resolve_neigh_reaches_the_peer_and_fails_for_an_absent_host() {
    xfwd_testbed::require_privileges!();
    let a = NetNs::new("nna").unwrap();
    let b = NetNs::new("nnb").unwrap();
    let b_mac = pair(&a, &b);
    let mut nl = a.run(Netlink::open).unwrap().unwrap();
    let mut state = KernelState::from_dump(nl.dump().unwrap());
    let a0 = state.link_by_name("a0").unwrap().ifindex;
    let mut tcpdump = capture_arp(&b);

    // A peer that answers: REACHABLE with its MAC.
    let peer = Ipv4Addr::new(10, 9, 0, 2);
    assert!(state.neigh(a0, peer).is_none());
    let t0 = Instant::now();
    nl.resolve_neigh(a0, peer).unwrap();
    let (n, seen) = wait_neigh(&mut nl, &mut state, peer, t0, Duration::from_secs(5), |n| {
        n.state.is_valid()
    });
    let n = n.unwrap_or_else(|| panic!("no usable entry for {peer}; saw {seen:?}"));
    assert_eq!((n.state, n.mac), (NudState::REACHABLE, Some(b_mac)));
    assert!(n.state.is_valid() && !n.state.is_failed());
    assert_eq!(state.neigh(a0, peer), Some(&n), "mirrored");
    eprintln!(
        "resolve {peer}: REACHABLE after {:?} (states {seen:?})",
        seen.last().unwrap().0
    );

    // No such host: FAILED after mcast_solicit (3) probes, one per retrans_time (1 s).
    let absent = Ipv4Addr::new(10, 9, 0, 77);
    let t0 = Instant::now();
    nl.resolve_neigh(a0, absent).unwrap();
    let (n, seen) = wait_neigh(
        &mut nl,
        &mut state,
        absent,
        t0,
        Duration::from_secs(10),
        |n| n.state.is_failed(),
    );
    let n = n.unwrap_or_else(|| panic!("no FAILED entry for {absent}; saw {seen:?}"));
    assert_eq!((n.state, n.mac), (NudState::FAILED, None));
    assert!(n.state.is_failed() && !n.state.is_valid());
    let failed_after = seen.last().unwrap().0;
    assert!(
        failed_after >= Duration::from_secs(2),
        "FAILED too early: {failed_after:?}"
    );
    eprintln!("resolve {absent}: FAILED after {failed_after:?} (states {seen:?})");

    // Asking again while FAILED starts a new round of probes.
    let t0 = Instant::now();
    nl.resolve_neigh(a0, absent).unwrap();
    let (n, seen) = wait_neigh(
        &mut nl,
        &mut state,
        absent,
        t0,
        Duration::from_secs(10),
        |n| n.state.is_failed(),
    );
    assert!(n.is_some(), "second round: {seen:?}");
    eprintln!("resolve {absent} again: states {seen:?}");

    // The ARP requests really went out on the wire.
    tcpdump.kill().unwrap();
    let mut text = String::new();
    tcpdump
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    tcpdump.wait().unwrap();
    let who_has = |ip: &str| {
        text.lines()
            .filter(|l| l.contains(&format!("Request who-has {ip} ")))
            .count()
    };
    assert!(
        who_has("10.9.0.2") >= 1,
        "no ARP request for the peer in:\n{text}"
    );
    assert!(
        who_has("10.9.0.77") >= 4,
        "expected 3 probes per round for the absent host in:\n{text}"
    );
    eprintln!(
        "ARP requests seen on b0: 10.9.0.2 x{}, 10.9.0.77 x{}",
        who_has("10.9.0.2"),
        who_has("10.9.0.77")
    );
}

#[test]
fn resolve_neigh_reconfirms_a_stale_entry_and_rejects_a_bad_link() {
    xfwd_testbed::require_privileges!();
    let a = NetNs::new("nns").unwrap();
    let b = NetNs::new("nnt").unwrap();
    let b_mac = pair(&a, &b);
    sh(
        &a,
        "ip neigh add 10.9.0.2 lladdr 02:00:00:00:00:99 dev a0 nud stale",
    );
    let mut nl = a.run(Netlink::open).unwrap().unwrap();
    let mut state = KernelState::from_dump(nl.dump().unwrap());
    let a0 = state.link_by_name("a0").unwrap().ifindex;
    let peer = Ipv4Addr::new(10, 9, 0, 2);
    assert_eq!(
        state.neigh(a0, peer).map(|n| n.state),
        Some(NudState::STALE)
    );
    let t0 = Instant::now();
    nl.resolve_neigh(a0, peer).unwrap();
    // STALE → DELAY (not notified) → PROBE after delay_first_probe_time (5 s): unicast probes
    // to the stale MAC, which nobody owns → FAILED after ucast_solicit (3) more seconds.
    let (n, seen) = wait_neigh(
        &mut nl,
        &mut state,
        peer,
        t0,
        Duration::from_secs(15),
        |n| n.state.is_failed(),
    );
    eprintln!("stale {peer} with a wrong MAC: states {seen:?}");
    assert!(
        seen.iter()
            .any(|(t, s)| *s == NudState::PROBE && *t >= Duration::from_secs(4)),
        "{seen:?}"
    );
    assert_eq!(n.map(|n| n.state), Some(NudState::FAILED), "{seen:?}");
    // Asking again from FAILED broadcasts, and the real peer answers.
    let t0 = Instant::now();
    nl.resolve_neigh(a0, peer).unwrap();
    let (n, seen) = wait_neigh(&mut nl, &mut state, peer, t0, Duration::from_secs(5), |n| {
        n.state.is_valid()
    });
    eprintln!("{peer} again from FAILED: states {seen:?}");
    assert_eq!(
        n.map(|n| (n.state, n.mac)),
        Some((NudState::REACHABLE, Some(b_mac)))
    );

    let err = nl.resolve_neigh(999, peer).unwrap_err();
    assert!(err.to_string().contains("999"), "{err}");
    eprintln!("bad ifindex: {err}");
}

#[test]
fn managed_neighbour_is_resolved_without_traffic() {
    xfwd_testbed::require_privileges!();
    let a = NetNs::new("nnm").unwrap();
    let b = NetNs::new("nnn").unwrap();
    let b_mac = pair(&a, &b);
    let mut nl = a.run(Netlink::open).unwrap().unwrap();
    let mut state = KernelState::from_dump(nl.dump().unwrap());
    let a0 = state.link_by_name("a0").unwrap().ifindex;
    let peer = Ipv4Addr::new(10, 9, 0, 2);
    let t0 = Instant::now();
    nl.add_managed_neigh(a0, peer).unwrap();
    let (n, seen) = wait_neigh(&mut nl, &mut state, peer, t0, Duration::from_secs(5), |n| {
        n.state.is_valid()
    });
    let n = n.unwrap_or_else(|| panic!("managed entry not resolved: {seen:?}"));
    assert_eq!((n.state, n.mac), (NudState::REACHABLE, Some(b_mac)));
    assert_ne!(
        n.ext_flags & NTF_EXT_MANAGED,
        0,
        "NDA_FLAGS_EXT carries NTF_EXT_MANAGED"
    );
    eprintln!(
        "managed {peer}: REACHABLE after {:?} (states {seen:?})",
        seen.last().unwrap().0
    );
    let dumped = KernelState::from_dump(nl.dump().unwrap());
    assert_eq!(
        dumped
            .neigh(a0, peer)
            .map(|n| n.ext_flags & NTF_EXT_MANAGED),
        Some(NTF_EXT_MANAGED)
    );
}

//! The steering program through BPF_PROG_TEST_RUN: one crafted frame per case, the XDP
//! action asserted and exactly one verdict counter moved.

mod common;

use std::net::Ipv4Addr;

use common::{eth, ipv4_to, transit};
use xfwd_ebpf::{Error, Steer, SteerVariant, Verdict, XDP_PASS, XDP_REDIRECT};
use xfwd_testbed::NetNs;

const LO: u32 = 1;

/// Runs `frame` and asserts the action and that only `verdict`'s counter moved, by one.
#[track_caller]
fn expect(steer: &Steer, frame: &[u8], ifindex: u32, queue: u32, action: u32, verdict: Verdict) {
    let before = steer.counters().unwrap();
    let got = steer.test_run(frame, ifindex, queue).unwrap();
    let delta = steer.counters().unwrap().since(&before);
    assert_eq!(got, action, "action for {verdict} case");
    for (v, n) in delta.iter() {
        assert_eq!(
            n,
            u64::from(v == verdict),
            "counter {v} after a {verdict} case: {delta:?}"
        );
    }
}

fn in_netns(prefix: &str, f: impl FnOnce(&NetNs) + Send) {
    let ns = NetNs::new(prefix).unwrap();
    ns.run(|| f(&ns)).unwrap();
}

#[test]
fn steering_decisions() {
    xfwd_testbed::require_privileges!();
    in_netns("xst", |_| {
        let mut steer = Steer::load().unwrap();
        steer.register_iface(LO, 3).unwrap();
        let local = Ipv4Addr::new(10, 0, 0, 1);
        let subnet_bcast = Ipv4Addr::new(10, 0, 0, 255);
        steer.set_local_addrs([local, subnet_bcast]).unwrap();

        // ARP request (htype 1, ptype IPv4, op 1).
        let arp = eth(
            0x0806,
            &[
                0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 10, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 10, 0, 0,
                1,
            ],
        );
        expect(&steer, &arp, LO, 0, XDP_PASS, Verdict::PassArp);
        let ipv6 = eth(0x86dd, &[0x60; 40]);
        expect(&steer, &ipv6, LO, 0, XDP_PASS, Verdict::PassNotIpv4);
        let lldp = eth(0x88cc, &[0; 46]);
        expect(&steer, &lldp, LO, 0, XDP_PASS, Verdict::PassNotIpv4);
        // 802.1Q VLAN 100 carrying IPv4 to a transit address, and 802.1ad.
        let inner = &transit()[12..];
        let vlan = eth(0x8100, &[&[0x00, 0x64][..], inner].concat());
        expect(&steer, &vlan, LO, 0, XDP_PASS, Verdict::PassVlan);
        let qinq = eth(
            0x88a8,
            &[&[0x00, 0x64, 0x81, 0x00, 0x00, 0x65][..], inner].concat(),
        );
        expect(&steer, &qinq, LO, 0, XDP_PASS, Verdict::PassVlan);

        expect(
            &steer,
            &ipv4_to(local, 60),
            LO,
            0,
            XDP_PASS,
            Verdict::PassLocal,
        );
        expect(
            &steer,
            &ipv4_to(subnet_bcast, 60),
            LO,
            0,
            XDP_PASS,
            Verdict::PassLocal,
        );
        for mcast in [
            [224, 0, 0, 5],
            [224, 0, 0, 9],
            [224, 0, 0, 18],
            [239, 255, 255, 250],
        ] {
            expect(
                &steer,
                &ipv4_to(Ipv4Addr::from(mcast), 60),
                LO,
                0,
                XDP_PASS,
                Verdict::PassMcastBcast,
            );
        }
        expect(
            &steer,
            &ipv4_to(Ipv4Addr::BROADCAST, 60),
            LO,
            0,
            XDP_PASS,
            Verdict::PassMcastBcast,
        );
        // 240.0.0.1 is class E, not multicast: transit as far as steering goes.
        expect(
            &steer,
            &ipv4_to(Ipv4Addr::new(240, 0, 0, 1), 60),
            LO,
            0,
            XDP_PASS,
            Verdict::PassNoSocket,
        );

        // Transit without a socket: the fallback that keeps traffic flowing without xfwd.
        expect(&steer, &transit(), LO, 0, XDP_PASS, Verdict::PassNoSocket);
        // IPv4 ethertype, 10 bytes of "IP": redirect path (the dataplane names the drop).
        expect(
            &steer,
            &eth(0x0800, &[0x45; 10]),
            LO,
            0,
            XDP_PASS,
            Verdict::PassNoSocket,
        );
        expect(
            &steer,
            &eth(0x0800, &[]),
            LO,
            0,
            XDP_PASS,
            Verdict::PassNoSocket,
        );
        // Runts: shorter than an Ethernet header.
        expect(&steer, &[0xff; 10], LO, 0, XDP_PASS, Verdict::PassRunt);
        expect(&steer, &[0xff; 13], LO, 0, XDP_PASS, Verdict::PassRunt);
        expect(&steer, &[], LO, 0, XDP_PASS, Verdict::PassRunt);

        // Unmanaged: the same frames once lo is unregistered.
        steer.unregister_iface(LO).unwrap();
        expect(&steer, &transit(), LO, 0, XDP_PASS, Verdict::PassUnmanaged);
        expect(&steer, &arp, LO, 0, XDP_PASS, Verdict::PassUnmanaged);
    });
}

#[test]
fn local_addrs_sync_is_reflected() {
    xfwd_testbed::require_privileges!();
    in_netns("xsl", |_| {
        let mut steer = Steer::load().unwrap();
        steer.register_iface(LO, 0).unwrap();
        let [a, b, c] = [[10, 1, 0, 1], [10, 1, 0, 255], [10, 2, 0, 1]].map(Ipv4Addr::from);

        steer.set_local_addrs([a, b]).unwrap();
        assert_eq!(steer.local_addrs_in_kernel().unwrap(), [a, b].into());
        expect(&steer, &ipv4_to(a, 60), LO, 0, XDP_PASS, Verdict::PassLocal);
        expect(
            &steer,
            &ipv4_to(c, 60),
            LO,
            0,
            XDP_PASS,
            Verdict::PassNoSocket,
        );

        steer.set_local_addrs([b, c]).unwrap();
        assert_eq!(steer.local_addrs_in_kernel().unwrap(), [b, c].into());
        assert_eq!(steer.local_addrs(), &[b, c].into());
        expect(
            &steer,
            &ipv4_to(a, 60),
            LO,
            0,
            XDP_PASS,
            Verdict::PassNoSocket,
        );
        expect(&steer, &ipv4_to(c, 60), LO, 0, XDP_PASS, Verdict::PassLocal);

        assert!(steer.add_local(a).unwrap());
        assert!(!steer.add_local(a).unwrap());
        expect(&steer, &ipv4_to(a, 60), LO, 0, XDP_PASS, Verdict::PassLocal);
        assert!(steer.remove_local(c).unwrap());
        assert!(!steer.remove_local(c).unwrap());
        expect(
            &steer,
            &ipv4_to(c, 60),
            LO,
            0,
            XDP_PASS,
            Verdict::PassNoSocket,
        );
        assert_eq!(steer.local_addrs_in_kernel().unwrap(), [a, b].into());

        // From a borrowed set, as the control plane keeps it.
        let only_b: std::collections::BTreeSet<Ipv4Addr> = [b].into();
        steer.set_local_addrs(&only_b).unwrap();
        assert_eq!(steer.local_addrs_in_kernel().unwrap(), only_b);
        steer.set_local_addrs([] as [Ipv4Addr; 0]).unwrap();
        assert!(steer.local_addrs_in_kernel().unwrap().is_empty());

        // Capacity: the full map, then one more is refused without touching the map.
        let full: Vec<Ipv4Addr> = (0..xfwd_ebpf::MAX_LOCAL_ADDRS as u32)
            .map(|i| Ipv4Addr::from(0x0a80_0000 + i))
            .collect();
        steer.set_local_addrs(full.iter().copied()).unwrap();
        assert_eq!(
            steer.local_addrs_in_kernel().unwrap().len(),
            xfwd_ebpf::MAX_LOCAL_ADDRS
        );
        let too_many = full.iter().copied().chain([a]);
        assert!(matches!(
            steer.set_local_addrs(too_many),
            Err(Error::LocalAddrsFull { .. })
        ));
        assert!(matches!(
            steer.add_local(a),
            Err(Error::LocalAddrsFull { .. })
        ));
        // Replacing a full map with a disjoint full-size set works (removals go first).
        let other: Vec<Ipv4Addr> = (0..xfwd_ebpf::MAX_LOCAL_ADDRS as u32)
            .map(|i| Ipv4Addr::from(0x0b80_0000 + i))
            .collect();
        steer.set_local_addrs(other.iter().copied()).unwrap();
        assert_eq!(
            steer.local_addrs_in_kernel().unwrap(),
            other.into_iter().collect()
        );
    });
}

#[test]
fn frame_size_limit_and_queue_range() {
    xfwd_testbed::require_privileges!();
    let a = NetNs::new("xsq").unwrap();
    let b = NetNs::new("xsq").unwrap();
    // 80 rx queues so queue 64 exists on the device.
    common::veth_pair(&a, &b, &["numrxqueues", "80", "numtxqueues", "80"]);
    let a0 = common::ifindex(&a, "a0");
    a.run(|| {
        let mut steer = Steer::load().unwrap();
        steer.register_iface(a0, 63).unwrap();
        expect(&steer, &transit(), a0, 63, XDP_PASS, Verdict::PassNoSocket);
        expect(
            &steer,
            &transit(),
            a0,
            64,
            XDP_PASS,
            Verdict::PassQueueRange,
        );
        expect(
            &steer,
            &transit(),
            a0,
            79,
            XDP_PASS,
            Verdict::PassQueueRange,
        );
        // Queue 80 does not exist: the kernel refuses the test run, with a clear error.
        let e = steer.test_run(&transit(), a0, 80).unwrap_err();
        assert!(matches!(e, Error::Kernel { .. }), "{e}");
        assert!(e.to_string().contains("queue 80"), "{e}");

        steer.set_max_frame_len(1000).unwrap();
        let big = ipv4_to(Ipv4Addr::new(192, 0, 2, 1), 1001);
        let fits = ipv4_to(Ipv4Addr::new(192, 0, 2, 1), 1000);
        expect(&steer, &big, a0, 0, XDP_PASS, Verdict::PassTooBig);
        expect(&steer, &fits, a0, 0, XDP_PASS, Verdict::PassNoSocket);
        // Local traffic is the kernel's whatever its size.
        steer.add_local(Ipv4Addr::new(192, 0, 2, 1)).unwrap();
        expect(&steer, &big, a0, 0, XDP_PASS, Verdict::PassLocal);
        // The limit follows later registrations too, and 0 lifts it.
        steer.unregister_iface(a0).unwrap();
        steer.register_iface(a0, 1).unwrap();
        steer.remove_local(Ipv4Addr::new(192, 0, 2, 1)).unwrap();
        expect(&steer, &big, a0, 0, XDP_PASS, Verdict::PassTooBig);
        steer.set_max_frame_len(0).unwrap();
        expect(&steer, &big, a0, 0, XDP_PASS, Verdict::PassNoSocket);
    })
    .unwrap();
}

#[test]
fn multi_buffer_variant() {
    xfwd_testbed::require_privileges!();
    in_netns("xsf", |_| {
        let mut steer = Steer::load_variant(SteerVariant::MultiBuffer).unwrap();
        assert_eq!(steer.program_name(), "xfwd_steer_frags");
        steer.register_iface(LO, 0).unwrap();
        steer.add_local(Ipv4Addr::new(10, 0, 0, 1)).unwrap();
        expect(&steer, &transit(), LO, 0, XDP_PASS, Verdict::PassNoSocket);
        expect(
            &steer,
            &ipv4_to(Ipv4Addr::new(10, 0, 0, 1), 60),
            LO,
            0,
            XDP_PASS,
            Verdict::PassLocal,
        );
        // 9000 bytes do not fit a page: the kernel hands the program a multi-buffer frame.
        let jumbo = ipv4_to(Ipv4Addr::new(192, 0, 2, 1), 9000);
        expect(&steer, &jumbo, LO, 0, XDP_PASS, Verdict::PassFrags);
    });
}

#[test]
fn argument_and_socket_errors() {
    xfwd_testbed::require_privileges!();
    in_netns("xse", |_| {
        let mut steer = Steer::load().unwrap();
        assert!(matches!(
            steer.register_iface(LO, 64),
            Err(Error::InvalidArgument { .. })
        ));
        steer.register_iface(LO, 5).unwrap();
        // Re-registering the same interface with its own slot is fine; another one is not.
        steer.register_iface(LO, 5).unwrap();
        assert!(matches!(
            steer.register_iface(77, 5),
            Err(Error::SlotInUse {
                slot: 5,
                ifindex: 1
            })
        ));
        assert!(matches!(
            steer.detach(LO),
            Err(Error::NotAttached { ifindex: 1 })
        ));

        // Only AF_XDP sockets go into the xsks map.
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        use std::os::fd::AsFd;
        let e = steer.set_socket(5, 0, udp.as_fd()).unwrap_err();
        assert!(matches!(e, Error::Kernel { .. }), "{e}");
        assert!(matches!(
            steer.set_socket(64, 0, udp.as_fd()),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            steer.set_socket(0, 64, udp.as_fd()),
            Err(Error::InvalidArgument { .. })
        ));
        steer.clear_socket(5, 0).unwrap();
        assert!(matches!(
            steer.clear_socket(0, 64),
            Err(Error::InvalidArgument { .. })
        ));

        // A missing interface.
        assert!(matches!(
            steer.test_run(&transit(), 9999, 0),
            Err(Error::NoSuchInterface { ifindex: 9999 })
        ));

        // Counters name every verdict once.
        let c = steer.counters().unwrap();
        let names: std::collections::BTreeSet<&str> = c.iter().map(|(v, _)| v.name()).collect();
        assert_eq!(names.len(), Verdict::COUNT);
    });
}

/// An AF_XDP socket, unbound: enough for the XSKMAP (the kernel checks the family only) and
/// for BPF_PROG_TEST_RUN's verdict (which does not deliver). Delivery through a bound socket
/// is the dataplane's test.
fn af_xdp_socket() -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: socket(2) with constant arguments; it returns a new fd or -1.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    assert!(
        fd >= 0,
        "socket(AF_XDP): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

#[test]
fn socket_in_the_map_redirects_and_closing_it_falls_back() {
    xfwd_testbed::require_privileges!();
    in_netns("xsr", |_| {
        use std::os::fd::AsFd;
        let mut steer = Steer::load().unwrap();
        steer.register_iface(LO, 9).unwrap();
        let socket = af_xdp_socket();
        steer.set_socket(9, 0, socket.as_fd()).unwrap();
        expect(&steer, &transit(), LO, 0, XDP_REDIRECT, Verdict::Redirect);
        // The socket serves (slot 9, queue 0) only.
        steer.register_iface(LO, 8).unwrap();
        expect(&steer, &transit(), LO, 0, XDP_PASS, Verdict::PassNoSocket);
        steer.register_iface(LO, 9).unwrap();
        // Local traffic is never redirected, socket or not.
        steer.add_local(Ipv4Addr::new(192, 0, 2, 1)).unwrap();
        expect(&steer, &transit(), LO, 0, XDP_PASS, Verdict::PassLocal);
        steer.remove_local(Ipv4Addr::new(192, 0, 2, 1)).unwrap();

        steer.clear_socket(9, 0).unwrap();
        expect(&steer, &transit(), LO, 0, XDP_PASS, Verdict::PassNoSocket);
        steer.set_socket(9, 0, socket.as_fd()).unwrap();
        expect(&steer, &transit(), LO, 0, XDP_REDIRECT, Verdict::Redirect);
        // xfwd dies: the kernel removes a closed socket from the map, traffic falls back.
        drop(socket);
        expect(&steer, &transit(), LO, 0, XDP_PASS, Verdict::PassNoSocket);
    });
}

//! The topology with the router's kernel forwarding: the baseline that xfwd's end-to-end tests
//! mirror, and a check of the testbed's own crafting and parsing (privileged).

use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use xfwd_testbed::packet::{IPPROTO_ICMP, IPPROTO_UDP};
use xfwd_testbed::{End, Malform, RawSocket, Topology, parse, ping};

const WAIT: Duration = Duration::from_secs(3);

fn has(frame: &[u8], mark: &[u8]) -> bool {
    frame.windows(mark.len()).any(|w| w == mark)
}

/// The names of every namespace that exists now.
fn netns_list() -> Result<Vec<String>> {
    let out = xfwd_testbed::sh(&["ip", "netns", "list"])?;
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

fn names(t: &Topology) -> Vec<String> {
    [t.h1(), t.router(), t.h2()]
        .map(|n| n.name().to_owned())
        .to_vec()
}

#[test]
fn kernel_router_forwards_pings() -> Result<()> {
    xfwd_testbed::require_privileges!();
    let t = Topology::builder("kp").router_forwarding(true).build()?;
    for dst in [
        t.iface(End::H2).addr,
        Ipv4Addr::new(198, 18, 0, 1),
        Ipv4Addr::new(198, 18, 1, 200),
        Ipv4Addr::new(198, 19, 77, 3),
    ] {
        let r = ping(t.h1(), dst, 3, None)?;
        ensure!(r.all_replied(), "h1 -> {dst}: {r:?}");
        ensure!(r.rtt_avg.is_some());
    }
    // TTL 1 expires at the router, which says so.
    let r = ping(t.h1(), t.iface(End::H2).addr, 2, Some(1))?;
    assert_eq!((r.received, r.errors), (0, 2), "{r:?}");
    assert!(
        r.error_lines[0].contains("From 10.0.1.1")
            && r.error_lines[0].contains("Time to live exceeded")
    );
    // Nothing is routed to addresses outside the topology.
    let r = ping(t.h1(), Ipv4Addr::new(192, 0, 2, 1), 1, None)?;
    assert_eq!(r.received, 0);
    Ok(())
}

#[test]
fn router_forwarding_off_stops_transit_and_can_be_turned_on() -> Result<()> {
    xfwd_testbed::require_privileges!();
    let t = Topology::builder("kf").build()?;
    let h2 = t.iface(End::H2).addr;
    // The router still answers for itself on both sides.
    ensure!(ping(t.h1(), t.iface(End::P1).addr, 1, None)?.all_replied());
    assert_eq!(
        ping(t.h1(), h2, 2, None)?.received,
        0,
        "forwarded with ip_forward=0"
    );
    t.set_router_forwarding(true)?;
    ensure!(ping(t.h1(), h2, 2, None)?.all_replied());
    t.set_router_forwarding(false)?;
    assert_eq!(ping(t.h1(), h2, 2, None)?.received, 0);
    Ok(())
}

#[test]
fn raw_frames_cross_the_kernel_router() -> Result<()> {
    xfwd_testbed::require_privileges!();
    let t = Topology::builder("kr").router_forwarding(true).build()?;
    t.resolve_neighbours()?;
    let h1 = RawSocket::open(t.h1(), t.iface(End::H1).name)?;
    let h2 = RawSocket::open(t.h2(), t.iface(End::H2).name)?;
    h1.drain()?;
    h2.drain()?;
    let h1_addr = t.iface(End::H1).addr;
    let h2_addr = t.iface(End::H2).addr;

    // UDP h1 -> h2: arrives with TTL - 1, new MACs, everything else intact.
    let mut spec = t.frame_from(End::H1, h2_addr);
    spec.dont_fragment = true;
    spec.identification = 0x4242;
    let sent = spec.udp(40000, 9, b"xfwd udp ttl probe")?;
    h1.send(&sent)?;
    let got = h2
        .recv_matching(|f| has(f, b"xfwd udp ttl probe"), WAIT)?
        .context("UDP frame did not reach h2")?;
    let p = parse(&got)?;
    let ip = p.ip()?;
    assert_eq!((p.src_mac, p.dst_mac), (End::P1.mac(), End::H2.mac()));
    assert_eq!(
        (ip.src, ip.dst, ip.protocol),
        (h1_addr, h2_addr, IPPROTO_UDP)
    );
    assert_eq!(ip.ttl, 63);
    assert!(ip.header_checksum_ok && ip.dont_fragment);
    assert_eq!(ip.identification, 0x4242);
    let udp = p.udp().context("UDP")?;
    assert!(udp.checksum_ok);
    assert_eq!((udp.src_port, udp.dst_port), (40000, 9));
    // Only TTL and header checksum changed in the IP packet.
    let (a, b) = (&sent[14..], &got[14..]);
    assert_eq!(a.len(), b.len());
    let changed: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    assert!(
        changed.iter().all(|i| [8, 10, 11].contains(i)),
        "changed bytes {changed:?}"
    );

    // ICMP echo h1 -> a prefix behind h2: the reply comes back through the router.
    let dst = Ipv4Addr::new(198, 18, 0, 1);
    h1.send(
        &t.frame_from(End::H1, dst)
            .icmp_echo_request(0x1d, 7, b"echo probe")?,
    )?;
    let got = h1
        .recv_matching(
            |f| parse(f).is_ok_and(|p| p.icmp().is_some_and(|i| i.icmp_type == 0)),
            WAIT,
        )?
        .context("no echo reply")?;
    let p = parse(&got)?;
    let (ip, icmp) = (p.ip()?, p.icmp().context("ICMP")?);
    assert_eq!((p.src_mac, p.dst_mac), (End::P0.mac(), End::H1.mac()));
    assert_eq!((ip.src, ip.dst, ip.ttl), (dst, h1_addr, 63));
    assert_eq!((icmp.echo_id(), icmp.echo_seq(), icmp.code), (0x1d, 7, 0));
    assert!(icmp.checksum_ok);
    assert_eq!(icmp.payload, b"echo probe");

    // TTL 1: the router answers with time exceeded, quoting the datagram as it arrived.
    let mut spec = t.frame_from(End::H1, h2_addr);
    spec.ttl = 1;
    let sent = spec.udp(40001, 9, b"ttl one")?;
    h1.send(&sent)?;
    let got = h1
        .recv_matching(
            |f| parse(f).is_ok_and(|p| p.icmp().is_some_and(|i| i.icmp_type == 11)),
            WAIT,
        )?
        .context("no time exceeded")?;
    let p = parse(&got)?;
    let (ip, icmp) = (p.ip()?, p.icmp().context("ICMP")?);
    assert_eq!(
        (ip.src, ip.dst, ip.protocol),
        (t.iface(End::P0).addr, h1_addr, IPPROTO_ICMP)
    );
    assert_eq!(icmp.code, 0);
    assert!(icmp.checksum_ok && ip.header_checksum_ok);
    // Linux quotes the whole datagram (up to 576 bytes in all), with TTL still 1.
    assert_eq!(icmp.payload, &sent[14..]);
    assert!(
        h2.recv_matching(|f| has(f, b"ttl one"), Duration::from_millis(200))?
            .is_none(),
        "TTL-1 datagram was forwarded"
    );
    Ok(())
}

#[test]
fn kernel_router_drops_malformed_headers() -> Result<()> {
    xfwd_testbed::require_privileges!();
    let t = Topology::builder("km").router_forwarding(true).build()?;
    t.resolve_neighbours()?;
    let h1 = RawSocket::open(t.h1(), End::H1.ifname())?;
    let h2 = RawSocket::open(t.h2(), End::H2.ifname())?;
    let spec = t.frame_from(End::H1, t.iface(End::H2).addr);
    let cases = [
        (Malform::BadHeaderChecksum, &b"bad-checksum"[..]),
        (Malform::Ihl(4), b"ihl-four"),
        (Malform::Version(5), b"version-five"),
        (Malform::TotalLength(300), b"total-length-beyond"),
        (Malform::TotalLength(19), b"total-length-short"),
        (Malform::Truncate(14 + 20 + 4), b"trunc"),
    ];
    for (how, mark) in cases {
        let mut f = spec.udp(40000, 9, mark)?;
        // The truncated case loses its payload, so mark it in the identification instead.
        if matches!(how, Malform::Truncate(_)) {
            f[18..20].copy_from_slice(&0x7777u16.to_be_bytes());
            Malform::TotalLength(u16::from_be_bytes([f[16], f[17]])).apply(&mut f)?;
        }
        how.apply(&mut f)?;
        h1.send(&f)?;
    }
    // A good frame behind them: once it is through, any forwarded bad one would be too.
    h1.send(&spec.udp(40000, 9, b"good-after")?)?;
    let mut seen = Vec::new();
    let good = h2.recv_matching(
        |f| {
            seen.push(f.to_vec());
            has(f, b"good-after")
        },
        WAIT,
    )?;
    ensure!(good.is_some(), "the good frame did not arrive");
    for f in &seen {
        for (how, mark) in cases {
            assert!(!has(f, mark), "{how:?} was forwarded");
        }
        assert!(
            !(f.len() > 20 && f[18..20] == [0x77, 0x77]),
            "truncated frame was forwarded"
        );
    }
    Ok(())
}

#[test]
fn two_topologies_coexist_and_are_removed_on_drop() -> Result<()> {
    xfwd_testbed::require_privileges!();
    let kern = Topology::builder("co").router_forwarding(true).build()?;
    let other = Topology::builder("co")
        .link0("10.9.1.0/24".parse()?)
        .link1("10.9.2.0/24".parse()?)
        .build()?;
    let all: Vec<String> = names(&kern).into_iter().chain(names(&other)).collect();
    let listed = netns_list()?;
    for n in &all {
        ensure!(listed.contains(n), "{n} missing from `ip netns list`");
    }
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 6);
    // Each works on its own addressing; forwarding is per topology.
    ensure!(ping(kern.h1(), kern.iface(End::H2).addr, 1, None)?.all_replied());
    assert_eq!(other.iface(End::H2).addr, Ipv4Addr::new(10, 9, 2, 2));
    ensure!(ping(other.h1(), other.iface(End::P0).addr, 1, None)?.all_replied());
    assert_eq!(
        ping(other.h1(), other.iface(End::H2).addr, 1, None)?.received,
        0
    );
    drop(kern);
    drop(other);
    let listed = netns_list()?;
    for n in &all {
        ensure!(!listed.contains(n), "{n} still exists after drop");
    }
    Ok(())
}

#[test]
fn topology_is_removed_after_a_panic() -> Result<()> {
    xfwd_testbed::require_privileges!();
    let created = Mutex::new(Vec::new());
    let result = std::panic::catch_unwind(|| {
        let t = Topology::builder("pa").build().expect("build");
        created.lock().unwrap().extend(names(&t));
        panic!("deliberate panic with a live topology");
    });
    assert!(result.is_err());
    let created = created.into_inner().unwrap();
    assert_eq!(created.len(), 3);
    let listed = netns_list()?;
    for n in &created {
        ensure!(!listed.contains(n), "{n} survived the panic");
    }
    Ok(())
}

#[test]
fn configuration_is_applied() -> Result<()> {
    xfwd_testbed::require_privileges!();
    let t = Topology::builder("cf").mtu(3000).queues(4).build()?;
    let shown = |end: End| -> Result<String> {
        let out = t
            .ns(end)
            .ip(&["-d", "-o", "link", "show", "dev", end.ifname()])?;
        Ok(String::from_utf8(out.stdout)?)
    };
    for end in End::ALL {
        let s = shown(end)?;
        let mac = t.iface(end).mac;
        let mac = format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
        );
        for want in [
            " mtu 3000 ",
            &*mac,
            "numtxqueues 4 numrxqueues 4",
            "state UP",
        ] {
            ensure!(s.contains(want), "{end:?} lacks {want:?}: {s}");
        }
        let k = t.ns(end).exec(&["ethtool", "-k", end.ifname()])?;
        let k = String::from_utf8(k.stdout)?;
        ensure!(k.contains("tx-checksum-ip-generic: off"), "{end:?}: {k}");
        let rp = t.ns(end).exec(&[
            "sysctl",
            "-n",
            &format!("net.ipv4.conf.{}.rp_filter", end.ifname()),
        ])?;
        assert_eq!(String::from_utf8(rp.stdout)?.trim(), "0");
    }
    let fwd = t.router().exec(&["sysctl", "-n", "net.ipv4.ip_forward"])?;
    assert_eq!(String::from_utf8(fwd.stdout)?.trim(), "0");
    let v6 = t
        .h2()
        .exec(&["sysctl", "-n", "net.ipv6.conf.eth0.disable_ipv6"])?;
    assert_eq!(String::from_utf8(v6.stdout)?.trim(), "1");
    let lo = String::from_utf8(
        t.h2()
            .ip(&["-4", "-o", "addr", "show", "dev", "lo"])?
            .stdout,
    )?;
    for p in t.behind_h2() {
        let want = format!("{}/{}", p.host(1).context("host")?, p.prefix_len());
        ensure!(lo.contains(&want), "h2 lo lacks {want}: {lo}");
    }
    let routes = String::from_utf8(t.router().ip(&["-4", "route", "show"])?.stdout)?;
    ensure!(
        routes.contains("198.18.0.0/24 via 10.0.2.2 dev p1"),
        "{routes}"
    );
    ensure!(
        routes.contains("198.19.0.0/16 via 10.0.2.2 dev p1"),
        "{routes}"
    );
    let h1_routes = String::from_utf8(t.h1().ip(&["-4", "route", "show"])?.stdout)?;
    ensure!(
        h1_routes.contains("default via 10.0.1.1 dev eth0"),
        "{h1_routes}"
    );
    // Big frames pass at this MTU.
    let h1 = RawSocket::open(t.h1(), End::H1.ifname())?;
    let p0 = RawSocket::open(t.router(), End::P0.ifname())?;
    let big = t
        .frame_from(End::H1, t.iface(End::P0).addr)
        .udp(1, 9, &vec![0xab; 3000 - 28])?;
    assert_eq!(big.len(), 3014);
    h1.send(&big)?;
    let got = p0.recv_matching(|f| f.len() == 3014, WAIT)?;
    assert_eq!(got.as_deref(), Some(&big[..]));
    assert!(
        h1.send(&[big.clone(), vec![0; 1]].concat()).is_err(),
        "above MTU"
    );
    Ok(())
}

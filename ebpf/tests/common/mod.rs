//! Frames and namespace helpers shared by the privileged tests.
#![allow(dead_code, reason = "each test crate uses a different subset")]

use std::net::Ipv4Addr;

use xfwd_testbed::NetNs;

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

/// An Ethernet frame `dst MAC_B, src MAC_A, ethertype` + `payload`.
pub fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4/UDP frame from 198.51.100.1 to `dst`, `len` bytes long (>= 42).
pub fn ipv4_to(dst: Ipv4Addr, len: usize) -> Vec<u8> {
    let ip_len = len - 14;
    let mut ip = vec![0u8; ip_len];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&u16::try_from(ip_len).unwrap().to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[198, 51, 100, 1]);
    ip[16..20].copy_from_slice(&dst.octets());
    let sum = ip[..20]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    ip[20..22].copy_from_slice(&1234u16.to_be_bytes());
    ip[22..24].copy_from_slice(&5678u16.to_be_bytes());
    ip[24..26].copy_from_slice(&u16::try_from(ip_len - 20).unwrap().to_be_bytes());
    eth(0x0800, &ip)
}

/// A 60-byte transit frame.
pub fn transit() -> Vec<u8> {
    ipv4_to(Ipv4Addr::new(192, 0, 2, 1), 60)
}

/// Runs `argv` in `ns` and returns stdout.
pub fn out(ns: &NetNs, argv: &[&str]) -> String {
    let o = ns
        .exec(argv)
        .unwrap_or_else(|e| panic!("{argv:?} in {}: {e:#}", ns.name()));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The ifindex of `dev` in `ns`.
pub fn ifindex(ns: &NetNs, dev: &str) -> u32 {
    out(ns, &["cat", &format!("/sys/class/net/{dev}/ifindex")])
        .trim()
        .parse()
        .unwrap()
}

/// A veth pair `a0` (MAC_A, in `a`) <-> `b0` (MAC_B, in `b`), both up, with extra `ip link
/// add` arguments for both ends (e.g. queue counts).
pub fn veth_pair(a: &NetNs, b: &NetNs, extra: &[&str]) {
    let mut argv = vec!["ip", "link", "add", "a0", "address", "02:00:00:00:00:0a"];
    argv.extend_from_slice(extra);
    argv.extend_from_slice(&[
        "type",
        "veth",
        "peer",
        "name",
        "b0",
        "address",
        "02:00:00:00:00:0b",
    ]);
    argv.extend_from_slice(extra);
    argv.extend_from_slice(&["netns", b.name()]);
    a.exec(&argv).unwrap();
    a.exec(&["ip", "link", "set", "a0", "up"]).unwrap();
    b.exec(&["ip", "link", "set", "b0", "up"]).unwrap();
}

/// Whether `ip link show dev` lists an XDP program on `dev`.
pub fn has_xdp(ns: &NetNs, dev: &str) -> bool {
    let s = out(ns, &["ip", "-d", "link", "show", "dev", dev]);
    s.contains("xdp") || s.contains("prog/xdp")
}

/// Asserts that `dev` loses its XDP program within 2 s.
///
/// Detaching is synchronous when the last bpf_link fd closes, but a parallel test's `fork`
/// (to run `ip`) briefly holds a copy of every fd until its `exec` closes the CLOEXEC ones,
/// so "last" may come a moment later.
#[track_caller]
pub fn assert_detached(ns: &NetNs, dev: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while has_xdp(ns, dev) {
        assert!(
            std::time::Instant::now() < deadline,
            "XDP still attached to {dev}: {}",
            out(ns, &["ip", "link", "show", "dev", dev])
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

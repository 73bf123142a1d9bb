//! What an XDP program on a veth sees of a UDP datagram sent by the peer host's own stack, with
//! and without transmit checksum offload on the host's veth end (privileged).
//!
//! An XDP program on the router's `p0` reflects every IPv4 frame back to h1 (XDP_TX, MACs
//! swapped, bytes otherwise untouched), and a raw socket on h1 captures the reflection: the bytes
//! any XDP program, or an AF_XDP socket in copy mode, would have forwarded.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use xfwd_testbed::packet::{IPPROTO_UDP, pseudo_header_sum};
use xfwd_testbed::{End, ParsedFrame, RawSocket, Topology, parse};

const MARK: &[u8] = b"xfwd-testbed checksum probe";
const PORT: u16 = 9;

/// Compiles tests/bpf/reflect.bpf.c with clang into a per-process object file.
fn reflector() -> Result<PathBuf> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bpf/reflect.bpf.c");
    let obj = std::env::temp_dir().join(format!("xfwd-testbed-reflect-{}.o", std::process::id()));
    let out = Command::new("clang")
        .args([
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-I/usr/include/x86_64-linux-gnu",
            "-c",
        ])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .context("running clang (Debian packages clang, libbpf-dev)")?;
    ensure!(
        out.status.success(),
        "clang failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(obj)
}

/// Sends one UDP datagram from h1's stack towards h2 and returns the frame the reflector on
/// `p0` sent back.
fn reflected(obj: &std::path::Path, offload: bool) -> Result<ParsedFrame> {
    let topo = Topology::builder("cs")
        .tx_checksum_offload(offload)
        .build()?;
    topo.attach_xdp(End::P0, obj, "xdp_reflect")?;
    topo.attach_xdp(End::H1, obj, "xdp_pass")?;
    let raw = RawSocket::open(topo.h1(), End::H1.ifname())?;
    let udp = topo.h1().run(|| UdpSocket::bind("0.0.0.0:0"))??;
    let dst = topo.iface(End::H2).addr;
    udp.send_to(MARK, (dst, PORT))?;
    let frame = raw
        .recv_matching(
            |f| parse(f).is_ok_and(|p| p.udp().is_some_and(|u| u.payload == MARK)),
            Duration::from_secs(3),
        )?
        .context("no reflected frame came back")?;
    let p = parse(&frame)?;
    // The MACs are swapped: this is the reflection, not h1's own outgoing frame.
    assert_eq!(p.src_mac, End::P0.mac());
    assert_eq!(p.dst_mac, End::H1.mac());
    Ok(p)
}

#[test]
fn xdp_on_veth_sees_partial_udp_checksums_unless_tx_offload_is_off() -> Result<()> {
    xfwd_testbed::require_privileges!();
    let obj = reflector()?;

    // Default topology (tx checksum offload off on every end): the checksum is complete.
    let p = reflected(&obj, false)?;
    let (ip, udp) = (p.ip()?, p.udp().context("UDP")?);
    assert!(ip.header_checksum_ok);
    assert!(
        udp.checksum_ok,
        "checksum {:#06x} should verify",
        udp.checksum
    );

    // Offload left on: the host's stack hands the veth a CHECKSUM_PARTIAL skb and the XDP
    // program gets the checksum field holding only the pseudo-header sum.
    let p = reflected(&obj, true)?;
    let (ip, udp) = (p.ip()?, p.udp().context("UDP")?);
    assert!(
        ip.header_checksum_ok,
        "the IP header checksum is always computed"
    );
    assert!(
        !udp.checksum_ok,
        "checksum {:#06x} unexpectedly verifies",
        udp.checksum
    );
    let len = u16::try_from(8 + MARK.len())?;
    assert_eq!(
        udp.checksum,
        pseudo_header_sum(ip.src, ip.dst, IPPROTO_UDP, len),
        "the field holds exactly the pseudo-header sum (CHECKSUM_PARTIAL)"
    );

    let _ = std::fs::remove_file(&obj);
    Ok(())
}

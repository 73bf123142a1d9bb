//! The benchmark programs: the live-frames generator into a veth pair, the sink on the
//! peer, and the frames they exchange.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;
use std::process::Stdio;

use common::{MAC_A, MAC_B, eth, ifindex, ipv4_to, veth_pair};
use xfwd_ebpf::{
    AttachMode, AttachedMode, Error, Generator, Sink, SinkAction, SinkConfig, UdpTemplate,
    XDP_DROP, XDP_PASS,
};
use xfwd_testbed::NetNs;

fn template() -> UdpTemplate {
    UdpTemplate::new(
        MAC_A,
        MAC_B,
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
    )
}

#[test]
fn every_generated_frame_reaches_the_sink() {
    xfwd_testbed::require_privileges!();
    let a = NetNs::new("xbg").unwrap();
    let b = NetNs::new("xbg").unwrap();
    veth_pair(&a, &b, &[]);
    let (a0, b0) = (ifindex(&a, "a0"), ifindex(&b, "b0"));
    let mut sink = Sink::load(&SinkConfig {
        udp_port: Some(9),
        action: SinkAction::Drop,
    })
    .unwrap();
    assert_eq!(
        b.run(|| sink.attach(b0, AttachMode::Native))
            .unwrap()
            .unwrap(),
        AttachedMode::Native
    );

    let mut generator = Generator::load().unwrap();
    generator
        .configure(&UdpTemplate {
            flows: 16,
            ..template()
        })
        .unwrap();
    // Each round ends with the peer's NAPI draining its 256-slot veth ring (VETH_RING_SIZE),
    // so up to 64 frames per round every frame arrives (128 did too, here). At 256 per round
    // the ring can overflow before NAPI drains it; the sender's veth counts those frames as
    // xdp_xmit_errors, and frames sent must equal frames counted plus those.
    for (n, batch) in [
        (1u32, 1u32),
        (1000, 64),
        (200_000, 64),
        (100_000, 128),
        (100_000, 256),
    ] {
        let (p0, b0_bytes) = sink.counters().unwrap();
        let e0 = xdp_xmit_errors(&a, "a0");
        let sent = a.run(|| generator.run(a0, batch, n)).unwrap().unwrap();
        let (p1, b1_bytes) = sink.counters().unwrap();
        let lost = xdp_xmit_errors(&a, "a0") - e0;
        assert_eq!(sent, u64::from(n), "batch {batch}");
        assert_eq!(
            p1 - p0 + lost,
            u64::from(n),
            "frames counted by the sink plus lost, batch {batch}"
        );
        assert_eq!(
            b1_bytes - b0_bytes,
            60 * (p1 - p0),
            "bytes counted by the sink"
        );
        if batch <= 64 {
            assert_eq!(lost, 0, "batch {batch}");
        }
    }
    assert_eq!(generator.total_sent().unwrap(), 401_001);
    assert_eq!(generator.next_seq().unwrap(), 401_001);

    drop(sink);
    common::assert_detached(&b, "b0");
}

/// Frames the veth `dev` failed to hand to its peer (`ethtool -S`: `*_xdp_xmit_errors`).
fn xdp_xmit_errors(ns: &NetNs, dev: &str) -> u64 {
    common::out(ns, &["ethtool", "-S", dev])
        .lines()
        .filter_map(|l| l.trim().split_once(": "))
        .filter(|(k, _)| k.ends_with("_xdp_xmit_errors"))
        .map(|(_, v)| v.trim().parse::<u64>().unwrap())
        .sum()
}

/// Minimal pcap reader: the frames of a little-endian, microsecond pcap file.
fn pcap_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "pcap magic");
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        frames.push(bytes[at + 16..at + 16 + caplen].to_vec());
        at += 16 + caplen;
    }
    frames
}

#[test]
fn generated_frames_are_well_formed() {
    xfwd_testbed::require_privileges!();
    let a = NetNs::new("xbf").unwrap();
    let b = NetNs::new("xbf").unwrap();
    veth_pair(&a, &b, &[]);
    let (a0, b0) = (ifindex(&a, "a0"), ifindex(&b, "b0"));
    let mut sink = Sink::load(&SinkConfig {
        udp_port: Some(9),
        action: SinkAction::Pass,
    })
    .unwrap();
    b.run(|| sink.attach(b0, AttachMode::Native))
        .unwrap()
        .unwrap();

    let pcap = std::env::temp_dir().join(format!("xfwd-gen-{}.pcap", std::process::id()));
    let mut tcpdump = b
        .command("tcpdump")
        .args(["-i", "b0", "-n", "-U", "-c", "8", "-w"])
        .arg(&pcap)
        .args(["udp", "port", "9"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(tcpdump.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("listening on b0"), "tcpdump: {line}");

    let mut generator = Generator::load().unwrap();
    let t = UdpTemplate {
        frame_len: 128,
        flows: 3,
        src_port: 4000,
        dst_port: 9,
        ttl: 17,
        ..template()
    };
    generator.configure(&t).unwrap();
    generator.set_next_seq(0xfffe).unwrap();
    // Four frames stamped (the default), then four with one stamp in two.
    assert_eq!(a.run(|| generator.run(a0, 4, 4)).unwrap().unwrap(), 4);
    generator.set_timestamp_every(2).unwrap();
    assert_eq!(a.run(|| generator.run(a0, 4, 4)).unwrap().unwrap(), 4);
    assert!(tcpdump.wait().unwrap().success());
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    let frames = pcap_frames(&std::fs::read(&pcap).unwrap());
    std::fs::remove_file(&pcap).unwrap();
    assert_eq!(frames.len(), 8, "{rest}");

    let mut last_ts = 0;
    for (i, f) in frames.iter().enumerate() {
        let seq = 0xfffe + i as u64;
        assert_eq!(f.len(), 128);
        let (eth, rest) = etherparse::Ethernet2Header::from_slice(f).unwrap();
        assert_eq!((eth.source, eth.destination), (MAC_A, MAC_B));
        let (ip, rest) = etherparse::Ipv4Header::from_slice(rest).unwrap();
        assert_eq!(ip.header_checksum, ip.calc_header_checksum(), "frame {i}");
        assert_eq!(ip.total_len, 114);
        assert_eq!(ip.identification, seq as u16);
        assert_eq!(ip.time_to_live, 17);
        assert_eq!((ip.source, ip.destination), ([10, 0, 0, 1], [10, 0, 0, 2]));
        let (udp, payload) = etherparse::UdpHeader::from_slice(rest).unwrap();
        assert_eq!(udp.source_port, 4000 + (seq % 3) as u16, "frame {i}");
        assert_eq!((udp.destination_port, udp.length, udp.checksum), (9, 94, 0));
        assert_eq!(u64::from_be_bytes(payload[..8].try_into().unwrap()), seq);
        let ts = u64::from_be_bytes(payload[8..16].try_into().unwrap());
        if i < 4 || seq.is_multiple_of(2) {
            assert!(
                ts > 0 && ts >= last_ts,
                "frame {i}: timestamps move forward: {ts} after {last_ts}"
            );
            last_ts = ts;
        } else {
            assert_eq!(ts, 0, "frame {i} (seq {seq}) is not sampled");
        }
    }
}

#[test]
fn sink_filters_by_port_and_applies_its_action() {
    xfwd_testbed::require_privileges!();
    let ns = NetNs::new("xbs").unwrap();
    ns.run(|| {
        let mut udp9 = ipv4_to(Ipv4Addr::new(10, 0, 0, 2), 100);
        udp9[36..38].copy_from_slice(&9u16.to_be_bytes());
        let udp10 = ipv4_to(Ipv4Addr::new(10, 0, 0, 2), 100); // port 5678
        let arp = eth(0x0806, &[0; 28]);
        let mut fragment = udp9.clone();
        fragment[20..22].copy_from_slice(&0x0010u16.to_be_bytes()); // offset 128 bytes

        let sink = Sink::load(&SinkConfig {
            udp_port: Some(9),
            action: SinkAction::Drop,
        })
        .unwrap();
        assert_eq!(sink.test_run(&udp9, 1, 0).unwrap(), XDP_DROP);
        assert_eq!(sink.counters().unwrap(), (1, 100));
        for other in [&udp10, &arp, &fragment, &udp9[..40].to_vec()] {
            assert_eq!(sink.test_run(other, 1, 0).unwrap(), XDP_PASS);
        }
        assert_eq!(sink.counters().unwrap(), (1, 100));

        let all = Sink::load(&SinkConfig {
            udp_port: None,
            action: SinkAction::Pass,
        })
        .unwrap();
        for f in [&udp9, &udp10, &arp] {
            assert_eq!(all.test_run(f, 1, 0).unwrap(), XDP_PASS);
        }
        assert_eq!(all.counters().unwrap(), (3, 100 + 100 + 42));

        assert!(matches!(
            Sink::load(&SinkConfig {
                udp_port: Some(0),
                action: SinkAction::Drop
            }),
            Err(Error::InvalidArgument { .. })
        ));
    })
    .unwrap();
}

#[test]
fn generator_argument_errors() {
    xfwd_testbed::require_privileges!();
    let ns = NetNs::new("xbe").unwrap();
    ns.run(|| {
        let mut generator = Generator::load().unwrap();
        assert!(
            matches!(generator.run(1, 64, 1), Err(Error::InvalidArgument { .. })),
            "unconfigured"
        );
        assert!(matches!(
            generator.configure(&UdpTemplate {
                frame_len: 40,
                ..template()
            }),
            Err(Error::InvalidArgument { .. })
        ));
        generator.configure(&template()).unwrap();
        for (batch, repeat) in [(0, 1), (257, 1), (64, 0)] {
            assert!(matches!(
                generator.run(1, batch, repeat),
                Err(Error::InvalidArgument { .. })
            ));
        }
        assert!(matches!(
            generator.run(4242, 64, 1),
            Err(Error::NoSuchInterface { ifindex: 4242 })
        ));
        assert_eq!(generator.total_sent().unwrap(), 0);
    })
    .unwrap();
}

//! Arbitrary bytes as an Ethernet frame: the view, `eth_type_trans`/`eth_input`, and MAC address
//! parsing must never panic, and must agree with the plain rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xfwd::drop::DropReason;
use xfwd::node::eth_input::{PktType, eth_input, eth_type_trans};
use xfwd::wire::ethernet::{self, EthernetAddress, EthernetFrame, ethertype};

/// The interface's MAC in the seeds (192.0.2.2 in `wire::testdata`).
const DEV: EthernetAddress = EthernetAddress([0xe6, 0xac, 0xc9, 0x77, 0xdf, 0x2d]);

fuzz_target!(|data: &[u8]| {
    let frame = EthernetFrame::new_checked(data);
    let trans = eth_type_trans(data, &DEV);
    match (frame, trans) {
        (Err(_), Err(reason)) => {
            assert!(data.len() < ethernet::HEADER_LEN);
            assert_eq!(reason, DropReason::EthTooShort);
        }
        (Ok(f), Ok(info)) => {
            assert_eq!(info.l3_offset, ethernet::HEADER_LEN);
            assert_eq!(f.payload().len(), data.len() - ethernet::HEADER_LEN);
            let dst = f.dst_addr();
            let expect = if dst == DEV {
                PktType::Host
            } else if dst.is_broadcast() {
                PktType::Broadcast
            } else if dst.is_multicast() {
                PktType::Multicast
            } else {
                PktType::OtherHost
            };
            assert_eq!(info.pkt_type, expect);
            if f.ethertype() >= ethertype::ETH_P_802_3_MIN {
                assert_eq!(info.ethertype, f.ethertype());
            }
            let _ = f.src_addr();
            match eth_input(data, &DEV) {
                Ok(i) => {
                    assert_eq!(i, info);
                    assert_eq!(i.ethertype, ethertype::IPV4);
                    assert_ne!(i.pkt_type, PktType::OtherHost);
                }
                Err(DropReason::EthNotIpv4) => assert_ne!(info.ethertype, ethertype::IPV4),
                Err(DropReason::EthOtherHost) => assert_eq!(info.pkt_type, PktType::OtherHost),
                Err(other) => panic!("eth_input returned {other:?}"),
            }
            // Setters on a copy round-trip.
            let mut copy = data.to_vec();
            let mut g = EthernetFrame::new_checked(&mut copy[..]).unwrap();
            g.set_dst_addr(f.src_addr());
            g.set_src_addr(dst);
            g.set_ethertype(!f.ethertype());
            assert_eq!(
                (g.dst_addr(), g.src_addr(), g.ethertype()),
                (f.src_addr(), dst, !f.ethertype())
            );
        }
        (frame, trans) => panic!(
            "view {:?} and eth_type_trans {trans:?} disagree",
            frame.map(|_| ())
        ),
    }

    // The same bytes as text: a MAC that parses prints back to an equal address.
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(mac) = s.parse::<EthernetAddress>()
    {
        assert_eq!(mac.to_string().parse::<EthernetAddress>(), Ok(mac));
    }
});

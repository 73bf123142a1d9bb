//! Arbitrary bytes through `ip_rcv_core`: the first byte picks the layer-2 class (bits 0-1) and
//! whether to fill in a correct header checksum first (bit 2, so that mutated packets still reach
//! the checks after the checksum); the rest is the packet. It must never panic, and an accepted packet must satisfy the edge contract:
//! `20 <= header_len <= total_len <= len`, version 4, checksum valid (by the byte-pair oracle).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xfwd::drop::DropReason;
use xfwd::node::eth_input::PktType;
use xfwd::node::ip4_input::ip_rcv_core;
use xfwd::wire::checksum;
use xfwd::wire::ipv4::{self, Ipv4Packet};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, packet)) = data.split_first() else {
        return;
    };
    let pkt_type = [
        PktType::Host,
        PktType::Broadcast,
        PktType::Multicast,
        PktType::OtherHost,
    ][usize::from(sel % 4)];
    let mut fixed;
    let mut packet = packet;
    if sel & 4 != 0 && packet.len() >= ipv4::HEADER_LEN {
        fixed = packet.to_vec();
        let hl = (usize::from(fixed[0] & 0x0f) * 4).clamp(ipv4::HEADER_LEN, fixed.len());
        fixed[10..12].fill(0);
        let c = checksum::checksum(&fixed[..hl]);
        fixed[10..12].copy_from_slice(&c.to_be_bytes());
        packet = &fixed[..];
    }
    match ip_rcv_core(packet, pkt_type) {
        Ok(m) => {
            assert!(ipv4::HEADER_LEN <= m.header_len, "{m:?}");
            assert!(m.header_len <= m.total_len, "{m:?}");
            assert!(m.total_len <= packet.len(), "{m:?}");
            assert_eq!(packet[0] >> 4, 4);
            assert_eq!(usize::from(packet[0] & 0x0f) * 4, m.header_len);
            assert_eq!(checksum::sum_reference(&packet[..m.header_len]), 0xffff);
            assert_ne!(pkt_type, PktType::OtherHost);
            if pkt_type != PktType::Host {
                assert!(ipv4::is_multicast(m.dst) || ipv4::is_lbcast(m.dst), "{m:?}");
            }
            // The edge contract: a view made without checks is safe on the trimmed datagram.
            let p = Ipv4Packet::new_unchecked(&packet[..m.total_len]);
            assert_eq!(
                (p.src_u32(), p.dst_u32(), p.ttl(), p.protocol()),
                (m.src, m.dst, m.ttl, m.protocol)
            );
            assert_eq!(p.payload().len(), m.total_len - m.header_len);
            assert_eq!(m.has_options, !p.options().is_empty());
            assert!(p.verify_checksum());
        }
        Err(reason) => {
            assert!(
                matches!(
                    reason,
                    DropReason::EthOtherHost
                        | DropReason::EthL2BcastUnicastIp
                        | DropReason::Ip4HdrTooShort
                        | DropReason::Ip4BadChecksum
                        | DropReason::Ip4Version
                        | DropReason::Ip4BadIhl
                        | DropReason::Ip4BadTotalLen
                        | DropReason::Ip4Truncated
                ),
                "{reason:?}"
            );
            if reason == DropReason::Ip4HdrTooShort {
                assert!(packet.len() < ipv4::HEADER_LEN);
            }
            if reason == DropReason::Ip4Truncated {
                assert!(usize::from(u16::from_be_bytes([packet[2], packet[3]])) > packet.len());
            }
        }
    }
});

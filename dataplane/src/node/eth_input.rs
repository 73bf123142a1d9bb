//! Ethernet receive: Linux `eth_type_trans()` (`net/ethernet/eth.c`) and the forwarding policy
//! xfwd applies on top of it.
//!
//! ```text
//!  frame ─► eth_type_trans ─► (pkt_type, ethertype) ─► eth_input policy ─► ip4_input
//!                                                       ├─ not IPv4  → EthNotIpv4
//!                                                       └─ OtherHost → EthOtherHost
//! ```
//!
//! VLAN tags are not handled here: a tagged frame carries EtherType 802.1Q/802.1ad and is
//! dropped as [`DropReason::EthNotIpv4`] (the XDP program passes such frames to the kernel).

use crate::drop::DropReason;
use crate::wire::ethernet::{self, EthernetAddress, ethertype};

/// How a frame was addressed at layer 2, Linux's `skb->pkt_type` (`PACKET_*` in
/// `include/uapi/linux/if_packet.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PktType {
    /// To this interface's MAC (`PACKET_HOST`).
    Host,
    /// To the broadcast MAC (`PACKET_BROADCAST`).
    Broadcast,
    /// To a multicast MAC (`PACKET_MULTICAST`).
    Multicast,
    /// To another host's unicast MAC, seen because of promiscuous mode or a switch flooding
    /// (`PACKET_OTHERHOST`).
    OtherHost,
}

/// What `eth_type_trans` learns from the Ethernet header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EthInfo {
    /// Layer-2 addressing class of the frame.
    pub pkt_type: PktType,
    /// Protocol of the payload as Linux reports it: the EtherType, or for an 802.3 length field
    /// the pseudo-types [`ethertype::ETH_P_802_3`] (raw 802.3) / [`ethertype::ETH_P_802_2`]
    /// (LLC).
    pub ethertype: u16,
    /// Offset of the layer-3 header in the frame: [`ethernet::HEADER_LEN`].
    pub l3_offset: usize,
}

/// Classifies a frame as Linux's `eth_type_trans()` does, for an interface whose MAC is
/// `dev_mac`:
///
/// 1. destination == `dev_mac` → [`PktType::Host`] (checked first, as Linux does);
/// 2. otherwise, group bit set → [`PktType::Broadcast`] if all ones, else
///    [`PktType::Multicast`];
/// 3. otherwise → [`PktType::OtherHost`].
///
/// The protocol is the EtherType when it is at least `ETH_P_802_3_MIN` (0x0600); below that the
/// field is an 802.3 length, and Linux reports `ETH_P_802_3` if the payload starts with
/// `0xffff` (Novell raw 802.3), `ETH_P_802_2` otherwise.
///
/// It drops nothing but runts: policy is [`eth_input`]'s.
///
/// # Errors
///
/// [`DropReason::EthTooShort`] if the frame is shorter than 14 bytes.
#[inline]
pub fn eth_type_trans(frame: &[u8], dev_mac: &EthernetAddress) -> Result<EthInfo, DropReason> {
    let Some((hdr, payload)) = frame.split_first_chunk::<{ ethernet::HEADER_LEN }>() else {
        return Err(DropReason::EthTooShort);
    };
    let dst = EthernetAddress([hdr[0], hdr[1], hdr[2], hdr[3], hdr[4], hdr[5]]);
    let pkt_type = if dst == *dev_mac {
        PktType::Host
    } else if dst.is_multicast() {
        if dst.is_broadcast() {
            PktType::Broadcast
        } else {
            PktType::Multicast
        }
    } else {
        PktType::OtherHost
    };
    let proto = u16::from_be_bytes([hdr[12], hdr[13]]);
    let ethertype = if proto >= ethertype::ETH_P_802_3_MIN {
        proto
    } else if payload.starts_with(&[0xff, 0xff]) {
        ethertype::ETH_P_802_3
    } else {
        ethertype::ETH_P_802_2
    };
    Ok(EthInfo {
        pkt_type,
        ethertype,
        l3_offset: ethernet::HEADER_LEN,
    })
}

/// The first stage of the pipeline: [`eth_type_trans`] plus xfwd's forwarding policy.
///
/// Broadcast and multicast frames pass: whether they may be forwarded depends on the IP
/// destination, which `ip4_input::ip_rcv_core` checks (RFC 1812 §5.3.4).
///
/// # Errors
///
/// In this order:
/// - [`DropReason::EthTooShort`]: shorter than an Ethernet header;
/// - [`DropReason::EthNotIpv4`]: the protocol is not IPv4 (ARP, IPv6, VLAN-tagged... belong to
///   the kernel);
/// - [`DropReason::EthOtherHost`]: addressed to another host's MAC (Linux drops these in
///   `ip_rcv_core` too).
#[inline]
pub fn eth_input(frame: &[u8], dev_mac: &EthernetAddress) -> Result<EthInfo, DropReason> {
    // Fast path, the forwarded frame: IPv4 to this interface's MAC. Two fixed-size compares
    // (a 6-byte and a 2-byte load), the same answer as the general path below.
    if let Some((dst, rest)) = frame.split_first_chunk::<6>()
        && let Some(proto) = rest.get(6..8)
        && *dst == dev_mac.0
        && proto == [0x08, 0x00]
    {
        return Ok(EthInfo {
            pkt_type: PktType::Host,
            ethertype: ethertype::IPV4,
            l3_offset: ethernet::HEADER_LEN,
        });
    }
    let info = eth_type_trans(frame, dev_mac)?;
    if info.ethertype != ethertype::IPV4 {
        return Err(DropReason::EthNotIpv4);
    }
    if info.pkt_type == PktType::OtherHost {
        return Err(DropReason::EthOtherHost);
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testdata::{ECHO_REQUEST, IPV6_NS, MAC_HOST1, MAC_HOST2};
    use proptest::prelude::*;

    const ME: EthernetAddress = EthernetAddress(MAC_HOST2);

    fn frame(dst: [u8; 6], proto: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend_from_slice(&MAC_HOST1);
        f.extend_from_slice(&proto.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn golden_frame_to_us_is_host_ipv4() {
        let info = eth_input(&ECHO_REQUEST, &ME).unwrap();
        assert_eq!(
            info,
            EthInfo {
                pkt_type: PktType::Host,
                ethertype: ethertype::IPV4,
                l3_offset: 14
            }
        );
    }

    #[test]
    fn golden_frame_to_someone_else_is_otherhost() {
        let other = EthernetAddress([2, 0, 0, 0, 0, 9]);
        assert_eq!(
            eth_type_trans(&ECHO_REQUEST, &other).unwrap().pkt_type,
            PktType::OtherHost
        );
        assert_eq!(
            eth_input(&ECHO_REQUEST, &other),
            Err(DropReason::EthOtherHost)
        );
    }

    #[test]
    fn golden_ipv6_multicast() {
        let info = eth_type_trans(&IPV6_NS, &ME).unwrap();
        assert_eq!(
            (info.pkt_type, info.ethertype),
            (PktType::Multicast, ethertype::IPV6)
        );
        assert_eq!(eth_input(&IPV6_NS, &ME), Err(DropReason::EthNotIpv4));
    }

    /// A table row: what, frame, expected `eth_type_trans`, expected `eth_input`.
    type Row = (
        &'static str,
        Vec<u8>,
        Result<EthInfo, DropReason>,
        Result<EthInfo, DropReason>,
    );

    /// Each row: (what, frame, expected eth_type_trans, expected eth_input).
    #[test]
    fn table() {
        let bcast = [0xff; 6];
        let mcast = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];
        let ip = &ECHO_REQUEST[14..];
        let host = |t| {
            Ok(EthInfo {
                pkt_type: PktType::Host,
                ethertype: t,
                l3_offset: 14,
            })
        };
        let rows: Vec<Row> = vec![
            (
                "empty",
                vec![],
                Err(DropReason::EthTooShort),
                Err(DropReason::EthTooShort),
            ),
            (
                "13 bytes",
                ECHO_REQUEST[..13].to_vec(),
                Err(DropReason::EthTooShort),
                Err(DropReason::EthTooShort),
            ),
            (
                "header only",
                ECHO_REQUEST[..14].to_vec(),
                host(ethertype::IPV4),
                host(ethertype::IPV4),
            ),
            (
                "broadcast ipv4",
                frame(bcast, ethertype::IPV4, ip),
                Ok(EthInfo {
                    pkt_type: PktType::Broadcast,
                    ethertype: ethertype::IPV4,
                    l3_offset: 14,
                }),
                Ok(EthInfo {
                    pkt_type: PktType::Broadcast,
                    ethertype: ethertype::IPV4,
                    l3_offset: 14,
                }),
            ),
            (
                "multicast ipv4",
                frame(mcast, ethertype::IPV4, ip),
                Ok(EthInfo {
                    pkt_type: PktType::Multicast,
                    ethertype: ethertype::IPV4,
                    l3_offset: 14,
                }),
                Ok(EthInfo {
                    pkt_type: PktType::Multicast,
                    ethertype: ethertype::IPV4,
                    l3_offset: 14,
                }),
            ),
            (
                "arp",
                frame(MAC_HOST2, ethertype::ARP, &[0; 28]),
                host(ethertype::ARP),
                Err(DropReason::EthNotIpv4),
            ),
            (
                "vlan",
                frame(MAC_HOST2, ethertype::VLAN, &[0; 4]),
                host(ethertype::VLAN),
                Err(DropReason::EthNotIpv4),
            ),
            (
                "qinq",
                frame(MAC_HOST2, ethertype::QINQ, &[0; 4]),
                host(ethertype::QINQ),
                Err(DropReason::EthNotIpv4),
            ),
            (
                "802.3 raw (ffff)",
                frame(MAC_HOST2, 0x05dc, &[0xff, 0xff, 0]),
                host(ethertype::ETH_P_802_3),
                Err(DropReason::EthNotIpv4),
            ),
            (
                "802.2 llc",
                frame(MAC_HOST2, 0x0026, &[0x42, 0x42, 3]),
                host(ethertype::ETH_P_802_2),
                Err(DropReason::EthNotIpv4),
            ),
            (
                "802.3 length, no payload",
                frame(MAC_HOST2, 0x0000, &[]),
                host(ethertype::ETH_P_802_2),
                Err(DropReason::EthNotIpv4),
            ),
            (
                "802.3 length, one ff byte",
                frame(MAC_HOST2, 0x0001, &[0xff]),
                host(ethertype::ETH_P_802_2),
                Err(DropReason::EthNotIpv4),
            ),
            (
                "0x0600 is an ethertype",
                frame(MAC_HOST2, 0x0600, &[0xff, 0xff]),
                host(0x0600),
                Err(DropReason::EthNotIpv4),
            ),
            (
                "otherhost non-ipv4: protocol checked first",
                frame([2, 0, 0, 0, 0, 9], ethertype::ARP, &[]),
                Ok(EthInfo {
                    pkt_type: PktType::OtherHost,
                    ethertype: ethertype::ARP,
                    l3_offset: 14,
                }),
                Err(DropReason::EthNotIpv4),
            ),
        ];
        for (what, f, trans, input) in rows {
            assert_eq!(eth_type_trans(&f, &ME), trans, "eth_type_trans: {what}");
            assert_eq!(eth_input(&f, &ME), input, "eth_input: {what}");
        }
    }

    /// A device whose own MAC has the group bit (never the case for a real NIC) still gets
    /// `Host` for frames to it: Linux compares with `dev_addr` before looking at the group bit.
    #[test]
    fn own_address_wins_over_group_bit() {
        let odd = EthernetAddress([0x03, 0, 0, 0, 0, 1]);
        let f = frame(odd.0, ethertype::IPV4, &[]);
        assert_eq!(eth_type_trans(&f, &odd).unwrap().pkt_type, PktType::Host);
    }

    proptest! {
        /// Random frames: never panics; classification agrees with an independent reading via
        /// etherparse and the plain rules.
        #[test]
        fn random_frames(data in proptest::collection::vec(any::<u8>(), 0..40), to_me in any::<bool>()) {
            let mut data = data;
            if to_me && data.len() >= 6 {
                data[..6].copy_from_slice(&MAC_HOST2);
            }
            let ours = eth_type_trans(&data, &ME);
            match etherparse::Ethernet2Slice::from_slice_without_fcs(&data) {
                Err(_) => prop_assert_eq!(ours, Err(DropReason::EthTooShort)),
                Ok(e) => {
                    let info = ours.unwrap();
                    let dst = e.destination();
                    let expect = if dst == MAC_HOST2 {
                        PktType::Host
                    } else if dst == [0xff; 6] {
                        PktType::Broadcast
                    } else if dst[0] & 1 == 1 {
                        PktType::Multicast
                    } else {
                        PktType::OtherHost
                    };
                    prop_assert_eq!(info.pkt_type, expect);
                    if e.ether_type().0 >= 0x0600 {
                        prop_assert_eq!(info.ethertype, e.ether_type().0);
                    } else {
                        prop_assert!(info.ethertype == ethertype::ETH_P_802_3 || info.ethertype == ethertype::ETH_P_802_2);
                    }
                    let input = eth_input(&data, &ME);
                    prop_assert_eq!(
                        input.is_ok(),
                        e.ether_type().0 == 0x0800 && expect != PktType::OtherHost
                    );
                }
            }
        }

        /// The fast path of `eth_input` (IPv4 to our MAC) gives what `eth_type_trans` plus the
        /// policy give, for every frame: here mostly frames near the fast path's condition.
        #[test]
        fn eth_input_fast_path_agrees(
            data in proptest::collection::vec(any::<u8>(), 0..20),
            to_me in any::<bool>(),
            ipv4 in any::<bool>(),
        ) {
            let mut data = data;
            if to_me && data.len() >= 6 {
                data[..6].copy_from_slice(&MAC_HOST2);
            }
            if ipv4 && data.len() >= 14 {
                data[12..14].copy_from_slice(&[0x08, 0x00]);
            }
            let general = eth_type_trans(&data, &ME).and_then(|info| {
                if info.ethertype != ethertype::IPV4 {
                    Err(DropReason::EthNotIpv4)
                } else if info.pkt_type == PktType::OtherHost {
                    Err(DropReason::EthOtherHost)
                } else {
                    Ok(info)
                }
            });
            prop_assert_eq!(eth_input(&data, &ME), general);
        }
    }
}

//! IPv4 receive: Linux `ip_rcv_core()` (`net/ipv4/ip_input.c`) with the header validation of
//! RFC 1812 §5.2.2 and the link-layer broadcast rule of RFC 1812 §5.3.4; plus the martian
//! address predicates of RFC 1812 §5.3.7 for the stages after the route lookup.
//!
//! This is the edge where IPv4 lengths are checked, once: a packet that passes
//! [`ip_rcv_core`] satisfies `20 <= header_len <= total_len <= packet.len()` and has a correct
//! header checksum, so later stages may wrap it in `Ipv4Packet::new_unchecked`.
//!
//! # Link padding
//!
//! Ethernet pads frames to 60 bytes, so a frame may be longer than the IP datagram it carries.
//! [`ip_rcv_core`] accepts the longer buffer and reports the datagram's `total_len`; **the caller
//! trims the frame to `l3_offset + total_len`** (Linux's `pskb_trim_rcsum` in `ip_rcv_core`)
//! before it is forwarded, so the padding is never sent on as if it were payload.

use crate::drop::DropReason;
use crate::node::eth_input::PktType;
use crate::wire::checksum;
use crate::wire::ipv4::{self, HEADER_LEN};

/// What the rest of the pipeline needs from a validated IPv4 header, read once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Ip4Meta {
    /// Source address, host order.
    pub src: u32,
    /// Destination address, host order.
    pub dst: u32,
    /// Header length in bytes, options included (20..=60).
    pub header_len: usize,
    /// Total length of the datagram in bytes (`header_len..=packet.len()`); the frame is trimmed
    /// to `l3_offset + total_len`.
    pub total_len: usize,
    /// Time to live, as received.
    pub ttl: u8,
    /// Protocol of the payload.
    pub protocol: u8,
    /// Don't Fragment.
    pub df: bool,
    /// More Fragments.
    pub mf: bool,
    /// Fragment offset in bytes.
    pub frag_offset: u16,
    /// `header_len > 20`: options present (RFC 1812 §5.2.4 processing is the caller's).
    pub has_options: bool,
}

impl Ip4Meta {
    /// Reads the fields of a header already validated as `header_len`/`total_len`.
    #[inline(always)]
    fn read(hdr: &[u8; HEADER_LEN], header_len: usize, total_len: usize) -> Ip4Meta {
        let flags_frag = u16::from_be_bytes([hdr[6], hdr[7]]);
        Ip4Meta {
            src: u32::from_be_bytes([hdr[12], hdr[13], hdr[14], hdr[15]]),
            dst: u32::from_be_bytes([hdr[16], hdr[17], hdr[18], hdr[19]]),
            header_len,
            total_len,
            ttl: hdr[8],
            protocol: hdr[9],
            df: flags_frag & 0x4000 != 0,
            mf: flags_frag & 0x2000 != 0,
            frag_offset: (flags_frag & 0x1fff) << 3,
            has_options: header_len > HEADER_LEN,
        }
    }

    /// The fields of an IPv4 packet that [`ip_rcv_core`] accepted earlier (its header is
    /// unchanged since): for the forwarding slow paths, which re-read what the fast path did not
    /// keep.
    ///
    /// # Panics
    ///
    /// If `ip` is shorter than 20 bytes (never, for a packet [`ip_rcv_core`] accepted).
    #[inline]
    pub fn of_accepted(ip: &[u8]) -> Ip4Meta {
        let hdr = ip
            .first_chunk::<HEADER_LEN>()
            .expect("ip_rcv_core accepted at least a 20-byte header");
        let header_len = usize::from(hdr[0] & 0x0f) * 4;
        let total_len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
        Ip4Meta::read(hdr, header_len, total_len)
    }
}

/// Validates the IPv4 header at the start of `packet` (the bytes from the IPv4 header to the
/// end of the frame, link padding included), received with layer-2 class `pkt_type`.
///
/// RFC 1812 §5.2.2, "IP Header Validation":
///
/// > Before a router can process any IP packet, it MUST perform a the following basic validity
/// > checks on the packet's IP header to ensure that the header is meaningful. If the packet
/// > fails any of the following tests, it MUST be silently discarded, and the error SHOULD be
/// > logged.
/// >
/// > (1) The packet length reported by the Link Layer must be large enough to hold the minimum
/// >     length legal IP datagram (20 bytes).
/// >
/// > (2) The IP checksum must be correct.
/// >
/// > (3) The IP version number must be 4. If the version number is not 4 then the packet may be
/// >     another version of IP, such as IPng or ST-II.
/// >
/// > (4) The IP header length field must be large enough to hold the minimum length legal IP
/// >     datagram (20 bytes = 5 words).
/// >
/// > (5) The IP total length field must be large enough to hold the IP datagram header, whose
/// >     length is specified in the IP header length field.
///
/// The checks run in Linux's order, which is the RFC's except that (3) and (4) come before
/// (2): the checksum covers `IHL * 4` bytes, so it cannot be computed before the version says
/// this is an IPv4 header and the IHL is known to be sane and inside the packet. Each failure
/// has its own reason:
///
/// | step | check                                    | reason                   |
/// |------|------------------------------------------|--------------------------|
/// | 0    | `pkt_type` is not `OtherHost` (Linux)    | `EthOtherHost`           |
/// | (1)  | `packet.len() >= 20`                     | `Ip4HdrTooShort`         |
/// | (3)  | version == 4                             | `Ip4Version`             |
/// | (4)  | `20 <= IHL*4 <= packet.len()`            | `Ip4BadIhl`              |
/// | (2)  | checksum over `IHL*4` bytes              | `Ip4BadChecksum`         |
/// | (5)  | `total_len >= IHL*4`                     | `Ip4BadTotalLen`         |
/// | —    | `total_len <= packet.len()` (Linux)      | `Ip4Truncated`           |
/// | §5.3.4 | L2 broadcast/multicast → IP dst must be multicast or 255.255.255.255 | `EthL2BcastUnicastIp` |
///
/// The fast path handles the common packet in one test: `ver_ihl == 0x45` and
/// `20 <= total_len <= packet.len()` settle (1), (3), (4), (5) and truncation together, and only
/// the checksum remains ([`checksum::ipv4_header_valid`]: five 32-bit adds and a divisibility
/// test). Anything else takes the slow path, which works out which check failed. Both give the
/// same answer for every input (a property test checks it).
///
/// A subnet-directed broadcast received as an L2 broadcast passes this stage (the router's
/// subnets are not known here); Linux's `ip_forward` refuses every frame whose `pkt_type` is
/// not `PACKET_HOST`, and the forwarding stage must do the same.
///
/// # Errors
///
/// The [`DropReason`] of the first failed check in the table above.
#[inline]
pub fn ip_rcv_core(packet: &[u8], pkt_type: PktType) -> Result<Ip4Meta, DropReason> {
    // Linux: "When the interface is in promisc. mode, drop all the crap that it receives, do
    // not try to analyse it."
    if pkt_type == PktType::OtherHost {
        return Err(DropReason::EthOtherHost);
    }
    // Fast path: a 20-byte header whose lengths are sane; only the checksum is left to check.
    if let Some(hdr) = packet.first_chunk::<HEADER_LEN>() {
        let total_len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
        if hdr[0] == 0x45 && total_len >= HEADER_LEN && total_len <= packet.len() {
            if !checksum::ipv4_header_valid(hdr) {
                return Err(DropReason::Ip4BadChecksum);
            }
            // §5.3.4 on the destination alone, before the metadata is built, so that it is
            // built once, in place (no copy through a by-value check).
            let dst = u32::from_be_bytes([hdr[16], hdr[17], hdr[18], hdr[19]]);
            if pkt_type != PktType::Host && l2_broadcast_refused(dst, pkt_type) {
                return Err(DropReason::EthL2BcastUnicastIp);
            }
            return Ok(Ip4Meta::read(hdr, HEADER_LEN, total_len));
        }
    }
    ip_rcv_core_slow(packet, pkt_type)
}

/// The slow path of [`ip_rcv_core`]: options, or something is wrong and we say what.
#[cold]
#[inline(never)]
fn ip_rcv_core_slow(packet: &[u8], pkt_type: PktType) -> Result<Ip4Meta, DropReason> {
    // (1) At least a minimal header.
    let Some(hdr) = packet.first_chunk::<HEADER_LEN>() else {
        return Err(DropReason::Ip4HdrTooShort);
    };
    // (3) Version 4. Before the checksum: another version has another header layout.
    if hdr[0] >> 4 != 4 {
        return Err(DropReason::Ip4Version);
    }
    // (4) IHL at least 5 words, and the header inside the packet (Linux `pskb_may_pull(ihl*4)`).
    let header_len = usize::from(hdr[0] & 0x0f) * 4;
    if header_len < HEADER_LEN || header_len > packet.len() {
        return Err(DropReason::Ip4BadIhl);
    }
    // (2) Checksum over the whole header, options included.
    if checksum::sum(&packet[..header_len]) != 0xffff {
        return Err(DropReason::Ip4BadChecksum);
    }
    // (5) Total length covers at least the header.
    let total_len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
    if total_len < header_len {
        return Err(DropReason::Ip4BadTotalLen);
    }
    // Linux: the link layer delivered at least `total_len` bytes (IPSTATS_MIB_INTRUNCATEDPKTS).
    if total_len > packet.len() {
        return Err(DropReason::Ip4Truncated);
    }
    check_l2_broadcast(Ip4Meta::read(hdr, header_len, total_len), pkt_type)
}

/// RFC 1812 §5.3.4: "A router SHOULD silently discard a packet that is received via a Link Layer
/// broadcast but does not specify an IP multicast or IP broadcast destination address", and it
/// "MUST NOT forward any packet which the router received as a Link Layer multicast unless the
/// packet's destination address is an IP multicast address". (Linux:
/// `SKB_DROP_REASON_UNICAST_IN_L2_MULTICAST` in `ip_rcv_finish_core`, and `ip_forward`'s
/// `pkt_type != PACKET_HOST` check.)
#[inline(always)]
fn check_l2_broadcast(meta: Ip4Meta, pkt_type: PktType) -> Result<Ip4Meta, DropReason> {
    if l2_broadcast_refused(meta.dst, pkt_type) {
        return Err(DropReason::EthL2BcastUnicastIp);
    }
    Ok(meta)
}

/// The test of [`check_l2_broadcast`]: received as an L2 broadcast or multicast, to an IP
/// destination that is neither multicast nor the limited broadcast.
#[inline(always)]
fn l2_broadcast_refused(dst: u32, pkt_type: PktType) -> bool {
    matches!(pkt_type, PktType::Broadcast | PktType::Multicast)
        && !ipv4::is_multicast(dst)
        && !ipv4::is_lbcast(dst)
}

/// Whether `src` (host order) may not appear as the source of a forwarded packet: RFC 1812
/// §5.3.7 ("a router SHOULD NOT forward any packet that has an invalid IP source address or a
/// source address on network 0", nor "on network 127"; invalid = limited broadcast, class D,
/// class E) and RFC 3927 §7 (169.254/16 "MUST NOT" be forwarded).
///
/// Matches: 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4 (multicast), 240.0.0.0/4 (class E, including
/// 255.255.255.255), 169.254.0.0/16.
///
/// Linux is laxer by default: `ip_route_input_slow` calls zeronet, loopback (unless
/// `route_localnet`), multicast and limited-broadcast sources martian, but forwards class E and
/// link-local sources.
#[inline]
pub const fn martian_source(src: u32) -> bool {
    ipv4::is_zeronet(src)
        || ipv4::is_loopback(src)
        || ipv4::is_multicast(src)
        || ipv4::is_class_e(src)
        || ipv4::is_link_local(src)
}

/// Whether `dst` (host order) may not be forwarded to: RFC 1812 §5.3.7 (network 0, network 127,
/// class E), §5.3.5.1 (the limited broadcast is never forwarded) and RFC 3927 §7 (169.254/16).
/// Multicast destinations are not martian (multicast forwarding is a separate question).
///
/// Matches: 0.0.0.0/8, 127.0.0.0/8, 240.0.0.0/4 (including 255.255.255.255), 169.254.0.0/16.
///
/// Linux calls zeronet and loopback (unless `route_localnet`) destinations martian, delivers the
/// limited broadcast locally, and forwards class E and link-local destinations if routed.
#[inline]
pub const fn martian_destination(dst: u32) -> bool {
    ipv4::is_zeronet(dst)
        || ipv4::is_loopback(dst)
        || ipv4::is_class_e(dst)
        || ipv4::is_link_local(dst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::eth_input::eth_input;
    use crate::wire::EthernetAddress;
    use crate::wire::ipv4::Ipv4Packet;
    use crate::wire::testdata::{
        ECHO_REQUEST, ECHO_REQUEST_RR, MAC_HOST2, PORT_UNREACHABLE, UDP_DATAGRAM,
    };
    use proptest::prelude::*;

    fn ip(frame: &[u8]) -> Vec<u8> {
        frame[14..].to_vec()
    }

    /// Rewrites the header checksum after an edit (so that only the intended check fails).
    fn refill(p: &mut [u8]) {
        let hl = (usize::from(p[0] & 0x0f) * 4).clamp(20, p.len());
        p[10] = 0;
        p[11] = 0;
        let c = checksum::checksum(&p[..hl]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }

    fn edit(frame: &[u8], f: impl FnOnce(&mut Vec<u8>), fix_checksum: bool) -> Vec<u8> {
        let mut p = ip(frame);
        f(&mut p);
        if fix_checksum {
            refill(&mut p);
        }
        p
    }

    #[test]
    fn golden_echo_request_fast_path() {
        let m = ip_rcv_core(&ip(&ECHO_REQUEST), PktType::Host).unwrap();
        assert_eq!(
            m,
            Ip4Meta {
                src: 0xc000_0201,
                dst: 0xc000_0202,
                header_len: 20,
                total_len: 84,
                ttl: 64,
                protocol: 1,
                df: true,
                mf: false,
                frag_offset: 0,
                has_options: false,
            }
        );
    }

    #[test]
    fn golden_options_take_the_slow_path_and_pass() {
        let m = ip_rcv_core(&ip(&ECHO_REQUEST_RR), PktType::Host).unwrap();
        assert_eq!((m.header_len, m.total_len, m.has_options), (60, 124, true));
        let m = ip_rcv_core(&ip(&PORT_UNREACHABLE), PktType::Host).unwrap();
        assert_eq!((m.total_len, m.df, m.protocol), (66, false, 1));
    }

    /// Link padding: a 38-byte datagram in a 60-byte frame is accepted, and trimming the frame to
    /// `l3_offset + total_len` gives back exactly the datagram.
    #[test]
    fn padding_is_reported_for_trimming() {
        let mut frame = UDP_DATAGRAM.to_vec();
        frame.resize(60, 0);
        let me = EthernetAddress(MAC_HOST2);
        let eth = eth_input(&frame, &me).unwrap();
        let m = ip_rcv_core(&frame[eth.l3_offset..], eth.pkt_type).unwrap();
        assert_eq!(m.total_len, 38);
        let trimmed = &frame[..eth.l3_offset + m.total_len];
        assert_eq!(trimmed, &UDP_DATAGRAM[..]);
        assert_eq!(
            Ipv4Packet::new_checked(&trimmed[14..])
                .unwrap()
                .payload()
                .len(),
            18
        );
    }

    /// A table row: what, packet, how it arrived at layer 2, expected outcome.
    type Row = (&'static str, Vec<u8>, PktType, Result<(), DropReason>);

    /// One crafted packet per check, each failing only that check (the checksum is refilled
    /// unless the row is about the checksum).
    #[test]
    fn table() {
        let host = PktType::Host;
        let set_total = |n: u16| move |p: &mut Vec<u8>| p[2..4].copy_from_slice(&n.to_be_bytes());
        let rows: Vec<Row> = vec![
            ("golden", ip(&ECHO_REQUEST), host, Ok(())),
            (
                "otherhost",
                ip(&ECHO_REQUEST),
                PktType::OtherHost,
                Err(DropReason::EthOtherHost),
            ),
            ("empty", vec![], host, Err(DropReason::Ip4HdrTooShort)),
            (
                "19 bytes",
                ip(&ECHO_REQUEST)[..19].to_vec(),
                host,
                Err(DropReason::Ip4HdrTooShort),
            ),
            (
                "bad checksum",
                edit(&ECHO_REQUEST, |p| p[11] ^= 1, false),
                host,
                Err(DropReason::Ip4BadChecksum),
            ),
            (
                "bad checksum, options",
                edit(&ECHO_REQUEST_RR, |p| p[40] ^= 1, false),
                host,
                Err(DropReason::Ip4BadChecksum),
            ),
            (
                "version 6",
                edit(&ECHO_REQUEST, |p| p[0] = 0x65, true),
                host,
                Err(DropReason::Ip4Version),
            ),
            (
                "version 0",
                edit(&ECHO_REQUEST, |p| p[0] = 0x05, true),
                host,
                Err(DropReason::Ip4Version),
            ),
            (
                "version wins over bad checksum",
                edit(&ECHO_REQUEST, |p| p[0] = 0x65, false),
                host,
                Err(DropReason::Ip4Version),
            ),
            (
                "ihl 0",
                edit(&ECHO_REQUEST, |p| p[0] = 0x40, true),
                host,
                Err(DropReason::Ip4BadIhl),
            ),
            (
                "ihl 4",
                edit(&ECHO_REQUEST, |p| p[0] = 0x44, true),
                host,
                Err(DropReason::Ip4BadIhl),
            ),
            (
                "ihl 15 beyond 40 bytes",
                edit(
                    &ECHO_REQUEST,
                    |p| {
                        p[0] = 0x4f;
                        p.truncate(40)
                    },
                    false,
                ),
                host,
                Err(DropReason::Ip4BadIhl),
            ),
            (
                "ihl wins over bad checksum",
                edit(&ECHO_REQUEST, |p| p[0] = 0x44, false),
                host,
                Err(DropReason::Ip4BadIhl),
            ),
            (
                "ihl 6 valid",
                edit(
                    &ECHO_REQUEST,
                    |p| {
                        p[0] = 0x46;
                        p[20..24].copy_from_slice(&[1, 1, 1, 0])
                    },
                    true,
                ),
                host,
                Ok(()),
            ),
            (
                "total_len 0",
                edit(&ECHO_REQUEST, set_total(0), true),
                host,
                Err(DropReason::Ip4BadTotalLen),
            ),
            (
                "total_len 19",
                edit(&ECHO_REQUEST, set_total(19), true),
                host,
                Err(DropReason::Ip4BadTotalLen),
            ),
            (
                "total_len 20: header only",
                edit(&ECHO_REQUEST, set_total(20), true),
                host,
                Ok(()),
            ),
            (
                "total_len < options header",
                edit(&ECHO_REQUEST_RR, set_total(59), true),
                host,
                Err(DropReason::Ip4BadTotalLen),
            ),
            (
                "total_len = options header",
                edit(&ECHO_REQUEST_RR, set_total(60), true),
                host,
                Ok(()),
            ),
            (
                "checksum wins over total_len",
                edit(&ECHO_REQUEST, set_total(19), false),
                host,
                Err(DropReason::Ip4BadChecksum),
            ),
            (
                "total_len > frame",
                edit(&ECHO_REQUEST, set_total(85), true),
                host,
                Err(DropReason::Ip4Truncated),
            ),
            (
                "total_len 65535",
                edit(&ECHO_REQUEST, set_total(0xffff), true),
                host,
                Err(DropReason::Ip4Truncated),
            ),
            (
                "truncated options packet",
                edit(&ECHO_REQUEST_RR, |p| p.truncate(100), false),
                host,
                Err(DropReason::Ip4Truncated),
            ),
            (
                "l2 broadcast, unicast ip",
                ip(&ECHO_REQUEST),
                PktType::Broadcast,
                Err(DropReason::EthL2BcastUnicastIp),
            ),
            (
                "l2 multicast, unicast ip",
                ip(&ECHO_REQUEST),
                PktType::Multicast,
                Err(DropReason::EthL2BcastUnicastIp),
            ),
            (
                "l2 broadcast, unicast ip, options",
                ip(&ECHO_REQUEST_RR),
                PktType::Broadcast,
                Err(DropReason::EthL2BcastUnicastIp),
            ),
            (
                "l2 broadcast, ip limited broadcast",
                edit(
                    &ECHO_REQUEST,
                    |p| p[16..20].copy_from_slice(&[255; 4]),
                    true,
                ),
                PktType::Broadcast,
                Ok(()),
            ),
            (
                "l2 multicast, ip multicast",
                edit(
                    &ECHO_REQUEST,
                    |p| p[16..20].copy_from_slice(&[224, 0, 0, 5]),
                    true,
                ),
                PktType::Multicast,
                Ok(()),
            ),
            (
                "header check precedes l2 rule",
                edit(&ECHO_REQUEST, |p| p[11] ^= 1, false),
                PktType::Broadcast,
                Err(DropReason::Ip4BadChecksum),
            ),
        ];
        for (what, p, pkt_type, expect) in rows {
            let got = ip_rcv_core(&p, pkt_type);
            assert_eq!(got.map(|_| ()), expect, "{what}");
            if pkt_type != PktType::OtherHost {
                assert_eq!(
                    ip_rcv_core_slow(&p, pkt_type),
                    got,
                    "slow path disagrees: {what}"
                );
            }
        }
    }

    #[test]
    fn fragment_fields() {
        let p = edit(
            &ECHO_REQUEST,
            |p| p[6..8].copy_from_slice(&(0x2000u16 | 185).to_be_bytes()),
            true,
        );
        let m = ip_rcv_core(&p, PktType::Host).unwrap();
        assert!(m.mf && !m.df);
        assert_eq!(m.frag_offset, 1480);
    }

    #[test]
    fn martians() {
        let a = |s: &str| s.parse::<std::net::Ipv4Addr>().unwrap().to_bits();
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "224.0.0.1",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
            "169.254.3.4",
        ] {
            assert!(martian_source(a(s)), "source {s}");
        }
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "169.254.3.4",
        ] {
            assert!(martian_destination(a(s)), "destination {s}");
        }
        for s in [
            "1.0.0.0",
            "10.0.0.1",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "192.0.2.1",
            "223.255.255.255",
        ] {
            assert!(!martian_source(a(s)), "source {s}");
            assert!(!martian_destination(a(s)), "destination {s}");
        }
        assert!(
            !martian_destination(a("224.0.0.1")),
            "multicast destinations are not martian"
        );
    }

    /// Maps etherparse's verdict on a buffer (plus its checksum, which it does not verify) to the
    /// reason we must give: an independent statement of RFC 1812 §5.2.2 in Linux's order.
    fn oracle(data: &[u8]) -> Result<(usize, usize), DropReason> {
        use etherparse::LenSource;
        use etherparse::err::Layer;
        use etherparse::err::ipv4::{HeaderError, SliceError};
        let csum_ok = |hl: usize| {
            etherparse::checksum::Sum16BitWords::new()
                .add_slice(&data[..hl])
                .ones_complement()
                == 0
        };
        match etherparse::Ipv4Slice::from_slice(data) {
            Ok(s) => {
                let hl = s.header().slice().len();
                if !csum_ok(hl) {
                    return Err(DropReason::Ip4BadChecksum);
                }
                Ok((hl, usize::from(s.header().total_len())))
            }
            Err(SliceError::Header(HeaderError::UnexpectedVersion { .. })) => {
                Err(DropReason::Ip4Version)
            }
            Err(SliceError::Header(HeaderError::HeaderLengthSmallerThanHeader { .. })) => {
                Err(DropReason::Ip4BadIhl)
            }
            Err(SliceError::Len(e)) if e.layer == Layer::Ipv4Header && e.required_len == 20 => {
                Err(DropReason::Ip4HdrTooShort)
            }
            Err(SliceError::Len(e)) if e.layer == Layer::Ipv4Header => Err(DropReason::Ip4BadIhl),
            Err(SliceError::Len(e)) => {
                let hl = usize::from(data[0] & 0x0f) * 4;
                if !csum_ok(hl) {
                    Err(DropReason::Ip4BadChecksum)
                } else if e.len_source == LenSource::Ipv4HeaderTotalLen {
                    Err(DropReason::Ip4BadTotalLen)
                } else {
                    Err(DropReason::Ip4Truncated)
                }
            }
            Err(other) => panic!("etherparse error not covered by the oracle: {other:?}"),
        }
    }

    /// Random packets, biased towards almost-valid ones so every check gets exercised.
    fn packet_strategy() -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::collection::vec(any::<u8>(), 0..100),
            any::<bool>(), // force version 4
            any::<bool>(), // force IHL within the buffer
            0u8..3,        // total length: as is, within [IHL*4, len], or small (often < IHL*4)
            any::<bool>(), // fill the checksum
        )
            .prop_map(|(mut d, v4, ihl_ok, tot, fix)| {
                if d.len() >= 20 {
                    if v4 {
                        d[0] = 0x40 | (d[0] & 0x0f);
                    }
                    if ihl_ok {
                        let max_ihl = (d.len() / 4).min(15) as u8;
                        d[0] = (d[0] & 0xf0) | (5 + (d[0] & 0x0f) % (max_ihl - 4));
                    }
                    let hl = usize::from(d[0] & 0x0f) * 4;
                    if tot == 1 && hl >= 20 && hl <= d.len() {
                        let t = hl + usize::from(d[3]) % (d.len() - hl + 1);
                        d[2..4].copy_from_slice(&(t as u16).to_be_bytes());
                    } else if tot == 2 {
                        let t = u16::from(d[3] % 64);
                        d[2..4].copy_from_slice(&t.to_be_bytes());
                    }
                    if d[9] == 51 {
                        d[9] = 50; // etherparse parses an AH after the header; we do not.
                    }
                    if fix {
                        refill(&mut d);
                    }
                }
                d
            })
    }

    /// The random packets of the property tests reach every outcome, so the oracle comparison
    /// covers every check.
    #[test]
    fn strategy_reaches_every_outcome() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = packet_strategy();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..4000 {
            let d = strategy.new_tree(&mut runner).unwrap().current();
            seen.insert(ip_rcv_core(&d, PktType::Host).map(|_| ()));
        }
        for r in [
            Ok(()),
            Err(DropReason::Ip4HdrTooShort),
            Err(DropReason::Ip4Version),
            Err(DropReason::Ip4BadIhl),
            Err(DropReason::Ip4BadChecksum),
            Err(DropReason::Ip4BadTotalLen),
            Err(DropReason::Ip4Truncated),
        ] {
            assert!(seen.contains(&r), "{r:?} never reached");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// etherparse as oracle: same accept/reject, and the same reason, on random input.
        #[test]
        fn agrees_with_etherparse(d in packet_strategy()) {
            let ours = ip_rcv_core(&d, PktType::Host);
            let theirs = oracle(&d);
            prop_assert_eq!(ours.map(|m| (m.header_len, m.total_len)), theirs);
        }

        /// The fast path is only a shortcut: the slow path gives the same result for everything.
        #[test]
        fn fast_path_equals_slow_path(d in packet_strategy(), t in 0u8..3) {
            let pkt_type = [PktType::Host, PktType::Broadcast, PktType::Multicast][usize::from(t)];
            prop_assert_eq!(ip_rcv_core(&d, pkt_type), ip_rcv_core_slow(&d, pkt_type));
        }

        /// Accepted packets satisfy the edge contract, and their fields read through the view agree.
        #[test]
        fn of_accepted_reads_what_ip_rcv_core_returned(d in packet_strategy()) {
            if let Ok(m) = ip_rcv_core(&d, PktType::Host) {
                prop_assert_eq!(Ip4Meta::of_accepted(&d), m);
            }
        }

        #[test]
        fn accepted_packets_satisfy_the_contract(d in packet_strategy()) {
            if let Ok(m) = ip_rcv_core(&d, PktType::Host) {
                prop_assert!(HEADER_LEN <= m.header_len && m.header_len <= m.total_len && m.total_len <= d.len());
                let p = Ipv4Packet::new_checked(&d[..]).unwrap();
                prop_assert!(p.verify_checksum());
                prop_assert_eq!(p.version(), 4);
                prop_assert_eq!((p.src_u32(), p.dst_u32(), p.ttl(), p.protocol()), (m.src, m.dst, m.ttl, m.protocol));
                prop_assert_eq!((p.dont_frag(), p.more_frags(), p.frag_offset()), (m.df, m.mf, m.frag_offset));
                prop_assert_eq!(m.has_options, !p.options().is_empty());
            }
        }

        /// RFC 1812 §5.3.4 on valid headers with random destinations.
        #[test]
        fn l2_broadcast_rule(dst in any::<u32>(), t in 0u8..3) {
            let pkt_type = [PktType::Host, PktType::Broadcast, PktType::Multicast][usize::from(t)];
            let p = edit(&ECHO_REQUEST, |p| p[16..20].copy_from_slice(&dst.to_be_bytes()), true);
            let ok = pkt_type == PktType::Host || dst >> 28 == 0xe || dst == u32::MAX;
            prop_assert_eq!(ip_rcv_core(&p, pkt_type).is_ok(), ok);
        }
    }

    /// Timing of the first two stages on one core. Run with
    /// `cargo test -p xfwd --release --lib -- --ignored --nocapture bench_`.
    #[test]
    #[ignore = "timing, not a test: run in release with --nocapture"]
    fn bench_eth_ip4_input() {
        use std::hint::black_box;
        use std::time::Instant;
        let me = EthernetAddress(MAC_HOST2);
        let mut frames: Vec<Vec<u8>> = Vec::new();
        for i in 0..64u8 {
            let mut f = ECHO_REQUEST.to_vec();
            f[14 + 19] = i; // vary the destination
            let mut p = Ipv4Packet::new_unchecked(&mut f[14..]);
            p.fill_checksum();
            frames.push(f);
        }
        let rounds = 200_000;
        let run = |f: &dyn Fn(&[u8]) -> usize| {
            let start = Instant::now();
            let mut acc = 0usize;
            for _ in 0..rounds {
                for fr in &frames {
                    acc = acc.wrapping_add(f(black_box(fr)));
                }
            }
            black_box(acc);
            start.elapsed().as_nanos() as f64 / (rounds * frames.len()) as f64
        };
        let eth_ip = run(&|fr| match eth_input(fr, &me) {
            Ok(e) => match ip_rcv_core(&fr[e.l3_offset..], e.pkt_type) {
                Ok(m) => m.total_len,
                Err(r) => r as usize,
            },
            Err(r) => r as usize,
        });
        let ip_only = run(&|fr| ip_rcv_core(&fr[14..], PktType::Host).map_or(0, |m| m.total_len));
        let ip_slow =
            run(&|fr| ip_rcv_core_slow(&fr[14..], PktType::Host).map_or(0, |m| m.total_len));
        let sum20 = run(&|fr| usize::from(checksum::sum(&fr[14..34])));
        let sum20_ref = run(&|fr| usize::from(checksum::sum_reference(&fr[14..34])));
        let big = vec![0x5au8; 1500];
        let sum1500 = run(&|_| usize::from(checksum::sum(black_box(&big))));
        let sum1500_ref = run(&|_| usize::from(checksum::sum_reference(black_box(&big))));
        println!("eth_input + ip_rcv_core (fast path): {eth_ip:.2} ns/packet");
        println!("ip_rcv_core fast path:               {ip_only:.2} ns/packet");
        println!("ip_rcv_core slow path (same input):  {ip_slow:.2} ns/packet");
        println!(
            "checksum::sum 20 B:                  {sum20:.2} ns (reference {sum20_ref:.2} ns)"
        );
        println!(
            "checksum::sum 1500 B:                {sum1500:.2} ns (reference {sum1500_ref:.2} ns)"
        );
    }
}

//! Crafting the frames tests send, and parsing the frames they assert on.
//!
//! Formats: Ethernet II, IPv4 (RFC 791), UDP (RFC 768), ICMP (RFC 792); checksums are the RFC 1071
//! ones' complement sum. Frames are built with `etherparse`, an implementation independent of
//! xfwd's own `wire/` code, so these helpers can serve as its oracle. [`Malform`] then breaks one
//! field at a time (keeping the header checksum consistent unless the checksum is what is broken),
//! for the RFC 1812 §5.2.2 validity checks.

use std::net::Ipv4Addr;

use anyhow::{Context, Result, anyhow, bail, ensure};
use etherparse::{
    EtherType, Ethernet2Header, IcmpEchoHeader, Icmpv4Header, Icmpv4Type, IpDscp, IpEcn,
    IpFragOffset, IpNumber, Ipv4Header, Ipv4Options, UdpHeader,
};

/// Length of an Ethernet II header.
pub const ETH_HLEN: usize = 14;
/// EtherType of IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// The Ethernet and IPv4 header fields of a frame to craft.
///
/// Build one with [`Ipv4Frame::new`] (or `Topology::frame_from`), change the public fields,
/// then emit a frame with [`Ipv4Frame::udp`], [`Ipv4Frame::icmp_echo_request`] or
/// [`Ipv4Frame::raw`]. Checksums (IPv4 header, UDP, ICMP) are always computed correctly; break
/// them afterwards with [`Malform`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv4Frame {
    /// Ethernet source address.
    pub src_mac: [u8; 6],
    /// Ethernet destination address.
    pub dst_mac: [u8; 6],
    /// IPv4 source address.
    pub src: Ipv4Addr,
    /// IPv4 destination address.
    pub dst: Ipv4Addr,
    /// Time to live (default 64).
    pub ttl: u8,
    /// The DF flag (default clear).
    pub dont_fragment: bool,
    /// The MF flag (default clear).
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units, at most 8191 (default 0).
    pub fragment_offset: u16,
    /// Identification (default 0).
    pub identification: u16,
    /// The former TOS byte: DSCP in the upper six bits, ECN in the lower two (default 0).
    pub tos: u8,
    /// IP options, a multiple of 4 bytes and at most 40 (default none), e.g.
    /// `vec![0x94, 0x04, 0, 0]` for Router Alert (RFC 2113).
    pub options: Vec<u8>,
}

impl Ipv4Frame {
    /// Headers from `src_mac`/`src` to `dst_mac`/`dst`, TTL 64, no flags, no options.
    pub fn new(src_mac: [u8; 6], dst_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        Ipv4Frame {
            src_mac,
            dst_mac,
            src,
            dst,
            ttl: 64,
            dont_fragment: false,
            more_fragments: false,
            fragment_offset: 0,
            identification: 0,
            tos: 0,
            options: Vec::new(),
        }
    }

    /// A UDP datagram carrying `payload`, with a correct UDP checksum.
    ///
    /// # Errors
    ///
    /// When the options are not a multiple of 4 or longer than 40 bytes, the fragment offset is
    /// above 8191, or the packet would exceed 65535 bytes.
    pub fn udp(&self, src_port: u16, dst_port: u16, payload: &[u8]) -> Result<Vec<u8>> {
        let ip = self.ip_header(IpNumber::UDP, payload.len() + UdpHeader::LEN)?;
        let udp = UdpHeader::with_ipv4_checksum(src_port, dst_port, &ip, payload)
            .map_err(|e| anyhow!("UDP payload: {e}"))?;
        let mut l4 = Vec::with_capacity(UdpHeader::LEN + payload.len());
        l4.extend_from_slice(&udp.to_bytes());
        l4.extend_from_slice(payload);
        self.emit(&ip, &l4)
    }

    /// An ICMP echo request (type 8) with identifier `id`, sequence number `seq` and `payload`.
    ///
    /// # Errors
    ///
    /// As [`Ipv4Frame::udp`].
    pub fn icmp_echo_request(&self, id: u16, seq: u16, payload: &[u8]) -> Result<Vec<u8>> {
        let icmp = Icmpv4Header::with_checksum(
            Icmpv4Type::EchoRequest(IcmpEchoHeader { id, seq }),
            payload,
        );
        let mut l4 = Vec::with_capacity(icmp.header_len() + payload.len());
        l4.extend_from_slice(&icmp.to_bytes());
        l4.extend_from_slice(payload);
        let ip = self.ip_header(IpNumber::ICMP, l4.len())?;
        self.emit(&ip, &l4)
    }

    /// An IPv4 packet with protocol number `protocol` whose payload is `l4`, used as given (no
    /// transport checksum is computed).
    ///
    /// # Errors
    ///
    /// As [`Ipv4Frame::udp`].
    pub fn raw(&self, protocol: u8, l4: &[u8]) -> Result<Vec<u8>> {
        let ip = self.ip_header(IpNumber(protocol), l4.len())?;
        self.emit(&ip, l4)
    }

    fn ip_header(&self, protocol: IpNumber, payload_len: usize) -> Result<Ipv4Header> {
        let options = Ipv4Options::try_from(self.options.as_slice()).map_err(|_| {
            anyhow!(
                "IPv4 options must be a multiple of 4 bytes and at most 40, got {}",
                self.options.len()
            )
        })?;
        let mut ip = Ipv4Header {
            dscp: IpDscp::try_new(self.tos >> 2).map_err(|e| anyhow!("DSCP: {e}"))?,
            ecn: IpEcn::try_new(self.tos & 3).map_err(|e| anyhow!("ECN: {e}"))?,
            identification: self.identification,
            dont_fragment: self.dont_fragment,
            more_fragments: self.more_fragments,
            fragment_offset: IpFragOffset::try_new(self.fragment_offset)
                .map_err(|e| anyhow!("fragment offset: {e}"))?,
            time_to_live: self.ttl,
            protocol,
            source: self.src.octets(),
            destination: self.dst.octets(),
            options,
            ..Ipv4Header::default()
        };
        ip.set_payload_len(payload_len)
            .map_err(|e| anyhow!("IPv4 packet too large: {e}"))?;
        ip.header_checksum = ip.calc_header_checksum();
        Ok(ip)
    }

    fn emit(&self, ip: &Ipv4Header, l4: &[u8]) -> Result<Vec<u8>> {
        let eth = Ethernet2Header {
            source: self.src_mac,
            destination: self.dst_mac,
            ether_type: EtherType::IPV4,
        };
        let mut frame = Vec::with_capacity(ETH_HLEN + ip.header_len() + l4.len());
        frame.extend_from_slice(&eth.to_bytes());
        ip.write_raw(&mut frame)
            .context("writing the IPv4 header")?;
        frame.extend_from_slice(l4);
        Ok(frame)
    }
}

/// One way to break the IPv4 header of an Ethernet + IPv4 frame, for testing how malformed
/// packets are handled. Apart from [`Malform::BadHeaderChecksum`], the header checksum is
/// recomputed afterwards (over the header length the new IHL names, when the frame holds it),
/// so that exactly one thing is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malform {
    /// The header checksum no longer verifies; every other field is intact.
    BadHeaderChecksum,
    /// The version nibble is set to this value (0..=15).
    Version(u8),
    /// The IHL nibble is set to this value (0..=15), e.g. 4 (shorter than the minimum) or one
    /// that points past the end of the packet.
    Ihl(u8),
    /// Total Length is set to this value, e.g. larger than the frame or smaller than the header.
    TotalLength(u16),
    /// The frame is cut to this many bytes, leaving Total Length promising more.
    Truncate(usize),
}

impl Malform {
    /// Applies this change to `frame`.
    ///
    /// # Errors
    ///
    /// When `frame` is not Ethernet + IPv4 with at least a 20-byte header, or a nibble value is
    /// above 15, or [`Malform::Truncate`] would not shorten the frame.
    pub fn apply(self, frame: &mut Vec<u8>) -> Result<()> {
        ensure!(
            frame.len() >= ETH_HLEN + 20,
            "frame of {} bytes is too short for Ethernet + IPv4",
            frame.len()
        );
        ensure!(
            u16::from_be_bytes([frame[12], frame[13]]) == ETH_P_IP,
            "not an IPv4 frame"
        );
        let ip = ETH_HLEN;
        match self {
            Malform::BadHeaderChecksum => {
                let hlen = header_len_in_frame(frame);
                let good = ipv4_header_checksum(&frame[ip..ip + hlen]);
                // XOR with 0x5555 changes the value by less than 0xffff, so the result cannot be
                // the other ones' complement zero (0x0000 <-> 0xffff) and never verifies.
                frame[ip + 10..ip + 12].copy_from_slice(&(good ^ 0x5555).to_be_bytes());
                return Ok(());
            }
            Malform::Version(v) => {
                ensure!(v <= 15, "version {v} does not fit in 4 bits");
                frame[ip] = (v << 4) | (frame[ip] & 0x0f);
            }
            Malform::Ihl(ihl) => {
                ensure!(ihl <= 15, "IHL {ihl} does not fit in 4 bits");
                frame[ip] = (frame[ip] & 0xf0) | ihl;
            }
            Malform::TotalLength(len) => {
                frame[ip + 2..ip + 4].copy_from_slice(&len.to_be_bytes());
            }
            Malform::Truncate(len) => {
                ensure!(
                    len < frame.len(),
                    "truncating to {len} bytes would not shorten a {}-byte frame",
                    frame.len()
                );
                frame.truncate(len);
                return Ok(());
            }
        }
        let hlen = header_len_in_frame(frame);
        let sum = ipv4_header_checksum(&frame[ip..ip + hlen]);
        frame[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
        Ok(())
    }
}

/// The IPv4 header length to checksum over: IHL × 4, or 20 when IHL is below 5, capped at what
/// the frame holds.
fn header_len_in_frame(frame: &[u8]) -> usize {
    let ihl = usize::from(frame[ETH_HLEN] & 0x0f) * 4;
    ihl.max(20).min(frame.len() - ETH_HLEN)
}

/// The checksum field value that makes `header` verify (its own checksum field is ignored).
fn ipv4_header_checksum(header: &[u8]) -> u16 {
    let mut sum = ones_sum(&header[..10], 0);
    sum = ones_sum(&header[12..], sum);
    !fold(sum)
}

/// Adds `data` as big-endian 16-bit words (odd length padded with a zero byte) to `sum`,
/// RFC 1071 style, without folding.
fn ones_sum(data: &[u8], mut sum: u64) -> u64 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    sum
}

/// Folds a running sum to 16 bits with end-around carry.
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Whether the data, checksum field included, sums to the ones' complement zero (RFC 1071).
fn verifies(data: &[u8], sum: u64) -> bool {
    fold(ones_sum(data, sum)) == 0xffff
}

/// The ones' complement sum of the IPv4 pseudo-header (RFC 768) for a transport segment of
/// `len` bytes, not complemented: exactly the value a stack leaves in the checksum field of a
/// `CHECKSUM_PARTIAL` packet for the device (or nobody) to finish.
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u16 {
    let mut sum = ones_sum(&src.octets(), 0);
    sum = ones_sum(&dst.octets(), sum);
    sum += u64::from(protocol) + u64::from(len);
    fold(sum)
}

/// A parsed Ethernet frame: the fields tests assert on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedFrame {
    /// Ethernet destination address.
    pub dst_mac: [u8; 6],
    /// Ethernet source address.
    pub src_mac: [u8; 6],
    /// EtherType (e.g. [`ETH_P_IP`], [`ETH_P_ARP`]).
    pub ethertype: u16,
    /// The IPv4 packet, when the EtherType is IPv4.
    pub ipv4: Option<Ipv4Info>,
}

impl ParsedFrame {
    /// The IPv4 packet.
    ///
    /// # Errors
    ///
    /// When the frame is not IPv4.
    pub fn ip(&self) -> Result<&Ipv4Info> {
        self.ipv4
            .as_ref()
            .ok_or_else(|| anyhow!("not an IPv4 frame (EtherType {:#06x})", self.ethertype))
    }

    /// The UDP datagram, when this is an unfragmented IPv4/UDP frame.
    pub fn udp(&self) -> Option<&UdpInfo> {
        self.ipv4.as_ref()?.udp.as_ref()
    }

    /// The ICMP message, when this is an unfragmented IPv4/ICMP frame.
    pub fn icmp(&self) -> Option<&IcmpInfo> {
        self.ipv4.as_ref()?.icmp.as_ref()
    }
}

/// The IPv4 header fields of a parsed frame, and its transport layer when unfragmented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv4Info {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Time to live.
    pub ttl: u8,
    /// Protocol number.
    pub protocol: u8,
    /// Header length in 32-bit words.
    pub ihl: u8,
    /// Total Length field.
    pub total_len: u16,
    /// Identification.
    pub identification: u16,
    /// The DF flag.
    pub dont_fragment: bool,
    /// The MF flag.
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units.
    pub fragment_offset: u16,
    /// The former TOS byte (DSCP and ECN).
    pub tos: u8,
    /// The header checksum field.
    pub header_checksum: u16,
    /// Whether the header checksum verifies.
    pub header_checksum_ok: bool,
    /// IP options (the header beyond 20 bytes).
    pub options: Vec<u8>,
    /// The payload: Total Length minus the header, Ethernet padding excluded.
    pub payload: Vec<u8>,
    /// The UDP datagram, when protocol is UDP and the packet is not a fragment.
    pub udp: Option<UdpInfo>,
    /// The ICMP message, when protocol is ICMP and the packet is not a fragment.
    pub icmp: Option<IcmpInfo>,
}

/// A parsed UDP datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpInfo {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length field.
    pub length: u16,
    /// Checksum field (0: none sent).
    pub checksum: u16,
    /// Whether the checksum verifies over the pseudo-header and the IP payload (true when none
    /// was sent, as RFC 768 allows).
    pub checksum_ok: bool,
    /// Data after the 8-byte header.
    pub payload: Vec<u8>,
}

/// A parsed ICMP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcmpInfo {
    /// Type (e.g. 0 echo reply, 3 destination unreachable, 8 echo request, 11 time exceeded).
    pub icmp_type: u8,
    /// Code (e.g. 4 fragmentation needed with type 3).
    pub code: u8,
    /// Whether the checksum verifies over the whole message.
    pub checksum_ok: bool,
    /// Bytes 4..8 of the message: identifier and sequence number of an echo, unused + next-hop
    /// MTU of a fragmentation-needed message (RFC 1191).
    pub rest_of_header: [u8; 4],
    /// Bytes after the 8-byte header: the echo data, or, in an error message, the quoted bytes
    /// of the datagram that caused it (its IP header and at least 8 bytes of its payload).
    pub payload: Vec<u8>,
}

impl IcmpInfo {
    /// Identifier of an echo request or reply.
    pub fn echo_id(&self) -> u16 {
        u16::from_be_bytes([self.rest_of_header[0], self.rest_of_header[1]])
    }

    /// Sequence number of an echo request or reply.
    pub fn echo_seq(&self) -> u16 {
        u16::from_be_bytes([self.rest_of_header[2], self.rest_of_header[3]])
    }

    /// Next-hop MTU of a fragmentation-needed message (type 3 code 4, RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        u16::from_be_bytes([self.rest_of_header[2], self.rest_of_header[3]])
    }
}

/// Parses an Ethernet frame; for IPv4, also its header and (unfragmented) UDP or ICMP.
///
/// Ethernet padding after Total Length is ignored. Checksums are reported, not enforced, so a
/// test can assert that a checksum is wrong.
///
/// # Errors
///
/// When the frame is shorter than an Ethernet header, or it is IPv4 and the header is invalid
/// (version not 4, IHL below 5, header or Total Length beyond the frame, Total Length shorter than
/// the header), or a UDP or ICMP header is cut short.
pub fn parse(frame: &[u8]) -> Result<ParsedFrame> {
    let (eth, rest) =
        Ethernet2Header::from_slice(frame).map_err(|e| anyhow!("Ethernet header: {e}"))?;
    let mut parsed = ParsedFrame {
        dst_mac: eth.destination,
        src_mac: eth.source,
        ethertype: eth.ether_type.0,
        ipv4: None,
    };
    if eth.ether_type == EtherType::IPV4 {
        parsed.ipv4 = Some(parse_ipv4(rest)?);
    }
    Ok(parsed)
}

fn parse_ipv4(bytes: &[u8]) -> Result<Ipv4Info> {
    let (ip, _) = Ipv4Header::from_slice(bytes).map_err(|e| anyhow!("IPv4 header: {e}"))?;
    let hlen = ip.header_len();
    let total = usize::from(ip.total_len);
    ensure!(
        total >= hlen,
        "IPv4 Total Length {total} is shorter than the {hlen}-byte header"
    );
    ensure!(
        total <= bytes.len(),
        "IPv4 Total Length {total} exceeds the {} bytes after the Ethernet header",
        bytes.len()
    );
    let payload = &bytes[hlen..total];
    let src = Ipv4Addr::from(ip.source);
    let dst = Ipv4Addr::from(ip.destination);
    let fragment = ip.more_fragments || ip.fragment_offset.value() != 0;
    let udp = if !fragment && ip.protocol == IpNumber::UDP {
        Some(parse_udp(src, dst, payload)?)
    } else {
        None
    };
    let icmp = if !fragment && ip.protocol == IpNumber::ICMP {
        Some(parse_icmp(payload)?)
    } else {
        None
    };
    Ok(Ipv4Info {
        src,
        dst,
        ttl: ip.time_to_live,
        protocol: ip.protocol.0,
        ihl: ip.ihl(),
        total_len: ip.total_len,
        identification: ip.identification,
        dont_fragment: ip.dont_fragment,
        more_fragments: ip.more_fragments,
        fragment_offset: ip.fragment_offset.value(),
        tos: (ip.dscp.value() << 2) | ip.ecn.value(),
        header_checksum: ip.header_checksum,
        header_checksum_ok: verifies(&bytes[..hlen], 0),
        options: ip.options.as_slice().to_vec(),
        payload: payload.to_vec(),
        udp,
        icmp,
    })
}

fn parse_udp(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) -> Result<UdpInfo> {
    let (udp, data) = UdpHeader::from_slice(segment).map_err(|e| anyhow!("UDP header: {e}"))?;
    let len = u16::try_from(segment.len()).context("UDP segment above 65535 bytes")?;
    let pseudo = u64::from(pseudo_header_sum(src, dst, IPPROTO_UDP, len));
    Ok(UdpInfo {
        src_port: udp.source_port,
        dst_port: udp.destination_port,
        length: udp.length,
        checksum: udp.checksum,
        checksum_ok: udp.checksum == 0 || verifies(segment, pseudo),
        payload: data.to_vec(),
    })
}

fn parse_icmp(message: &[u8]) -> Result<IcmpInfo> {
    if message.len() < 8 {
        bail!("ICMP message of {} bytes is shorter than 8", message.len());
    }
    Ok(IcmpInfo {
        icmp_type: message[0],
        code: message[1],
        checksum_ok: verifies(message, 0),
        rest_of_header: [message[4], message[5], message[6], message[7]],
        payload: message[8..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [0x02, 0, 0, 0, 1, 2];
    const B: [u8; 6] = [0x02, 0, 0, 0, 1, 1];

    fn spec() -> Ipv4Frame {
        Ipv4Frame::new(A, B, Ipv4Addr::new(10, 0, 1, 2), Ipv4Addr::new(10, 0, 2, 2))
    }

    #[test]
    fn rfc1071_example_sum() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(ones_sum(&data, 0)), 0xddf2);
    }

    #[test]
    fn known_header_checksum() {
        // A classic worked example: 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ipv4_header_checksum(&hdr), 0xb861);
    }

    #[test]
    fn udp_round_trip() {
        let mut s = spec();
        s.ttl = 7;
        s.dont_fragment = true;
        s.identification = 0x1234;
        s.tos = 0xb9;
        s.options = vec![0x94, 0x04, 0x00, 0x00];
        let f = s.udp(1000, 2000, b"hello").unwrap();
        assert_eq!(f.len(), 14 + 24 + 8 + 5);
        assert_eq!(&f[0..6], &B);
        assert_eq!(&f[6..12], &A);
        let p = parse(&f).unwrap();
        assert_eq!((p.dst_mac, p.src_mac, p.ethertype), (B, A, ETH_P_IP));
        let ip = p.ip().unwrap();
        assert_eq!((ip.src, ip.dst), (s.src, s.dst));
        assert_eq!((ip.ttl, ip.ihl, ip.total_len, ip.tos), (7, 6, 37, 0xb9));
        assert!(ip.dont_fragment && !ip.more_fragments);
        assert_eq!(ip.identification, 0x1234);
        assert_eq!(ip.options, vec![0x94, 0x04, 0, 0]);
        assert!(ip.header_checksum_ok);
        let udp = p.udp().unwrap();
        assert_eq!((udp.src_port, udp.dst_port, udp.length), (1000, 2000, 13));
        assert!(udp.checksum_ok && udp.checksum != 0);
        assert_eq!(udp.payload, b"hello");
    }

    #[test]
    fn udp_checksum_corruption_and_partial_sum_are_detected() {
        let mut f = spec().udp(1, 2, b"abc").unwrap();
        let csum = 14 + 20 + 6;
        f[csum] ^= 0x01;
        assert!(!parse(&f).unwrap().udp().unwrap().checksum_ok);
        // What a CHECKSUM_PARTIAL skb carries: the pseudo-header sum, not the checksum.
        let partial = pseudo_header_sum(spec().src, spec().dst, IPPROTO_UDP, 11);
        f[csum..csum + 2].copy_from_slice(&partial.to_be_bytes());
        assert!(!parse(&f).unwrap().udp().unwrap().checksum_ok);
        f[csum..csum + 2].copy_from_slice(&[0, 0]);
        assert!(
            parse(&f).unwrap().udp().unwrap().checksum_ok,
            "0 = no checksum"
        );
    }

    #[test]
    fn echo_request_round_trip() {
        let f = spec().icmp_echo_request(0xbeef, 3, b"ping!").unwrap();
        let p = parse(&f).unwrap();
        assert_eq!(p.ip().unwrap().protocol, IPPROTO_ICMP);
        let icmp = p.icmp().unwrap();
        assert_eq!((icmp.icmp_type, icmp.code), (8, 0));
        assert_eq!((icmp.echo_id(), icmp.echo_seq()), (0xbeef, 3));
        assert!(icmp.checksum_ok);
        assert_eq!(icmp.payload, b"ping!");
    }

    #[test]
    fn ethernet_padding_is_ignored() {
        let mut f = spec().udp(1, 2, b"").unwrap();
        f.resize(60, 0);
        let p = parse(&f).unwrap();
        assert_eq!(p.ip().unwrap().payload.len(), 8);
        assert!(p.udp().unwrap().checksum_ok);
    }

    #[test]
    fn fragments_have_no_transport_layer() {
        let mut s = spec();
        s.more_fragments = true;
        let p = parse(&s.udp(1, 2, b"x").unwrap()).unwrap();
        assert!(p.udp().is_none() && p.ip().unwrap().more_fragments);
        s.more_fragments = false;
        s.fragment_offset = 8191;
        assert_eq!(
            parse(&s.raw(17, b"x").unwrap())
                .unwrap()
                .ip()
                .unwrap()
                .fragment_offset,
            8191
        );
        s.fragment_offset = 8192;
        assert!(s.udp(1, 2, b"x").is_err());
    }

    #[test]
    fn bad_options_are_an_error() {
        let mut s = spec();
        s.options = vec![1, 1, 1];
        assert!(s.udp(1, 2, b"").is_err());
        s.options = vec![1; 44];
        assert!(s.udp(1, 2, b"").is_err());
    }

    #[test]
    fn malform_bad_checksum_only_breaks_the_checksum() {
        for ttl in 0..=255u8 {
            // Covers checksums whose good value is 0x0000 or 0xffff territory as TTL varies.
            let mut s = spec();
            s.ttl = ttl;
            let mut f = s.udp(1, 2, b"x").unwrap();
            let before = f.clone();
            Malform::BadHeaderChecksum.apply(&mut f).unwrap();
            let ip = parse(&f).unwrap().ipv4.unwrap();
            assert!(!ip.header_checksum_ok, "ttl {ttl}");
            assert_eq!(f[..24], before[..24]);
            assert_eq!(f[26..], before[26..]);
        }
    }

    #[test]
    fn malform_fields_keep_the_checksum_consistent() {
        let f = spec().udp(1, 2, b"12345678").unwrap();

        let mut g = f.clone();
        Malform::Ihl(4).apply(&mut g).unwrap();
        assert_eq!(g[14], 0x44);
        assert!(verifies(&g[14..34], 0));
        assert!(parse(&g).is_err());

        let mut g = f.clone();
        Malform::Ihl(6).apply(&mut g).unwrap();
        let ip = parse(&g).unwrap().ipv4.unwrap();
        assert_eq!(ip.ihl, 6);
        assert!(ip.header_checksum_ok);

        let mut g = f.clone();
        Malform::Version(6).apply(&mut g).unwrap();
        assert_eq!(g[14], 0x65);
        assert!(verifies(&g[14..34], 0));

        let mut g = f.clone();
        Malform::TotalLength(200).apply(&mut g).unwrap();
        assert!(verifies(&g[14..34], 0));
        assert!(parse(&g).unwrap_err().to_string().contains("exceeds"));

        let mut g = f.clone();
        Malform::TotalLength(19).apply(&mut g).unwrap();
        assert!(parse(&g).unwrap_err().to_string().contains("shorter"));

        let mut g = f.clone();
        Malform::Truncate(40).apply(&mut g).unwrap();
        assert_eq!(g.len(), 40);
        assert!(verifies(&g[14..34], 0));
        assert!(Malform::Truncate(40).apply(&mut g).is_err());

        assert!(Malform::Ihl(16).apply(&mut f.clone()).is_err());
        assert!(Malform::BadHeaderChecksum.apply(&mut vec![0; 20]).is_err());
    }

    #[test]
    fn parse_rejects_short_and_reports_non_ip() {
        assert!(parse(&[0; 13]).is_err());
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&A);
        arp.extend_from_slice(&ETH_P_ARP.to_be_bytes());
        arp.extend_from_slice(&[0; 28]);
        let p = parse(&arp).unwrap();
        assert_eq!(p.ethertype, ETH_P_ARP);
        assert!(p.ip().is_err() && p.udp().is_none());
    }
}

//! IPv4 headers (RFC 791), special address classes (RFC 1122 §3.2.1.3, RFC 1812 §4.2.2.11 and
//! §5.3.7, RFC 3927, RFC 1112), as Linux's `include/uapi/linux/ip.h` (`struct iphdr`) and
//! `include/linux/in.h` (`ipv4_is_*`) describe them.
//!
//! ```text
//!  0               1               2               3
//!  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
//! +-------+-------+-----------+---+-------------------------------+
//! |Version|  IHL  |   DSCP    |ECN|          Total Length         |
//! +-------+-------+-----------+---+-----+-------------------------+
//! |         Identification        |Flags|     Fragment Offset     |
//! +---------------+---------------+-----+-------------------------+
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! +---------------+---------------+-------------------------------+
//! |                       Source Address                          |
//! +---------------------------------------------------------------+
//! |                    Destination Address                        |
//! +---------------------------------------------------------------+
//! |                    Options (IHL > 5)                          |
//! +---------------------------------------------------------------+
//! ```

use std::net::Ipv4Addr;

use super::{Error, checksum, read_u16, read_u32, write_u16, write_u32};

/// Length of an IPv4 header without options (IHL 5).
pub const HEADER_LEN: usize = 20;
/// Length of the longest IPv4 header (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers"; `IPPROTO_*`).
pub mod ip_proto {
    /// ICMP (`IPPROTO_ICMP`).
    pub const ICMP: u8 = 1;
    /// TCP (`IPPROTO_TCP`).
    pub const TCP: u8 = 6;
    /// UDP (`IPPROTO_UDP`).
    pub const UDP: u8 = 17;
}

/// Field offsets of the IPv4 header.
mod field {
    use crate::wire::field::Field;

    pub(super) const VER_IHL: usize = 0;
    pub(super) const DSCP_ECN: usize = 1;
    pub(super) const LENGTH: usize = 2;
    pub(super) const IDENT: usize = 4;
    pub(super) const FLG_OFF: usize = 6;
    pub(super) const TTL: usize = 8;
    pub(super) const PROTOCOL: usize = 9;
    pub(super) const CHECKSUM: usize = 10;
    pub(super) const SRC_ADDR: usize = 12;
    pub(super) const DST_ADDR: usize = 16;
    pub(super) const CHECKSUM_RANGE: Field = 10..12;
}

/// Reserved ("evil", RFC 3514) flag bit of the flags/fragment-offset word.
const FLAG_RESERVED: u16 = 0x8000;
/// Don't Fragment flag bit (`IP_DF`).
const FLAG_DF: u16 = 0x4000;
/// More Fragments flag bit (`IP_MF`).
const FLAG_MF: u16 = 0x2000;
/// Fragment offset mask, in 8-byte units (`IP_OFFSET`).
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A read/write view of an IPv4 packet.
///
/// After [`Ipv4Packet::new_checked`] every accessor is panic-free: the buffer holds at least
/// 20 bytes and `20 <= header_len() <= total_len() <= buffer length`. The buffer may be longer
/// than `total_len()` (link padding): [`Ipv4Packet::payload`] stops at `total_len()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checking it; accessors may panic unless the buffer passed
    /// [`Self::check_len`] (or `node::ip4_input::ip_rcv_core`) before.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    ///
    /// # Errors
    ///
    /// See [`Self::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the lengths every accessor relies on, in this order.
    ///
    /// It does not check the version nor the checksum: see [`Self::version`] and
    /// [`Self::verify_checksum`].
    ///
    /// # Errors
    ///
    /// - [`Error::Truncated`] if the buffer is shorter than 20 bytes;
    /// - [`Error::Malformed`] if the IHL is below 5 (a header shorter than 20 bytes);
    /// - [`Error::Truncated`] if the buffer is shorter than the header length;
    /// - [`Error::Malformed`] if the total length is shorter than the header length;
    /// - [`Error::Truncated`] if the buffer is shorter than the total length.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            Err(Error::Malformed)
        } else if len < header_len {
            Err(Error::Truncated)
        } else if usize::from(self.total_len()) < header_len {
            Err(Error::Malformed)
        } else if len < usize::from(self.total_len()) {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Returns the wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field (4 for IPv4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The IHL field: header length in 32-bit words.
    #[inline]
    pub fn ihl(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] & 0x0f
    }

    /// The header length in bytes (`ihl * 4`), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }

    /// The whole second byte: DSCP and ECN, the former TOS byte.
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Differentiated Services Code Point (RFC 2474).
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.tos() >> 2
    }

    /// Explicit Congestion Notification (RFC 3168).
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.tos() & 0x03
    }

    /// The total length field: header plus payload, in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The identification field.
    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// The flags and fragment offset word, raw.
    #[inline]
    fn flags_frag(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLG_OFF)
    }

    /// The reserved flag (must be zero, RFC 791).
    #[inline]
    pub fn reserved_flag(&self) -> bool {
        self.flags_frag() & FLAG_RESERVED != 0
    }

    /// The Don't Fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }

    /// The More Fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }

    /// The fragment offset, in bytes (the field counts 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag() & FRAG_OFFSET_MASK) << 3
    }

    /// A fragment: More Fragments set or a non-zero offset (Linux `ip_is_fragment`).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    /// The time-to-live field.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol field (see [`ip_proto`]).
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// The header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The source address, host order (`0xc000_0201` is 192.0.2.1): the fast-path accessor.
    #[inline]
    pub fn src_u32(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SRC_ADDR)
    }

    /// The destination address, host order: the fast-path accessor.
    #[inline]
    pub fn dst_u32(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::DST_ADDR)
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.src_u32())
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.dst_u32())
    }

    /// The whole header, options included.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// The options: the header bytes after the first 20 (empty for IHL 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The payload: from the end of the header to `total_len`, without link padding.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }

    /// The packet as the header says it is: `total_len` bytes, without link padding.
    #[inline]
    pub fn packet(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.total_len())]
    }

    /// Whether the header checksum is correct: the one's-complement sum of the header, checksum
    /// included, is `0xffff` (either representation of zero in the field is accepted, as Linux's
    /// `ip_fast_csum` does).
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.header()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version nibble.
    #[inline]
    pub fn set_version(&mut self, value: u8) {
        let d = self.buffer.as_mut();
        d[field::VER_IHL] = (d[field::VER_IHL] & 0x0f) | (value << 4);
    }

    /// Sets the header length in bytes (a multiple of 4, 20 to 60); stores `value / 4` in IHL.
    #[inline]
    pub fn set_header_len(&mut self, value: usize) {
        let d = self.buffer.as_mut();
        d[field::VER_IHL] = (d[field::VER_IHL] & 0xf0) | ((value / 4) as u8 & 0x0f);
    }

    /// Sets the whole DSCP/ECN byte.
    #[inline]
    pub fn set_tos(&mut self, value: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = value;
    }

    /// Sets the DSCP (6 bits).
    #[inline]
    pub fn set_dscp(&mut self, value: u8) {
        let d = self.buffer.as_mut();
        d[field::DSCP_ECN] = (d[field::DSCP_ECN] & 0x03) | (value << 2);
    }

    /// Sets the ECN (2 bits).
    #[inline]
    pub fn set_ecn(&mut self, value: u8) {
        let d = self.buffer.as_mut();
        d[field::DSCP_ECN] = (d[field::DSCP_ECN] & 0xfc) | (value & 0x03);
    }

    /// Sets the total length.
    #[inline]
    pub fn set_total_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }

    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, value);
    }

    #[inline]
    fn set_flag(&mut self, bit: u16, value: bool) {
        let raw = self.flags_frag();
        let raw = if value { raw | bit } else { raw & !bit };
        write_u16(self.buffer.as_mut(), field::FLG_OFF, raw);
    }

    /// Clears the three flag bits, keeping the fragment offset.
    #[inline]
    pub fn clear_flags(&mut self) {
        let raw = self.flags_frag() & FRAG_OFFSET_MASK;
        write_u16(self.buffer.as_mut(), field::FLG_OFF, raw);
    }

    /// Sets the Don't Fragment flag.
    #[inline]
    pub fn set_dont_frag(&mut self, value: bool) {
        self.set_flag(FLAG_DF, value);
    }

    /// Sets the More Fragments flag.
    #[inline]
    pub fn set_more_frags(&mut self, value: bool) {
        self.set_flag(FLAG_MF, value);
    }

    /// Sets the fragment offset, in bytes (a multiple of 8; stored as `value / 8`).
    #[inline]
    pub fn set_frag_offset(&mut self, value: u16) {
        let raw = (self.flags_frag() & !FRAG_OFFSET_MASK) | (value >> 3);
        write_u16(self.buffer.as_mut(), field::FLG_OFF, raw);
    }

    /// Sets the TTL (the checksum is not updated: see [`Self::decrease_ttl`]).
    #[inline]
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Sets the protocol.
    #[inline]
    pub fn set_protocol(&mut self, value: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = value;
    }

    /// Sets the header checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        write_u32(self.buffer.as_mut(), field::SRC_ADDR, value.to_bits());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        write_u32(self.buffer.as_mut(), field::DST_ADDR, value.to_bits());
    }

    /// Computes the header checksum (options included) and stores it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        let header_len = self.header_len();
        let d = self.buffer.as_mut();
        d[field::CHECKSUM_RANGE].fill(0);
        let c = checksum::checksum(&d[..header_len]);
        write_u16(d, field::CHECKSUM, c);
    }

    /// Decrements the TTL and updates the checksum incrementally, as Linux's `ip_decrease_ttl()`
    /// does (see [`checksum::ip_decrease_ttl`]); returns the new TTL.
    ///
    /// The caller checks `ttl() > 1` first (RFC 1812 §5.3.1): a TTL of 0 would wrap to 255 and the
    /// checksum would no longer match.
    #[inline]
    pub fn decrease_ttl(&mut self) -> u8 {
        let check = checksum::ip_decrease_ttl(self.checksum());
        self.set_checksum(check);
        let d = self.buffer.as_mut();
        d[field::TTL] = d[field::TTL].wrapping_sub(1);
        d[field::TTL]
    }

    /// The options, writable.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..header_len]
    }

    /// The payload (header end to `total_len`), writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

impl<'a> Ipv4Packet<&'a [u8]> {
    /// The payload (header end to `total_len`) with the lifetime of the underlying buffer, so it
    /// outlives the view.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &self.buffer[range]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Ipv4Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An IPv4 header without options, for packets xfwd originates (ICMP errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload (see [`ip_proto`]).
    pub protocol: u8,
    /// Payload length in bytes; the header adds 20.
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// DSCP/ECN byte. Linux sends ICMP errors with precedence "internetwork control", 0xc0
    /// (RFC 1812 §4.3.2.5).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
}

impl Ipv4Repr {
    /// Length of the emitted header: always [`HEADER_LEN`] (no options).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// The total length field `emit` writes: `20 + payload_len`.
    ///
    /// # Errors
    ///
    /// [`Error::Overflow`] if that exceeds 65535.
    pub fn total_len(&self) -> Result<u16, Error> {
        HEADER_LEN
            .checked_add(self.payload_len)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or(Error::Overflow)
    }

    /// Writes all 20 header bytes, checksum included, at the start of `packet`'s buffer.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer is shorter than 20 bytes; [`Error::Overflow`] if the
    /// payload is too long for the total length field. Nothing is written on error.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Ipv4Packet<T>,
    ) -> Result<(), Error> {
        let total_len = self.total_len()?;
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let d = packet.buffer.as_mut();
        d[field::VER_IHL] = 0x45;
        d[field::DSCP_ECN] = self.tos;
        write_u16(d, field::LENGTH, total_len);
        write_u16(d, field::IDENT, self.ident);
        write_u16(d, field::FLG_OFF, if self.dont_frag { FLAG_DF } else { 0 });
        d[field::TTL] = self.ttl;
        d[field::PROTOCOL] = self.protocol;
        write_u32(d, field::SRC_ADDR, self.src_addr.to_bits());
        write_u32(d, field::DST_ADDR, self.dst_addr.to_bits());
        packet.fill_checksum();
        Ok(())
    }
}

// Special addresses, as free functions on host-order `u32` so the fast path can call them on
// `Ipv4Packet::src_u32()` / `dst_u32()` without building an `Ipv4Addr`. Names follow Linux's
// `include/linux/in.h`.

/// 0.0.0.0/8, "this network" (RFC 1122 §3.2.1.3 (a)/(b); Linux `ipv4_is_zeronet`).
#[inline]
pub const fn is_zeronet(addr: u32) -> bool {
    addr & 0xff00_0000 == 0
}

/// 127.0.0.0/8, loopback (RFC 1122 §3.2.1.3 (g); Linux `ipv4_is_loopback`).
#[inline]
pub const fn is_loopback(addr: u32) -> bool {
    addr & 0xff00_0000 == 0x7f00_0000
}

/// 224.0.0.0/4, multicast, class D (RFC 1112; Linux `ipv4_is_multicast`).
#[inline]
pub const fn is_multicast(addr: u32) -> bool {
    addr & 0xf000_0000 == 0xe000_0000
}

/// 224.0.0.0/24, link-local multicast, never forwarded (RFC 5771; Linux
/// `ipv4_is_local_multicast`).
#[inline]
pub const fn is_local_multicast(addr: u32) -> bool {
    addr & 0xffff_ff00 == 0xe000_0000
}

/// 255.255.255.255, the limited broadcast (RFC 919, RFC 1812 §5.3.5.1; Linux `ipv4_is_lbcast`).
#[inline]
pub const fn is_lbcast(addr: u32) -> bool {
    addr == 0xffff_ffff
}

/// 240.0.0.0/4, class E, reserved (RFC 1112 §4, RFC 1812 §4.2.2.11), which includes the limited
/// broadcast.
#[inline]
pub const fn is_class_e(addr: u32) -> bool {
    addr & 0xf000_0000 == 0xf000_0000
}

/// 169.254.0.0/16, IPv4 link-local (RFC 3927; Linux `ipv4_is_linklocal_169`).
#[inline]
pub const fn is_link_local(addr: u32) -> bool {
    addr & 0xffff_0000 == 0xa9fe_0000
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testdata::{ECHO_REQUEST, ECHO_REQUEST_RR, PORT_UNREACHABLE, UDP_DATAGRAM};
    use proptest::prelude::*;

    fn ip(frame: &[u8]) -> &[u8] {
        &frame[14..]
    }

    #[test]
    fn golden_echo_request() {
        let p = Ipv4Packet::new_checked(ip(&ECHO_REQUEST)).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.ihl(), 5);
        assert_eq!(p.header_len(), 20);
        assert_eq!((p.dscp(), p.ecn(), p.tos()), (0, 0, 0));
        assert_eq!(p.total_len(), 84);
        assert_eq!(p.ident(), 0x4cb4);
        assert!(p.dont_frag() && !p.more_frags() && !p.reserved_flag() && !p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), ip_proto::ICMP);
        assert_eq!(p.checksum(), 0x69f1);
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!((p.src_u32(), p.dst_u32()), (0xc000_0201, 0xc000_0202));
        assert!(p.options().is_empty());
        assert_eq!(p.payload().len(), 64);
        assert_eq!(p.payload()[0], 8, "ICMP echo request");
    }

    #[test]
    fn golden_record_route_options() {
        let p = Ipv4Packet::new_checked(ip(&ECHO_REQUEST_RR)).unwrap();
        assert_eq!(p.header_len(), 60);
        assert_eq!(p.total_len(), 124);
        assert!(p.verify_checksum());
        let o = p.options();
        assert_eq!(o.len(), 40);
        assert_eq!(
            &o[..4],
            &[0x01, 0x07, 0x27, 0x08],
            "NOP, then RR of length 39, pointer 8"
        );
        assert_eq!(&o[4..8], &[192, 0, 2, 1]);
        assert_eq!(p.payload().len(), 64);
    }

    #[test]
    fn golden_icmp_error_tos_and_no_df() {
        let p = Ipv4Packet::new_checked(ip(&PORT_UNREACHABLE)).unwrap();
        assert_eq!(p.tos(), 0xc0);
        assert_eq!(p.dscp(), 0x30);
        assert!(!p.dont_frag());
        assert!(p.verify_checksum());
    }

    #[test]
    fn payload_excludes_link_padding() {
        let mut frame = UDP_DATAGRAM.to_vec();
        frame.resize(60, 0);
        let p = Ipv4Packet::new_checked(ip(&frame)).unwrap();
        assert_eq!(p.total_len(), 38);
        assert_eq!(p.payload().len(), 18);
        assert_eq!(p.packet().len(), 38);
        assert_eq!(&p.payload()[8..], b"hello xfwd");
    }

    #[test]
    fn check_len_errors() {
        let good = ip(&ECHO_REQUEST);
        assert_eq!(
            Ipv4Packet::new_checked(&good[..19]).unwrap_err(),
            Error::Truncated
        );
        let mut b = good.to_vec();
        b[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Error::Malformed,
            "IHL 4"
        );
        b[0] = 0x4f;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..40]).unwrap_err(),
            Error::Truncated,
            "IHL 15 > 40 bytes"
        );
        let mut b = good.to_vec();
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Error::Malformed,
            "total < header"
        );
        b[2..4].copy_from_slice(&85u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Error::Truncated,
            "total > buffer"
        );
        // Version is semantic, not structural.
        let mut b = good.to_vec();
        b[0] = 0x65;
        assert!(Ipv4Packet::new_checked(&b[..]).is_ok());
    }

    #[test]
    fn setters_and_fill_checksum() {
        let mut b = ip(&ECHO_REQUEST).to_vec();
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.set_ttl(1);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        p.set_dscp(46);
        p.set_ecn(3);
        assert_eq!(p.tos(), 0xbb);
        p.set_more_frags(true);
        p.set_frag_offset(1480);
        assert!(p.dont_frag() && p.more_frags() && p.is_fragment());
        assert_eq!(p.frag_offset(), 1480);
        p.clear_flags();
        assert!(!p.dont_frag() && !p.more_frags());
        assert_eq!(p.frag_offset(), 1480);
        p.set_dont_frag(true);
        p.set_dont_frag(false);
        assert!(!p.dont_frag());
        p.set_src_addr(Ipv4Addr::new(10, 0, 0, 1));
        p.set_dst_addr(Ipv4Addr::new(10, 0, 0, 2));
        p.set_ident(7);
        p.set_protocol(ip_proto::UDP);
        p.set_total_len(40);
        p.set_version(4);
        p.set_header_len(20);
        p.payload_mut()[0] = 0xee;
        p.fill_checksum();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(
            (p.src_u32(), p.dst_u32(), p.ident(), p.protocol()),
            (0x0a00_0001, 0x0a00_0002, 7, 17)
        );
        assert_eq!(p.payload().len(), 20);
        assert_eq!(p.payload()[0], 0xee);
    }

    #[test]
    fn decrease_ttl_keeps_checksum_valid() {
        let mut b = ip(&ECHO_REQUEST).to_vec();
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        for expect in (1..64).rev() {
            assert_eq!(p.decrease_ttl(), expect);
            assert!(p.verify_checksum(), "ttl {expect}");
        }
        // Record Route header too (the checksum covers options).
        let mut b = ip(&ECHO_REQUEST_RR).to_vec();
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.decrease_ttl(), 63);
        assert!(p.verify_checksum());
    }

    /// The -0/+0 case: a header whose checksum is 0xfeff before the decrement gets 0x0000, which
    /// is what a full recomputation gives.
    #[test]
    fn decrease_ttl_feff_edge_on_a_real_header() {
        // Search a real-looking header whose checksum is 0xfeff by varying the identification.
        let mut b = ip(&ECHO_REQUEST)[..20].to_vec();
        let mut found = false;
        for ident in 0..=u16::MAX {
            let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
            p.set_ident(ident);
            p.fill_checksum();
            if p.checksum() == 0xfeff {
                found = true;
                break;
            }
        }
        assert!(found);
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.decrease_ttl();
        assert_eq!(p.checksum(), 0x0000);
        let mut q = b.clone();
        Ipv4Packet::new_unchecked(&mut q[..]).fill_checksum();
        assert_eq!(q, b, "incremental == recomputed");
    }

    #[test]
    fn repr_emit_writes_every_byte() {
        // Rebuild the header of the captured ICMP error from a buffer of 0xa5.
        let repr = Ipv4Repr {
            src_addr: Ipv4Addr::new(192, 0, 2, 2),
            dst_addr: Ipv4Addr::new(192, 0, 2, 1),
            protocol: ip_proto::ICMP,
            payload_len: 46,
            ttl: 64,
            tos: 0xc0,
            ident: 0xdf9a,
            dont_frag: false,
        };
        let mut buf = [0xa5u8; 20];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]))
            .unwrap();
        assert_eq!(buf[..], PORT_UNREACHABLE[14..34]);
        assert_eq!(repr.buffer_len(), 20);
    }

    #[test]
    fn repr_emit_errors() {
        let mut repr = Ipv4Repr {
            src_addr: Ipv4Addr::LOCALHOST,
            dst_addr: Ipv4Addr::LOCALHOST,
            protocol: 1,
            payload_len: 65515,
            ttl: 64,
            tos: 0,
            ident: 0,
            dont_frag: true,
        };
        let mut buf = [0xa5u8; 20];
        assert_eq!(repr.total_len(), Ok(65535));
        assert_eq!(
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..19])),
            Err(Error::Truncated)
        );
        repr.payload_len = 65516;
        assert_eq!(
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..])),
            Err(Error::Overflow)
        );
        repr.payload_len = usize::MAX;
        assert_eq!(repr.total_len(), Err(Error::Overflow));
        assert_eq!(buf, [0xa5; 20], "nothing written on error");
    }

    #[test]
    fn address_classes() {
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap().to_bits();
        assert!(
            is_zeronet(a("0.0.0.0")) && is_zeronet(a("0.255.255.255")) && !is_zeronet(a("1.0.0.0"))
        );
        assert!(
            is_loopback(a("127.0.0.1"))
                && is_loopback(a("127.255.0.9"))
                && !is_loopback(a("128.0.0.1"))
        );
        assert!(is_multicast(a("224.0.0.1")) && is_multicast(a("239.255.255.255")));
        assert!(!is_multicast(a("223.255.255.255")) && !is_multicast(a("240.0.0.0")));
        assert!(is_local_multicast(a("224.0.0.251")) && !is_local_multicast(a("224.0.1.1")));
        assert!(is_lbcast(a("255.255.255.255")) && !is_lbcast(a("255.255.255.254")));
        assert!(
            is_class_e(a("240.0.0.1"))
                && is_class_e(a("255.255.255.255"))
                && !is_class_e(a("239.0.0.1"))
        );
        assert!(is_link_local(a("169.254.1.1")) && !is_link_local(a("169.253.1.1")));
        // Agree with the standard library where it has the same class.
        for s in [
            "0.1.2.3",
            "127.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "169.254.9.9",
            "8.8.8.8",
        ] {
            let ip: Ipv4Addr = s.parse().unwrap();
            assert_eq!(is_loopback(ip.to_bits()), ip.is_loopback(), "{s}");
            assert_eq!(is_multicast(ip.to_bits()), ip.is_multicast(), "{s}");
            assert_eq!(is_lbcast(ip.to_bits()), ip.is_broadcast(), "{s}");
            assert_eq!(is_link_local(ip.to_bits()), ip.is_link_local(), "{s}");
        }
    }

    /// A valid packet built by etherparse: (header, payload, trailing padding).
    fn etherparse_packet() -> impl Strategy<Value = (etherparse::Ipv4Header, Vec<u8>, usize)> {
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
            any::<bool>(),
            any::<bool>(),
            (0u16..8192, 0u8..64, 0u8..4),
            (0usize..=10).prop_flat_map(|words| proptest::collection::vec(any::<u8>(), words * 4)),
            proptest::collection::vec(any::<u8>(), 0..100),
            0usize..20,
        )
            .prop_map(
                |(src, dst, ttl, proto, ident, df, mf, (off, dscp, ecn), opts, payload, pad)| {
                    let mut h = etherparse::Ipv4Header::new(
                        payload.len() as u16,
                        ttl,
                        proto.into(),
                        src,
                        dst,
                    )
                    .unwrap();
                    h.identification = ident;
                    h.dont_fragment = df;
                    h.more_fragments = mf;
                    h.fragment_offset = etherparse::IpFragOffset::try_new(off).unwrap();
                    h.dscp = etherparse::IpDscp::try_new(dscp).unwrap();
                    h.ecn = etherparse::IpEcn::try_new(ecn).unwrap();
                    h.options = etherparse::Ipv4Options::try_from(&opts[..]).unwrap();
                    h.total_len = (h.header_len() + payload.len()) as u16;
                    h.header_checksum = h.calc_header_checksum();
                    (h, payload, pad)
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// For valid packets built by etherparse, our view reads the same fields.
        #[test]
        fn reads_what_etherparse_wrote((h, payload, pad) in etherparse_packet()) {
            let mut bytes = h.to_bytes().to_vec();
            bytes.extend_from_slice(&payload);
            bytes.extend(std::iter::repeat_n(0u8, pad));
            let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(p.version(), 4);
            prop_assert_eq!(p.header_len(), h.header_len());
            prop_assert_eq!(p.dscp(), h.dscp.value());
            prop_assert_eq!(p.ecn(), h.ecn.value());
            prop_assert_eq!(p.total_len(), h.total_len);
            prop_assert_eq!(p.ident(), h.identification);
            prop_assert_eq!(p.dont_frag(), h.dont_fragment);
            prop_assert_eq!(p.more_frags(), h.more_fragments);
            prop_assert_eq!(p.frag_offset(), h.fragment_offset.value() * 8);
            prop_assert_eq!(p.ttl(), h.time_to_live);
            prop_assert_eq!(p.protocol(), h.protocol.0);
            prop_assert_eq!(p.checksum(), h.header_checksum);
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(p.src_addr().octets(), h.source);
            prop_assert_eq!(p.dst_addr().octets(), h.destination);
            prop_assert_eq!(p.options(), h.options.as_slice());
            prop_assert_eq!(p.payload(), &payload[..]);
        }

        /// What we write, etherparse reads back.
        #[test]
        fn etherparse_reads_what_we_emit(
            src in any::<u32>(), dst in any::<u32>(), protocol in any::<u8>(), payload_len in 0usize..2000,
            ttl in any::<u8>(), tos in any::<u8>(), ident in any::<u16>(), dont_frag in any::<bool>(),
        ) {
            let repr = Ipv4Repr {
                src_addr: Ipv4Addr::from_bits(src), dst_addr: Ipv4Addr::from_bits(dst), protocol,
                payload_len, ttl, tos, ident, dont_frag,
            };
            let mut buf = vec![0xa5u8; 20];
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..])).unwrap();
            let (h, _) = etherparse::Ipv4Header::from_slice(&buf).unwrap();
            prop_assert_eq!(h.source, src.to_be_bytes());
            prop_assert_eq!(h.destination, dst.to_be_bytes());
            prop_assert_eq!(h.protocol.0, protocol);
            prop_assert_eq!(usize::from(h.total_len), payload_len + 20);
            prop_assert_eq!(h.time_to_live, ttl);
            prop_assert_eq!((h.dscp.value() << 2) | h.ecn.value(), tos);
            prop_assert_eq!(h.identification, ident);
            prop_assert_eq!(h.dont_fragment, dont_frag);
            prop_assert!(!h.more_fragments);
            prop_assert_eq!(h.header_checksum, h.calc_header_checksum());
        }

        /// For arbitrary bytes `new_checked` never panics, every accessor of an accepted view is
        /// panic-free, and acceptance agrees with etherparse's `Ipv4Slice` where the semantics
        /// match (it also rejects version != 4, which we leave to the caller, and parses an
        /// authentication header after the IPv4 header, which we do not).
        #[test]
        fn random_bytes_agree_with_etherparse(mut data in proptest::collection::vec(any::<u8>(), 0..120), v4 in any::<bool>()) {
            if v4 && !data.is_empty() {
                data[0] = 0x40 | (data[0] & 0x0f);
            }
            let ours = Ipv4Packet::new_checked(&data[..]);
            if let Ok(p) = &ours {
                let _ = (p.version(), p.tos(), p.ident(), p.flags_frag(), p.ttl(), p.protocol(), p.checksum());
                let _ = (p.src_addr(), p.dst_addr(), p.header(), p.options(), p.payload(), p.packet());
                let _ = p.verify_checksum();
            }
            if data.len() >= 20 && data[0] >> 4 == 4 && data[9] != 51 {
                let theirs = etherparse::Ipv4Slice::from_slice(&data);
                prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "ours {:?} theirs {:?}", ours.map(|_| ()), theirs.map(|_| ()));
                if let (Ok(o), Ok(t)) = (ours, theirs) {
                    prop_assert_eq!(o.header(), t.header().slice());
                    prop_assert_eq!(o.payload(), t.payload().payload);
                }
            }
        }

        /// Mutating accessors are panic-free on any checked buffer, too.
        #[test]
        fn setters_never_panic_after_check(mut data in proptest::collection::vec(any::<u8>(), 20..100)) {
            let ihl = (data[0] & 0x0f).max(5);
            data[0] = 0x40 | ihl;
            let hl = usize::from(ihl) * 4;
            let len = data.len();
            if hl <= len {
                let total = (hl + usize::from(data[3]) % (len - hl + 1)) as u16;
                data[2..4].copy_from_slice(&total.to_be_bytes());
            }
            if let Ok(mut p) = Ipv4Packet::new_checked(&mut data[..]) {
                p.fill_checksum();
                prop_assert!(p.verify_checksum());
                if p.ttl() > 0 {
                    p.decrease_ttl();
                    prop_assert!(p.verify_checksum());
                }
                let _ = (p.options_mut().len(), p.payload_mut().len());
            }
        }
    }
}

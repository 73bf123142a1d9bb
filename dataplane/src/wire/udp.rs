//! UDP datagrams (RFC 768) over IPv4: a minimal view for tests and the traffic generator. The
//! forwarding path never looks past the IP header.
//!
//! ```text
//! +-----------------+-----------------+-----------------+-----------------+
//! |   source port   |    dest port    |     length      |    checksum     |
//! +-----------------+-----------------+-----------------+-----------------+
//! ```

use std::net::Ipv4Addr;

use super::ipv4::ip_proto;
use super::{Error, checksum, read_u16, write_u16};

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// Field offsets of the UDP header.
mod field {
    pub(super) const SRC_PORT: usize = 0;
    pub(super) const DST_PORT: usize = 2;
    pub(super) const LENGTH: usize = 4;
    pub(super) const CHECKSUM: usize = 6;
    pub(super) const PAYLOAD: usize = 8;
}

/// A read/write view of a UDP datagram.
///
/// After [`UdpPacket::new_checked`] every accessor is panic-free:
/// `8 <= len() <= buffer length`. Bytes past `len()` are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buffer` without checking it; accessors may panic unless it passed
    /// [`Self::check_len`].
    #[inline]
    pub const fn new_unchecked(buffer: T) -> UdpPacket<T> {
        UdpPacket { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    ///
    /// # Errors
    ///
    /// See [`Self::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<UdpPacket<T>, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the lengths the accessors rely on.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer is shorter than 8 bytes or than the length field;
    /// [`Error::Malformed`] if the length field is below 8.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            Err(Error::Truncated)
        } else if usize::from(self.len()) < HEADER_LEN {
            Err(Error::Malformed)
        } else if len < usize::from(self.len()) {
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

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field: header plus payload.
    #[inline]
    #[expect(
        clippy::len_without_is_empty,
        reason = "a datagram is never empty: len() >= 8"
    )]
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Checksum field (0: the sender computed none).
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The payload, up to the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..usize::from(self.len())]
    }

    /// Whether the checksum is correct for a datagram between `src` and `dst`; a zero field
    /// means "no checksum" over IPv4 and is accepted (RFC 768).
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let len = self.len();
        let pseudo = checksum::pseudo_header_sum(src.to_bits(), dst.to_bits(), ip_proto::UDP, len);
        let data = checksum::sum(&self.buffer.as_ref()[..usize::from(len)]);
        checksum::add(pseudo, data) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, value);
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, value);
    }

    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// The payload, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[field::PAYLOAD..end]
    }

    /// Computes the checksum with the IPv4 pseudo-header and stores it; a computed 0 is sent
    /// as `0xffff` (RFC 768: zero means "no checksum").
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let len = self.len();
        let pseudo = checksum::pseudo_header_sum(src.to_bits(), dst.to_bits(), ip_proto::UDP, len);
        let data = checksum::sum(&self.buffer.as_ref()[..usize::from(len)]);
        let c = !checksum::add(pseudo, data);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for UdpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::Ipv4Packet;
    use crate::wire::testdata::UDP_DATAGRAM;
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    fn udp(frame: &[u8]) -> &[u8] {
        Ipv4Packet::new_checked(&frame[14..])
            .unwrap()
            .into_payload()
    }

    /// The capture comes from a veth with TX checksum offload: Linux sent the datagram
    /// `CHECKSUM_PARTIAL`, so the field holds the pseudo-header sum (not inverted) that the
    /// "hardware" was to complete, and the datagram does not verify as captured.
    #[test]
    fn golden_datagram_has_partial_checksum() {
        let p = UdpPacket::new_checked(udp(&UDP_DATAGRAM)).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (57324, 33434, 18));
        assert_eq!(p.payload(), b"hello xfwd");
        assert_eq!(p.checksum(), 0x8427);
        assert_eq!(
            p.checksum(),
            checksum::pseudo_header_sum(SRC.to_bits(), DST.to_bits(), ip_proto::UDP, 18)
        );
        assert!(!p.verify_checksum(SRC, DST));
    }

    #[test]
    fn fill_checksum_completes_the_partial_one() {
        let mut b = udp(&UDP_DATAGRAM).to_vec();
        let mut p = UdpPacket::new_checked(&mut b[..]).unwrap();
        p.fill_checksum(SRC, DST);
        // What the offload would have written: !(pseudo-header sum + sum of the datagram with the
        // field zeroed), checked against etherparse.
        let (h, payload) = etherparse::UdpHeader::from_slice(udp(&UDP_DATAGRAM)).unwrap();
        let expect = h
            .calc_checksum_ipv4_raw(SRC.octets(), DST.octets(), &payload[..10])
            .unwrap();
        assert_eq!(p.checksum(), expect);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(SRC, Ipv4Addr::new(192, 0, 2, 3)));
    }

    #[test]
    fn zero_checksum_means_none() {
        let mut b = udp(&UDP_DATAGRAM).to_vec();
        let mut p = UdpPacket::new_checked(&mut b[..]).unwrap();
        p.set_checksum(0);
        assert!(p.verify_checksum(SRC, Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn check_len_errors() {
        let b = udp(&UDP_DATAGRAM);
        assert_eq!(UdpPacket::new_checked(&b[..7]), Err(Error::Truncated));
        assert_eq!(UdpPacket::new_checked(&b[..17]), Err(Error::Truncated));
        let mut m = b.to_vec();
        m[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(UdpPacket::new_checked(&m[..]), Err(Error::Malformed));
    }

    #[test]
    fn setters_round_trip() {
        let mut b = [0xa5u8; 12];
        let mut p = UdpPacket::new_unchecked(&mut b[..]);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_len(12);
        p.payload_mut().copy_from_slice(b"abcd");
        p.fill_checksum(SRC, DST);
        assert!(
            UdpPacket::new_checked(&b[..])
                .unwrap()
                .verify_checksum(SRC, DST)
        );
        assert_eq!(&b[..6], &[0, 1, 0, 2, 0, 12]);
    }

    proptest! {
        /// etherparse agrees on fields and on the checksum we fill.
        #[test]
        fn agrees_with_etherparse(
            sp in any::<u16>(), dp in any::<u16>(), payload in proptest::collection::vec(any::<u8>(), 0..200),
            src in any::<u32>(), dst in any::<u32>(),
        ) {
            let (src, dst) = (Ipv4Addr::from_bits(src), Ipv4Addr::from_bits(dst));
            let mut b = vec![0u8; 8 + payload.len()];
            let mut p = UdpPacket::new_unchecked(&mut b[..]);
            p.set_src_port(sp);
            p.set_dst_port(dp);
            p.set_len((8 + payload.len()) as u16);
            p.payload_mut().copy_from_slice(&payload);
            p.fill_checksum(src, dst);
            let s = etherparse::UdpSlice::from_slice(&b).unwrap();
            let h = s.to_header();
            prop_assert_eq!((h.source_port, h.destination_port, usize::from(h.length)), (sp, dp, b.len()));
            let expect = h.calc_checksum_ipv4_raw(src.octets(), dst.octets(), s.payload()).unwrap();
            prop_assert_eq!(h.checksum, expect);
            prop_assert!(UdpPacket::new_checked(&b[..]).unwrap().verify_checksum(src, dst));
        }

        /// Random bytes: never panics, and acceptance agrees with etherparse except for a zero
        /// length field, which etherparse reads as "use the buffer length" (RFC 2675 jumbograms,
        /// IPv6 only) and we reject as malformed.
        #[test]
        fn random_bytes(mut data in proptest::collection::vec(any::<u8>(), 0..40), fit in any::<bool>()) {
            if fit && data.len() >= 8 {
                let len = 8 + usize::from(data[5]) % (data.len() - 7);
                data[4..6].copy_from_slice(&(len as u16).to_be_bytes());
            }
            let ours = UdpPacket::new_checked(&data[..]);
            if let Ok(p) = ours {
                let _ = (p.src_port(), p.dst_port(), p.payload(), p.verify_checksum(SRC, DST));
            }
            if data.len() < 8 || data[4..6] != [0, 0] {
                let theirs = etherparse::UdpSlice::from_slice(&data);
                prop_assert_eq!(ours.is_ok(), theirs.is_ok());
                if let (Ok(o), Ok(t)) = (ours, theirs) {
                    prop_assert_eq!(o.payload(), t.payload());
                }
            }
        }
    }
}

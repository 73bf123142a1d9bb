//! Ethernet II frames (IEEE 802.3 clause 3.2, DIX framing) and MAC addresses, as Linux's
//! `include/uapi/linux/if_ether.h` (`struct ethhdr`, `ETH_P_*`) and
//! `include/linux/etherdevice.h` (`is_multicast_ether_addr` and friends) describe them.
//!
//! ```text
//!  0                   6                  12       14
//!  +-------------------+-------------------+--------+---------
//!  | destination MAC   | source MAC        | type   | payload
//!  +-------------------+-------------------+--------+---------
//! ```
//!
//! The frame check sequence is not part of the buffers xfwd sees (AF_XDP frames, like Linux
//! skbs, arrive without it).

use core::fmt;
use core::str::FromStr;

use super::{Error, read_u16, write_u16};

/// Length of an Ethernet II header: two MAC addresses and the EtherType (`ETH_HLEN`).
pub const HEADER_LEN: usize = 14;

/// EtherType values (`ETH_P_*` in `include/uapi/linux/if_ether.h`), host order.
pub mod ethertype {
    /// IPv4 (`ETH_P_IP`).
    pub const IPV4: u16 = 0x0800;
    /// ARP (`ETH_P_ARP`).
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q VLAN tag (`ETH_P_8021Q`).
    pub const VLAN: u16 = 0x8100;
    /// IPv6 (`ETH_P_IPV6`).
    pub const IPV6: u16 = 0x86dd;
    /// IEEE 802.1ad service VLAN tag, "QinQ" (`ETH_P_8021AD`).
    pub const QINQ: u16 = 0x88a8;
    /// Smallest value that is an EtherType rather than an 802.3 length (`ETH_P_802_3_MIN`).
    pub const ETH_P_802_3_MIN: u16 = 0x0600;
    /// Pseudo-type Linux gives raw 802.3 frames, Novell's IPX-over-802.3 (`ETH_P_802_3`).
    pub const ETH_P_802_3: u16 = 0x0001;
    /// Pseudo-type Linux gives 802.2 LLC frames (`ETH_P_802_2`).
    pub const ETH_P_802_2: u16 = 0x0004;
}

/// Field offsets of the Ethernet II header.
mod field {
    use crate::wire::field::Field;

    pub(super) const DESTINATION: Field = 0..6;
    pub(super) const SOURCE: Field = 6..12;
    pub(super) const ETHERTYPE: usize = 12;
    pub(super) const PAYLOAD: usize = 14;
}

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// The address as six bytes, in transmission order.
    #[inline]
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// All ones: the broadcast address (`is_broadcast_ether_addr`).
    #[inline]
    pub const fn is_broadcast(&self) -> bool {
        u64::from_be_bytes([
            0, 0, self.0[0], self.0[1], self.0[2], self.0[3], self.0[4], self.0[5],
        ]) == 0xffff_ffff_ffff
    }

    /// The I/G bit (least significant bit of the first octet) is set: a group address, which
    /// includes broadcast (`is_multicast_ether_addr`).
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// An individual address: neither multicast nor broadcast (`is_unicast_ether_addr`).
    #[inline]
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// The U/L bit is set: a locally administered address (`is_local_ether_addr`).
    #[inline]
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// All zeros (`is_zero_ether_addr`).
    #[inline]
    pub const fn is_zero(&self) -> bool {
        u64::from_be_bytes([
            0, 0, self.0[0], self.0[1], self.0[2], self.0[3], self.0[4], self.0[5],
        ]) == 0
    }
}

impl From<[u8; 6]> for EthernetAddress {
    fn from(bytes: [u8; 6]) -> Self {
        EthernetAddress(bytes)
    }
}

impl fmt::Display for EthernetAddress {
    /// Lower-case hex octets separated by colons, as `ip link` prints them: `36:e7:a9:47:ec:45`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// Why a string is not a MAC address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {input:?}: expected six hex octets separated by ':' or '-'")]
pub struct ParseEthernetAddressError {
    input: String,
}

impl FromStr for EthernetAddress {
    type Err = ParseEthernetAddressError;

    /// Parses six octets of one or two hex digits each, separated by `:` (as `ip link` prints
    /// them) or all by `-`: `36:e7:a9:47:ec:45`, `36-E7-A9-47-EC-45`, `0:1:2:3:4:5`.
    ///
    /// # Errors
    ///
    /// [`ParseEthernetAddressError`] when the string is not exactly that.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseEthernetAddressError {
            input: s.to_owned(),
        };
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for octet in &mut out {
            let part = parts.next().ok_or_else(err)?;
            if part.is_empty() || part.len() > 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(err());
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(EthernetAddress(out))
    }
}

/// A read/write view of an Ethernet II frame.
///
/// After [`EthernetFrame::new_checked`] every accessor is panic-free (the buffer holds at least
/// [`HEADER_LEN`] bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` without checking its length; accessors panic if it is shorter than
    /// [`HEADER_LEN`]. Use after the length was checked once, or use [`Self::new_checked`].
    #[inline]
    pub const fn new_unchecked(buffer: T) -> EthernetFrame<T> {
        EthernetFrame { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if `buffer` is shorter than [`HEADER_LEN`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<EthernetFrame<T>, Error> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that every accessor can read its field.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer is shorter than [`HEADER_LEN`].
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
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

    /// Length of the header: always [`HEADER_LEN`] (VLAN tags are part of the payload).
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The destination MAC address.
    #[inline]
    pub fn dst_addr(&self) -> EthernetAddress {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        EthernetAddress(a)
    }

    /// The source MAC address.
    #[inline]
    pub fn src_addr(&self) -> EthernetAddress {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        EthernetAddress(a)
    }

    /// The EtherType field as it is on the wire (an 802.3 length if below
    /// [`ethertype::ETH_P_802_3_MIN`]).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// The bytes after the header, including any link padding.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC address.
    #[inline]
    pub fn set_dst_addr(&mut self, value: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&value.0);
    }

    /// Sets the source MAC address.
    #[inline]
    pub fn set_src_addr(&mut self, value: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&value.0);
    }

    /// Sets the EtherType field.
    #[inline]
    pub fn set_ethertype(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, value);
    }

    /// The bytes after the header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

impl<'a> EthernetFrame<&'a [u8]> {
    /// The payload with the lifetime of the underlying buffer, so it outlives the view.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        &self.buffer[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for EthernetFrame<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An Ethernet II header to emit: the precomputed L2 header of a next hop (Linux `hh_cache`,
/// VPP `rewrite_header`), or the header of a frame xfwd originates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Source MAC: the egress interface's address.
    pub src_addr: EthernetAddress,
    /// Destination MAC: the next hop's address.
    pub dst_addr: EthernetAddress,
    /// EtherType of the payload.
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Parses the header of a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> EthernetRepr {
        EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
        }
    }

    /// Length of the emitted header: [`HEADER_LEN`].
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// The 14 header bytes, ready to be copied in front of a payload.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        self.emit(&mut EthernetFrame::new_unchecked(&mut b[..]));
        b
    }

    /// Writes all [`HEADER_LEN`] header bytes into `frame`.
    ///
    /// # Panics
    ///
    /// If `frame` was made with [`EthernetFrame::new_unchecked`] over fewer than [`HEADER_LEN`]
    /// bytes (a caller bug; [`EthernetFrame::new_checked`] rules it out).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        frame.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testdata::{ECHO_REQUEST, IPV6_NS, MAC_HOST1, MAC_HOST2};
    use proptest::prelude::*;

    #[test]
    fn golden_ipv4_frame() {
        let f = EthernetFrame::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(f.dst_addr(), EthernetAddress(MAC_HOST2));
        assert_eq!(f.src_addr(), EthernetAddress(MAC_HOST1));
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.payload().len(), ECHO_REQUEST.len() - HEADER_LEN);
        assert_eq!(f.payload()[0], 0x45);
    }

    #[test]
    fn golden_ipv6_multicast_frame() {
        let f = EthernetFrame::new_checked(&IPV6_NS[..]).unwrap();
        assert_eq!(f.ethertype(), ethertype::IPV6);
        let dst = f.dst_addr();
        assert!(dst.is_multicast() && !dst.is_broadcast() && !dst.is_unicast());
        assert_eq!(dst.to_string(), "33:33:ff:47:ec:45");
    }

    #[test]
    fn short_buffers_are_rejected() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                EthernetFrame::new_checked(&ECHO_REQUEST[..len]),
                Err(Error::Truncated),
                "len {len}"
            );
        }
        let f = EthernetFrame::new_checked(&ECHO_REQUEST[..HEADER_LEN]).unwrap();
        assert!(f.payload().is_empty());
    }

    #[test]
    fn address_classes() {
        assert!(EthernetAddress::BROADCAST.is_broadcast());
        assert!(EthernetAddress::BROADCAST.is_multicast());
        assert!(!EthernetAddress::BROADCAST.is_unicast());
        let ucast = EthernetAddress(MAC_HOST1);
        assert!(ucast.is_unicast() && !ucast.is_multicast() && !ucast.is_broadcast());
        assert!(
            ucast.is_local(),
            "36:.. has the U/L bit set (veth random MAC)"
        );
        assert!(EthernetAddress([1, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(EthernetAddress([0; 6]).is_zero());
        assert!(!EthernetAddress([0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]).is_broadcast());
    }

    #[test]
    fn display_and_parse() {
        let a = EthernetAddress(MAC_HOST1);
        assert_eq!(a.to_string(), "36:e7:a9:47:ec:45");
        assert_eq!("36:e7:a9:47:ec:45".parse::<EthernetAddress>(), Ok(a));
        assert_eq!("36-E7-A9-47-EC-45".parse::<EthernetAddress>(), Ok(a));
        assert_eq!(
            "0:1:2:3:4:5".parse::<EthernetAddress>(),
            Ok(EthernetAddress([0, 1, 2, 3, 4, 5]))
        );
        for bad in [
            "",
            "36:e7:a9:47:ec",
            "36:e7:a9:47:ec:45:00",
            "36:e7:a9:47:ec:",
            "36:e7:a9:47:ec:456",
            "36:e7:a9:47:ec:4g",
            "36-e7:a9:47:ec:45",
            "+3:e7:a9:47:ec:45",
            " 36:e7:a9:47:ec:45",
        ] {
            let e = bad.parse::<EthernetAddress>().unwrap_err();
            assert!(
                e.to_string().contains("invalid MAC address"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn emit_writes_every_byte() {
        let repr = EthernetRepr {
            src_addr: EthernetAddress(MAC_HOST1),
            dst_addr: EthernetAddress(MAC_HOST2),
            ethertype: ethertype::IPV4,
        };
        let mut buf = [0xa5u8; HEADER_LEN];
        repr.emit(&mut EthernetFrame::new_checked(&mut buf[..]).unwrap());
        assert_eq!(buf[..], ECHO_REQUEST[..HEADER_LEN]);
        assert_eq!(repr.to_bytes()[..], ECHO_REQUEST[..HEADER_LEN]);
        assert_eq!(
            EthernetRepr::parse(&EthernetFrame::new_checked(&buf[..]).unwrap()),
            repr
        );
    }

    #[test]
    fn setters_round_trip() {
        let mut buf = ECHO_REQUEST;
        let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        f.set_dst_addr(EthernetAddress::BROADCAST);
        f.set_src_addr(EthernetAddress([2, 0, 0, 0, 0, 1]));
        f.set_ethertype(ethertype::ARP);
        f.payload_mut()[0] = 0x46;
        assert_eq!(
            buf[..14],
            [
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06
            ]
        );
        assert_eq!(buf[14], 0x46);
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(bytes in any::<[u8; 6]>()) {
            let a = EthernetAddress(bytes);
            prop_assert_eq!(a.to_string().parse::<EthernetAddress>(), Ok(a));
        }

        #[test]
        fn parse_never_panics(s in "[0-9a-fA-F:\\-]{0,20}") {
            let _ = s.parse::<EthernetAddress>();
        }

        /// etherparse as oracle: same acceptance and the same fields on random bytes.
        #[test]
        fn agrees_with_etherparse(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let ours = EthernetFrame::new_checked(&data[..]);
            let theirs = etherparse::Ethernet2Slice::from_slice_without_fcs(&data);
            prop_assert_eq!(ours.is_ok(), theirs.is_ok());
            if let (Ok(o), Ok(t)) = (ours, theirs) {
                prop_assert_eq!(o.dst_addr().0, t.destination());
                prop_assert_eq!(o.src_addr().0, t.source());
                prop_assert_eq!(o.ethertype(), t.ether_type().0);
                prop_assert_eq!(o.payload(), t.payload_slice());
            }
        }
    }
}

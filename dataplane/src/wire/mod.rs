//! Typed zero-copy views over packet bytes, in the style of smoltcp's `src/wire/`. No I/O, no
//! `unsafe`, no allocation.
//!
//! Each protocol has a view `XxxPacket<T: AsRef<[u8]>>` (or `EthernetFrame<T>`) that wraps a byte
//! buffer and reads or writes header fields in place:
//!
//! - getters need `T: AsRef<[u8]>`, setters need `T: AsMut<[u8]>`;
//! - field offsets live in a private `mod field` per protocol, so no magic numbers leak out;
//! - builders (`XxxRepr` + `emit`) exist only for headers xfwd originates (ICMP errors, the
//!   prebuilt L2 header of a next hop); the forwarding path never parses into a struct and
//!   re-emits, it rewrites TTL, checksum and the L2 header in place.
//!
//! # The length contract
//!
//! Lengths are checked **once, at the edge**: `new_checked` (or `check_len` on a view made with
//! `new_unchecked`) verifies every length field the accessors rely on. After a successful
//! `new_checked`, no accessor of that view panics, whatever the bytes say. A view made with
//! `new_unchecked` over a buffer that was never checked may panic on access: that is a bug in
//! the caller, never a reaction to packet contents. In the pipeline, `node::ip4_input` is that
//! edge for IPv4: it validates a frame once (RFC 1812 §5.2.2) and later stages build views
//! with `new_unchecked`.
//!
//! `new_checked` checks *structure* (that lengths are consistent and inside the buffer), not
//! *semantics*: a wrong IP version or checksum is for the caller to judge (`version()`,
//! `verify_checksum()`), because different callers drop such packets for different, named
//! reasons.
//!
//! # Numbers
//!
//! Multi-byte fields are returned as host integers decoded from network byte order; IPv4
//! addresses are available both as [`std::net::Ipv4Addr`] and, for the fast path, as a `u32` in
//! host order (`0xc000_0201` is 192.0.2.1). Checksums are the 16-bit value as read big-endian
//! from the wire.

pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod ipv4;
pub mod udp;

#[cfg(test)]
pub(crate) mod testdata;

pub use ethernet::{EthernetAddress, EthernetFrame, EthernetRepr, ethertype};
pub use icmpv4::Icmpv4Packet;
pub use ipv4::{Ipv4Packet, Ipv4Repr, ip_proto};
pub use udp::UdpPacket;

/// Why a buffer cannot be viewed as a given header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the header, or than a length field inside the header says.
    #[error("buffer truncated: shorter than the header or its length field")]
    Truncated,
    /// A length field contradicts the header it belongs to (for example an IPv4 IHL below 5,
    /// or a total length shorter than the header).
    #[error("malformed header: a length field is inconsistent")]
    Malformed,
    /// A value does not fit the field it must be written to (for example a payload too long
    /// for IPv4's 16-bit total length).
    #[error("value does not fit its header field")]
    Overflow,
}

/// Byte ranges of header fields, shared by the per-protocol `mod field`.
mod field {
    /// A fixed-size field: `start..end`.
    pub(crate) type Field = core::ops::Range<usize>;
}

/// Reads the big-endian `u16` at `data[at..at + 2]`.
#[inline(always)]
fn read_u16(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

/// Reads the big-endian `u32` at `data[at..at + 4]`.
#[inline(always)]
fn read_u32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// Writes `value` big-endian at `data[at..at + 2]`.
#[inline(always)]
fn write_u16(data: &mut [u8], at: usize, value: u16) {
    data[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

/// Writes `value` big-endian at `data[at..at + 4]`.
#[inline(always)]
fn write_u32(data: &mut [u8], at: usize, value: u32) {
    data[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

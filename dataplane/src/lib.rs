//! xfwd: an AF_XDP kernel-bypass IPv4 forwarding dataplane.
//!
//! The Linux kernel stays the control plane: xfwd mirrors its links, addresses, routes and
//! neighbours over netlink, an XDP program steers transit IPv4 frames into AF_XDP sockets, and one
//! pinned worker per core forwards them batch by batch along the Linux receive/forward path.
//! See `docs/architecture.md` for the whole picture.
//!
//! Module map, in the order a packet meets them:

#![deny(unsafe_code)]

/// The kernel mirror over netlink, the control socket and the runtime that ties them together.
pub mod control;
/// Every reason a packet is dropped, with a counter each.
pub mod drop;
/// Routing: the control-plane RIB, the lookup structure and the adjacency table.
pub mod fib;
/// Neighbour resolution: the bounded queue of packets waiting for a next hop's MAC.
pub mod neigh;
/// Pipeline stages, named after the Linux path: `eth_input`, `ip4_input`, `ip4_lookup`,
/// `ip4_forward`, `ip4_rewrite`.
pub mod node;
/// Running as a service: configuration file, metrics, systemd notification, reload.
pub mod ops;
/// The capabilities xfwd needs, checked up front.
pub mod privileges;
/// Per-worker counters, written by one worker and summed on read.
pub mod stats;
/// Typed zero-copy views over Ethernet, IPv4 and ICMPv4, and the Internet checksum. No I/O.
pub mod wire;
/// The per-core run-to-completion loop.
pub mod worker;
/// AF_XDP: the `if_xdp.h` uAPI mirror, UMEM, ring cursors and sockets. All of the crate's `unsafe`
/// but `fib::dir16`'s address-space reservation.
pub mod xsk;

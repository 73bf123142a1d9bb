//! Pipeline stages, named after the Linux path a packet takes, and the batch pipeline that runs
//! them.
//!
//! ```text
//!  rx batch ─► eth_input ─► ip4_input ─► ip4_lookup ─► ip4_forward ─► ip4_rewrite ─► Outcome
//!             (eth_type_   (ip_rcv_core, (bulk LPM,   (TTL, MTU,     (prebuilt      Tx(port)
//!              trans)       RFC 1812)     next hop)    TTL-1, csum)   L2 header)    Resolve(nh)
//!                                                                                   Drop(reason)
//! ```
//!
//! [`ip4_forward_batch`] is what the workers run, and what the in-memory pipeline benchmark and
//! the tests run too: it sees packets only through [`PacketBatch`], so it does not know whether
//! they sit in a UMEM or in `Vec<u8>`s. Each stage is a pass over the whole batch (VPP-style), so
//! the bulk lookup sees every destination at once.

pub mod eth_input;
pub mod ip4_forward;
pub mod ip4_input;
pub mod ip4_lookup;
pub mod ip4_rewrite;

use crate::drop::DropReason;
use crate::fib::{Fib, NO_ROUTE, NextHopKey, PortId, Verdict};
use crate::wire::{EthernetAddress, Ipv4Packet};

/// Packets per batch: the most a worker takes from one RX ring per pass.
pub const BATCH: usize = 64;

/// A batch of received frames the pipeline can read and rewrite in place.
pub trait PacketBatch {
    /// Number of packets, at most [`BATCH`].
    fn len(&self) -> usize;

    /// Whether the batch is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of packet `i`, starting at its Ethernet header.
    fn packet_mut(&mut self, i: usize) -> &mut [u8];

    /// Shortens packet `i` to `len` bytes (drops link-layer padding).
    fn truncate(&mut self, i: usize, len: usize);
}

/// What happens to one packet of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Rewritten and ready to send on this port.
    Tx(PortId),
    /// Rewritten and ready to send on `key.port`, through a `STALE` neighbour entry: the kernel
    /// should be asked to confirm it (Linux `neigh_event_send` on its own output path).
    TxStale(NextHopKey),
    /// Forwardable, but the next hop's MAC is not known: TTL already decremented, the L2 header
    /// is written when the neighbour resolves.
    Resolve(NextHopKey),
    /// Not forwarded.
    Drop(DropReason),
}

/// Runs the IPv4 forwarding pipeline over a batch received on `ingress`, writing one
/// [`Outcome`] per packet into `out`.
///
/// # Panics
///
/// If the batch holds more than [`BATCH`] packets or `ingress` is not a port of `fib`.
pub fn ip4_forward_batch<B: PacketBatch + ?Sized>(
    fib: &Fib,
    ingress: PortId,
    batch: &mut B,
    out: &mut [Outcome; BATCH],
) {
    let n = batch.len();
    assert!(n <= BATCH, "batch of {n} exceeds BATCH");
    let dev_mac = EthernetAddress(fib.ports[usize::from(ingress)].mac);
    let mut dsts = [0u32; BATCH];
    let mut meta = [ip4_input::Ip4Meta::default(); BATCH];
    let mut l3 = [0usize; BATCH];

    // eth_input + ip4_input: classify and validate; keep each live packet's destination.
    for i in 0..n {
        let frame = batch.packet_mut(i);
        let checked = eth_input::eth_input(frame, &dev_mac).and_then(|eth| {
            let m = ip4_input::ip_rcv_core(&frame[eth.l3_offset..], eth.pkt_type)?;
            Ok((eth.l3_offset, m))
        });
        match checked {
            Ok((off, m)) => {
                batch.truncate(i, off + m.total_len);
                l3[i] = off;
                dsts[i] = m.dst;
                meta[i] = m;
                out[i] = Outcome::Tx(ingress); // provisional, decided below
            }
            Err(reason) => {
                // A dead slot's destination stays 0; its lookup result is ignored.
                out[i] = Outcome::Drop(reason);
            }
        }
    }

    // ip4_lookup: one bulk lookup for the whole batch.
    let mut entries = [NO_ROUTE; BATCH];
    ip4_lookup::ip4_lookup(fib, &dsts[..n], &mut entries[..n]);

    // ip4_forward + ip4_rewrite.
    for i in 0..n {
        if matches!(out[i], Outcome::Drop(_)) {
            continue;
        }
        let m = &meta[i];
        let (mtu, next) = match ip4_lookup::ip4_next_hop(fib, entries[i], m.dst) {
            Verdict::Drop(reason) => {
                out[i] = Outcome::Drop(reason);
                continue;
            }
            Verdict::Forward(adj) => (adj.mtu, Ok(adj)),
            Verdict::Resolve { key, mtu } => (mtu, Err(key)),
        };
        if let Err(reason) = ip4_forward::ip_forward(m.ttl, m.total_len, m.df, mtu) {
            out[i] = Outcome::Drop(reason);
            continue;
        }
        let frame = batch.packet_mut(i);
        Ipv4Packet::new_unchecked(&mut frame[l3[i]..]).decrease_ttl();
        out[i] = match next {
            Ok(adj) => {
                ip4_rewrite::ip4_rewrite(frame, &adj.l2);
                if adj.stale {
                    Outcome::TxStale(adj.key())
                } else {
                    Outcome::Tx(adj.port)
                }
            }
            Err(key) => Outcome::Resolve(key),
        };
    }
}

/// A batch over owned buffers: for tests and the in-memory pipeline benchmark.
impl PacketBatch for [Vec<u8>] {
    fn len(&self) -> usize {
        <[Vec<u8>]>::len(self)
    }

    fn packet_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self[i]
    }

    fn truncate(&mut self, i: usize, len: usize) {
        self[i].truncate(len);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    use etherparse::{PacketBuilder, SlicedPacket};

    use super::*;
    use crate::fib::{
        AdjTable, NeighInput, PortInfo, RouteInput, RouteNextHop, RouteTable, RouteType,
    };

    const P0_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
    const P1_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
    const H2_MAC: [u8; 6] = [2, 0, 0, 0, 2, 2];
    const GW_MAC: [u8; 6] = [2, 0, 0, 0, 2, 3];

    fn fib() -> Fib {
        let ports: Arc<[PortInfo]> = Arc::from(vec![
            PortInfo {
                ifindex: 10,
                name: "p0".into(),
                mac: P0_MAC,
                mtu: 1500,
                up: true,
            },
            PortInfo {
                ifindex: 11,
                name: "p1".into(),
                mac: P1_MAC,
                mtu: 1500,
                up: true,
            },
        ]);
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let route = |dst: &str, len, kind, gw: Option<&str>, ifindex| RouteInput {
            dst: ip(dst),
            len,
            kind,
            nexthops: vec![RouteNextHop {
                gateway: gw.map(ip),
                ifindex,
            }],
        };
        let routes = RouteTable::build(
            [
                route("10.0.1.0", 24, RouteType::Unicast, None, 10),
                route("10.0.2.0", 24, RouteType::Unicast, None, 11),
                route("198.18.0.0", 24, RouteType::Unicast, Some("10.0.2.3"), 11),
                route("198.19.0.0", 24, RouteType::Unicast, Some("10.0.2.9"), 11),
                route("203.0.113.0", 24, RouteType::Blackhole, None, 0),
                route("192.0.2.0", 24, RouteType::Unicast, Some("172.16.0.1"), 99),
            ],
            [ip("10.0.1.1"), ip("10.0.2.1")],
            &ports,
        )
        .expect("route table");
        let neigh = |addr: &str, mac| NeighInput {
            ifindex: 11,
            ip: ip(addr),
            mac: Some(mac),
            valid: true,
            failed: false,
            stale: false,
        };
        let adj = AdjTable::build(
            &routes,
            [neigh("10.0.2.2", H2_MAC), neigh("10.0.2.3", GW_MAC)],
            &ports,
        );
        Fib {
            routes: Arc::new(routes),
            adj: Arc::new(adj),
            ports,
            generation: 1,
        }
    }

    fn udp(dst: [u8; 4], ttl: u8, dst_mac: [u8; 6]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 1, 2], dst_mac)
            .ipv4([10, 0, 1, 2], dst, ttl)
            .udp(4000, 5000)
            .write(&mut v, &[0xab; 18])
            .unwrap();
        v
    }

    fn run(frames: Vec<Vec<u8>>) -> (Vec<Vec<u8>>, Vec<Outcome>) {
        let fib = fib();
        let mut batch = frames;
        let mut out = [Outcome::Drop(DropReason::NoRoute); BATCH];
        ip4_forward_batch(&fib, 0, batch.as_mut_slice(), &mut out);
        let n = batch.len();
        (batch, out[..n].to_vec())
    }

    #[test]
    fn forwards_attached_and_gateway_with_ttl_minus_one_and_valid_checksum() {
        let (pkts, out) = run(vec![
            udp([10, 0, 2, 2], 64, P0_MAC),
            udp([198, 18, 0, 7], 9, P0_MAC),
        ]);
        assert_eq!(out, vec![Outcome::Tx(1), Outcome::Tx(1)]);
        for (pkt, (mac, ttl)) in pkts.iter().zip([(H2_MAC, 63), (GW_MAC, 8)]) {
            let s = SlicedPacket::from_ethernet(pkt).unwrap();
            let eth = s.link.unwrap().to_header().unwrap();
            let eth = eth.ethernet2().unwrap();
            assert_eq!(eth.destination, mac);
            assert_eq!(eth.source, P1_MAC);
            let etherparse::NetSlice::Ipv4(ip) = s.net.unwrap() else {
                panic!("not ipv4")
            };
            let h = ip.header().to_header();
            assert_eq!(h.time_to_live, ttl);
            assert_eq!(h.header_checksum, h.calc_header_checksum());
        }
    }

    #[test]
    fn drops_carry_their_reason() {
        let mut bad_csum = udp([10, 0, 2, 2], 64, P0_MAC);
        bad_csum[24] ^= 0xff;
        let mut padded = udp([10, 0, 2, 2], 64, P0_MAC);
        let real_len = padded.len();
        padded.extend_from_slice(&[0; 6]);
        let (pkts, out) = run(vec![
            udp([10, 0, 2, 2], 1, P0_MAC),
            udp([8, 8, 8, 8], 64, P0_MAC),
            udp([203, 0, 113, 5], 64, P0_MAC),
            bad_csum,
            udp([10, 0, 2, 2], 64, [2, 9, 9, 9, 9, 9]),
            udp([192, 0, 2, 1], 64, P0_MAC),
            udp([10, 0, 2, 1], 64, P0_MAC),
            padded,
        ]);
        assert_eq!(
            out,
            vec![
                Outcome::Drop(DropReason::TtlExpired),
                Outcome::Drop(DropReason::NoRoute),
                Outcome::Drop(DropReason::RouteBlackhole),
                Outcome::Drop(DropReason::Ip4BadChecksum),
                Outcome::Drop(DropReason::EthOtherHost),
                Outcome::Drop(DropReason::EgressNotManaged),
                Outcome::Drop(DropReason::RouteLocal),
                Outcome::Tx(1),
            ]
        );
        assert_eq!(pkts[7].len(), real_len, "link padding trimmed");
    }

    #[test]
    fn unresolved_next_hops_ask_for_resolution_after_ttl_decrement() {
        let (pkts, out) = run(vec![
            udp([198, 19, 0, 1], 64, P0_MAC),
            udp([10, 0, 2, 77], 64, P0_MAC),
        ]);
        assert_eq!(
            out,
            vec![
                Outcome::Resolve(NextHopKey {
                    port: 1,
                    ip: 0x0a00_0209
                }),
                Outcome::Resolve(NextHopKey {
                    port: 1,
                    ip: 0x0a00_024d
                }),
            ]
        );
        assert_eq!(pkts[0][14 + 8], 63);
    }
}

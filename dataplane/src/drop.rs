//! Why a packet did not leave xfwd: one named reason per outcome, like Linux's
//! `enum skb_drop_reason` (`include/net/dropreason-core.h`) and VPP's per-node error counters.
//!
//! Every stage that gives up on a packet returns one of these; the worker counts it in its own
//! `[u64; DropReason::COUNT]` and recycles the frame. `xfwd show stats` and `xfwd show errors`
//! print the names and descriptions below.

macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $variant:ident => $name:literal, $desc:literal;)+) => {
        /// Why a packet was dropped. The discriminant indexes the per-worker counter array.
        #[repr(u8)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum DropReason {
            $($(#[$doc])* $variant,)+
        }

        impl DropReason {
            /// Every reason, in discriminant order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)+];
            /// Number of reasons: the length of a counter array.
            pub const COUNT: usize = Self::ALL.len();

            /// Stable `snake_case` name used in JSON, metrics and the CLI.
            pub const fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)+ }
            }

            /// One line for operators: what happened and where.
            pub const fn description(self) -> &'static str {
                match self { $(DropReason::$variant => $desc,)+ }
            }
        }
    };
}

drop_reasons! {
    // eth_type_trans
    /// Frame shorter than an Ethernet header.
    EthTooShort => "eth_too_short", "frame shorter than the 14-byte Ethernet header";
    /// Destination MAC is neither ours, broadcast nor multicast (Linux PACKET_OTHERHOST).
    EthOtherHost => "eth_otherhost", "destination MAC is another host's (PACKET_OTHERHOST), not forwarded";
    /// Unicast IP carried in a link-layer broadcast or multicast frame (RFC 1812 §5.3.4).
    EthL2BcastUnicastIp => "eth_l2_bcast_ucast_ip", "unicast IP in a link-layer broadcast/multicast frame (RFC 1812 5.3.4)";
    /// EtherType xfwd does not forward (the XDP program passes these to the kernel).
    EthNotIpv4 => "eth_not_ipv4", "EtherType is not IPv4";

    // ip_rcv_core, RFC 1812 §5.2.2
    /// Fewer bytes than a minimal IPv4 header (check 1).
    Ip4HdrTooShort => "ip4_hdr_too_short", "packet shorter than a 20-byte IPv4 header (RFC 1812 5.2.2 check 1)";
    /// Header checksum wrong (check 2).
    Ip4BadChecksum => "ip4_bad_checksum", "IPv4 header checksum is wrong (RFC 1812 5.2.2 check 2)";
    /// Version field is not 4 (check 3).
    Ip4Version => "ip4_version", "IP version is not 4 (RFC 1812 5.2.2 check 3)";
    /// IHL below 5 words or beyond the packet (check 4).
    Ip4BadIhl => "ip4_bad_ihl", "IPv4 header length below 20 bytes or beyond the packet (RFC 1812 5.2.2 check 4)";
    /// Total length below the header length (check 5).
    Ip4BadTotalLen => "ip4_bad_total_len", "IPv4 total length shorter than its header (RFC 1812 5.2.2 check 5)";
    /// Total length claims more bytes than the frame holds.
    Ip4Truncated => "ip4_truncated", "IPv4 total length exceeds the received frame";

    // ip4_lookup
    /// No route matches the destination.
    NoRoute => "no_route", "no route to the destination";
    /// Route of type blackhole: silently discarded.
    RouteBlackhole => "route_blackhole", "route type blackhole";
    /// Route of type unreachable.
    RouteUnreachable => "route_unreachable", "route type unreachable";
    /// Route of type prohibit.
    RouteProhibit => "route_prohibit", "route type prohibit";
    /// Destination is one of this router's addresses, yet the frame reached xfwd instead of the
    /// kernel (the XDP local-address map lagged an address change).
    RouteLocal => "route_local", "destination is local to the router but reached the dataplane";
    /// The route leaves through an interface xfwd does not drive.
    EgressNotManaged => "egress_not_managed", "route leaves through an interface xfwd does not drive";

    // ip_forward
    /// TTL would reach zero (RFC 1812 §5.3.1).
    TtlExpired => "ttl_expired", "TTL 1 or 0 on arrival, not forwarded (RFC 1812 5.3.1)";
    /// Larger than the egress MTU with DF set.
    FragNeeded => "frag_needed", "larger than the egress MTU with DF set";
    /// Larger than the egress MTU, DF clear, and fragmentation is not done in the dataplane.
    FragUnsupported => "frag_unsupported", "larger than the egress MTU; dataplane fragmentation not available";

    // neighbour
    /// The per-next-hop queue of packets awaiting resolution is full (Linux `unres_qlen`).
    NeighQueueFull => "neigh_queue_full", "next hop unresolved and its pending queue is full (unres_qlen)";
    /// The total pending budget across next hops is exhausted.
    NeighPendingBudget => "neigh_pending_budget", "next hop unresolved and the worker's pending budget is spent";
    /// Resolution failed or timed out.
    NeighFailed => "neigh_failed", "next hop did not resolve (ARP failed or timed out)";

    // tx
    /// The egress TX ring stayed full.
    TxRingFull => "tx_ring_full", "egress AF_XDP TX ring full";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discriminants_index_all_in_order() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?} out of order");
        }
    }

    #[test]
    fn names_are_unique_snake_case() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        for n in &names {
            assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{n}");
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }
}

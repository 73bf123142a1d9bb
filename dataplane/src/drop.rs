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

    // martians: ip_route_input_slow, RFC 1812 5.3.7, RFC 3927
    /// Source 0.0.0.0/8 (RFC 1812 5.3.7; Linux martian source).
    MartianSrcZeronet => "martian_src_zeronet", "source address on network 0 (RFC 1812 5.3.7), not forwarded";
    /// Source 127.0.0.0/8.
    MartianSrcLoopback => "martian_src_loopback", "source address on network 127 (RFC 1812 5.3.7), not forwarded";
    /// Source is multicast (class D).
    MartianSrcMulticast => "martian_src_multicast", "multicast source address (RFC 1812 5.3.7), not forwarded";
    /// Source is the limited broadcast or a directed broadcast of a connected subnet.
    MartianSrcBroadcast => "martian_src_broadcast", "broadcast source address (RFC 1812 5.3.7), not forwarded";
    /// Source is class E (240.0.0.0/4).
    MartianSrcClassE => "martian_src_class_e", "class E source address (RFC 1812 5.3.7; --martians rfc1812)";
    /// Source is link-local 169.254.0.0/16.
    MartianSrcLinkLocal => "martian_src_link_local", "link-local source 169.254/16 (RFC 3927 7; --martians rfc1812)";
    /// Source is one of the router's own addresses.
    MartianSrcLocal => "martian_src_local", "source is one of the router's own addresses (fib_validate_source)";
    /// Destination 0.0.0.0/8.
    MartianDstZeronet => "martian_dst_zeronet", "destination on network 0 (RFC 1812 5.3.7), not forwarded";
    /// Destination 127.0.0.0/8.
    MartianDstLoopback => "martian_dst_loopback", "destination on network 127 (RFC 1812 5.3.7), not forwarded";
    /// Destination 255.255.255.255: never forwarded (RFC 1812 5.3.5.1).
    MartianDstLbcast => "martian_dst_lbcast", "limited broadcast destination, never forwarded (RFC 1812 5.3.5.1)";
    /// Destination is multicast: multicast routing is not the dataplane's.
    MulticastDst => "multicast_dst", "multicast destination; xfwd does not route multicast";
    /// Destination is class E.
    MartianDstClassE => "martian_dst_class_e", "class E destination (RFC 1812 5.3.7; --martians rfc1812)";
    /// Destination is link-local 169.254.0.0/16.
    MartianDstLinkLocal => "martian_dst_link_local", "link-local destination 169.254/16 (RFC 3927 7; --martians rfc1812)";
    /// Destination is the directed broadcast of a connected subnet (RFC 1812 5.3.5.2, default off).
    DirectedBroadcast => "directed_broadcast", "directed broadcast to a connected subnet, not forwarded (RFC 1812 5.3.5.2)";
    /// Reverse-path filter refused the source (`--rp-filter strict|loose`).
    RpFilter => "rp_filter", "source fails the reverse-path filter (--rp-filter, fib_validate_source)";

    // ip_options_compile / ip_rcv_options
    /// An IP option is malformed: ICMP Parameter Problem sent (Linux ip_options_compile).
    Ip4BadOption => "ip4_bad_option", "malformed IP option (ip_options_compile), ICMP parameter problem";
    /// Source-route option and source routing not accepted (Linux accept_source_route=0).
    Ip4SourceRoute => "ip4_source_route", "source-routed packet and --accept-source-route is off";

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
    /// Larger than the egress MTU, DF clear, and no free UMEM frame for the fragments.
    FragNoFrame => "frag_no_frame", "needs fragmenting but the worker has no free UMEM frame for the fragments";

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

macro_rules! events {
    ($($(#[$doc:meta])* $variant:ident => $name:literal, $desc:literal;)+) => {
        /// Something the dataplane did besides forwarding or dropping: ICMP errors it sent or
        /// held back, fragmentation. The discriminant indexes the per-worker counter array.
        #[repr(u8)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Event {
            $($(#[$doc])* $variant,)+
        }

        impl Event {
            /// Every event, in discriminant order.
            pub const ALL: &'static [Event] = &[$(Event::$variant,)+];
            /// Number of events: the length of a counter array.
            pub const COUNT: usize = Self::ALL.len();

            /// Stable `snake_case` name used in JSON, metrics and the CLI.
            pub const fn name(self) -> &'static str {
                match self { $(Event::$variant => $name,)+ }
            }

            /// One line for operators.
            pub const fn description(self) -> &'static str {
                match self { $(Event::$variant => $desc,)+ }
            }
        }
    };
}

events! {
    /// ICMP Time Exceeded (11/0) sent.
    IcmpTimeExceeded => "icmp_tx_time_exceeded", "ICMP time exceeded in transit (type 11 code 0) sent";
    /// ICMP Destination Unreachable, net unreachable (3/0) sent.
    IcmpNetUnreachable => "icmp_tx_net_unreachable", "ICMP net unreachable (type 3 code 0) sent: no route";
    /// ICMP Destination Unreachable, host unreachable (3/1) sent.
    IcmpHostUnreachable => "icmp_tx_host_unreachable", "ICMP host unreachable (type 3 code 1) sent: unreachable route or ARP failure";
    /// ICMP Fragmentation Needed (3/4) sent.
    IcmpFragNeeded => "icmp_tx_frag_needed", "ICMP fragmentation needed (type 3 code 4) with next-hop MTU sent";
    /// ICMP Communication Administratively Prohibited (3/13) sent.
    IcmpProhibited => "icmp_tx_prohibited", "ICMP administratively prohibited (type 3 code 13) sent: prohibit route";
    /// ICMP Parameter Problem (12/0) sent.
    IcmpParamProblem => "icmp_tx_param_problem", "ICMP parameter problem (type 12 code 0) with pointer sent: bad option";
    /// ICMP error not sent: the offending packet was an ICMP error, a non-first fragment, a
    /// broadcast/multicast, or had an invalid source (RFC 1812 4.3.2.7).
    IcmpSuppressed => "icmp_suppressed", "ICMP error not allowed for this packet (RFC 1812 4.3.2.7)";
    /// ICMP error not sent: per-destination rate limit (`icmp_ratelimit`, route error_cost).
    IcmpRateLimitedHost => "icmp_ratelimit_host", "ICMP error held back by the per-destination rate limit";
    /// ICMP error not sent: global rate limit (`icmp_msgs_per_sec` / `icmp_msgs_burst`).
    IcmpRateLimitedGlobal => "icmp_ratelimit_global", "ICMP error held back by the global rate limit";
    /// ICMP error not sent: no route or no address to send it from.
    IcmpNoRoute => "icmp_no_route", "ICMP error not sent: no route back to the sender or no source address";
    /// ICMP error not sent: `--no-icmp-errors`.
    IcmpDisabled => "icmp_disabled", "ICMP error not sent: --no-icmp-errors";
    /// A packet was fragmented (DF clear, larger than the egress MTU).
    Fragmented => "ip4_fragmented", "packet fragmented to fit the egress MTU (ip_fragment)";
    /// Fragments created.
    FragmentsCreated => "ip4_fragments_created", "fragments created by the dataplane";
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
            assert!(
                n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{n}"
            );
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }
}

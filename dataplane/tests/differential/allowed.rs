//! The one place that says where xfwd may differ from Linux, and why.

use super::cases::Expect;

/// Fields allowed to differ: `(case, field, why)`. `case` is a case name or `"*"` for every
/// case; `field` is a flattened field with the frame index removed, either with its side
/// (`h2.fwd.ip.csum`: frames of the case reaching h2) or without (`err.ip.id`: ICMP errors the
/// router originated, wherever they went). Every entry must be justified: "xfwd does it differently" is not a reason.
pub const ALLOWED: &[(&str, &str, &str)] = &[
    (
        "*",
        "err.ip.id",
        "IP ID of an ICMP error the router originates: Linux draws it from its per-destination \
         hashed counter (ip_select_ident), i.e. unpredictable; RFC 6864 only asks it be unique \
         per (src, dst, proto) within the reassembly lifetime",
    ),
    (
        "*",
        "err.ip.csum",
        "header checksum of an ICMP error the router originates: follows from its IP ID (above); \
         its validity (err.ip.csum_ok) is still compared",
    ),
    (
        "opt_timestamp",
        "h2.fwd.ip.opts.ts",
        "the clock value the router records is its clock (ms since midnight UTC) at that \
         instant; pointer, overflow and flags (h2.fwd.ip.opts, values zeroed) are still compared",
    ),
    (
        "opt_timestamp",
        "h2.fwd.ip.csum",
        "follows from the recorded timestamp (above); h2.fwd.ip.csum_ok is still compared",
    ),
];

/// Cases where xfwd deliberately does not do what Linux does, because RFC 1812 (or the RFC named)
/// says otherwise and issue 3 says to follow the RFC there: `(case, what xfwd must do, why)`.
/// For these the suite checks xfwd against this outcome instead of against Linux (and still
/// checks that Linux does what the case table says).
pub const INTENTIONAL: &[(&str, Expect, &str)] = &[
    (
        "src_zero_net",
        Expect::Silent,
        "RFC 1812 5.3.7: a router SHOULD NOT forward a packet whose source is on network 0; \
         Linux (since the 'unicast 0/8' change) forwards sources in 0/8 other than 0.0.0.0",
    ),
    (
        "src_class_e",
        Expect::Silent,
        "RFC 1812 5.3.7 / 4.2.2.11: class E (240/4) is not a valid source; Linux treats \
         240/4 as unicast since 2.6.25",
    ),
    (
        "src_link_local",
        Expect::Silent,
        "RFC 3927 section 7: a router MUST NOT forward a packet with a link-local (169.254/16) \
         source; Linux has no such check",
    ),
];

/// Cases where xfwd on this branch still differs from Linux, each with why. The suite asserts
/// they DO still differ: fixing one fails the test until its entry is removed here.
pub const KNOWN_GAPS: &[(&str, &str)] = &[
    (
        "route_unreachable",
        "xfwd on this branch sends no ICMP errors (drops and counts instead)",
    ),
    (
        "route_prohibit",
        "xfwd on this branch sends no ICMP errors (drops and counts instead)",
    ),
    (
        "route_none",
        "xfwd on this branch sends no ICMP errors (drops and counts instead)",
    ),
    (
        "ttl_0",
        "xfwd on this branch sends no ICMP errors (drops and counts instead)",
    ),
    (
        "ttl_1",
        "xfwd on this branch sends no ICMP errors (drops and counts instead)",
    ),
    (
        "ttl_1_icmp_echo",
        "xfwd on this branch sends no ICMP errors (drops and counts instead)",
    ),
    (
        "ttl_1_no_route",
        "xfwd on this branch sends no ICMP errors (drops and counts instead)",
    ),
    (
        "mtu_df_too_big",
        "xfwd on this branch sends no ICMP errors (drops and counts instead): no Fragmentation Needed",
    ),
    (
        "mtu_df_route_mtu",
        "the route's mtu metric (RTAX_MTU) is not applied: xfwd forwards 1128 bytes on a route with mtu 1000",
    ),
    (
        "mtu_frag",
        "no fragmentation in the dataplane (dropped as frag_unsupported)",
    ),
    (
        "mtu_frag_route_mtu",
        "no fragmentation in the dataplane, and the route's mtu metric is not applied",
    ),
    (
        "mtu_frag_of_first_fragment",
        "no fragmentation in the dataplane",
    ),
    (
        "mtu_frag_of_last_fragment",
        "no fragmentation in the dataplane",
    ),
    ("mtu_frag_with_options", "no fragmentation in the dataplane"),
    (
        "src_zero_net",
        "martian source 0/8 not dropped (forwarded like Linux; the RFC target is a drop)",
    ),
    ("src_unspecified", "martian source 0.0.0.0 not dropped"),
    ("src_loopback", "martian source 127/8 not dropped"),
    (
        "src_limited_broadcast",
        "martian source 255.255.255.255 not dropped",
    ),
    ("src_multicast", "martian source 224/4 not dropped"),
    (
        "src_class_e",
        "martian source 240/4 not dropped (forwarded like Linux; the RFC target is a drop)",
    ),
    (
        "src_own_address_p0",
        "a source that is one of the router's addresses is not dropped",
    ),
    (
        "src_own_address_p1",
        "a source that is one of the router's addresses is not dropped",
    ),
    (
        "src_link_local",
        "link-local source not dropped (forwarded like Linux; RFC 3927 target is a drop)",
    ),
    (
        "dst_zero_net",
        "xfwd on this branch sends no ICMP errors (drops and counts instead): no Net Unreachable",
    ),
    (
        "dst_class_e",
        "xfwd on this branch sends no ICMP errors (drops and counts instead): no Net Unreachable",
    ),
    (
        "dst_link_local",
        "xfwd on this branch sends no ICMP errors (drops and counts instead): no Net Unreachable",
    ),
    (
        "opt_record_route",
        "IP options are forwarded untouched: the router's address is not recorded",
    ),
    (
        "opt_timestamp",
        "IP options are forwarded untouched: no timestamp recorded",
    ),
    (
        "opt_timestamp_overflow",
        "IP options are forwarded untouched: the overflow counter is not bumped",
    ),
    (
        "opt_bad_length",
        "option lengths are not validated: forwarded instead of Parameter Problem",
    ),
    (
        "opt_zero_length",
        "option lengths are not validated: forwarded instead of Parameter Problem",
    ),
    (
        "opt_lsrr",
        "source-routed packets are forwarded (Linux drops them, accept_source_route=0)",
    ),
    (
        "opt_ssrr",
        "source-routed packets are forwarded (Linux drops them, accept_source_route=0)",
    ),
    (
        "frag_first_ttl_1",
        "xfwd on this branch sends no ICMP errors (drops and counts instead)",
    ),
    (
        "icmp_echo_df_too_big",
        "xfwd on this branch sends no ICMP errors (drops and counts instead): no Fragmentation Needed",
    ),
    (
        "ttl_1_df_too_big",
        "xfwd on this branch sends no ICMP errors (drops and counts instead)",
    ),
    (
        "icmp_src_other_iface",
        "xfwd on this branch sends no ICMP errors (drops and counts instead)",
    ),
    (
        "icmp_rate_limit",
        "xfwd on this branch sends no ICMP errors (drops and counts instead) (so none to rate-limit)",
    ),
    (
        "rp_filter_strict",
        "no reverse-path filtering on this branch (xfwd has no --rp-filter)",
    ),
    (
        "rp_filter_loose_no_route",
        "no reverse-path filtering on this branch (xfwd has no --rp-filter)",
    ),
    (
        "ttl_1_large_quote",
        "xfwd on this branch sends no ICMP errors (drops and counts instead)",
    ),
    (
        "ttl_1_with_record_route",
        "xfwd on this branch sends no ICMP errors (drops and counts instead)",
    ),
    (
        "icmp_src_inbound_ifaddr",
        "xfwd on this branch sends no ICMP errors (drops and counts instead)",
    ),
    (
        "opt_eol_then_garbage",
        "option bytes after End of Option List are forwarded as they are; Linux rewrites them to EOL (ip_options_compile)",
    ),
    (
        "unresolved_next_hop",
        "xfwd on this branch sends no ICMP errors (drops and counts instead): no Host Unreachable when ARP fails",
    ),
];

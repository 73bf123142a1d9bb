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
    (
        "src_directed_broadcast",
        Expect::Silent,
        "RFC 1812 5.3.7 with 4.2.2.11 and 5.3.5: a directed broadcast address does not name one \
         host and is not a valid source; Linux forwards it (--martians linux does too)",
    ),
    (
        "dst_zero_net",
        Expect::Silent,
        "RFC 1812 5.3.7: a router SHOULD NOT forward a packet to network 0, and the RFC asks for \
         a log, not an ICMP error; Linux treats 0/8 other than 0.0.0.0 as unicast and answers \
         net unreachable for want of a route (--martians linux does too)",
    ),
    (
        "dst_class_e",
        Expect::Silent,
        "RFC 1812 5.3.7 / 4.2.2.11: class E is not a valid destination, discarded silently; \
         Linux routes 240/4 as unicast and answers net unreachable (--martians linux does too)",
    ),
    (
        "dst_link_local",
        Expect::Silent,
        "RFC 3927 section 7: a router MUST NOT forward a packet with a link-local destination; \
         Linux looks it up and answers net unreachable (--martians linux does too)",
    ),
];

/// Cases where xfwd on this branch still differs from Linux, each with why. The suite asserts
/// they DO still differ: fixing one fails the test until its entry is removed here.
pub const KNOWN_GAPS: &[(&str, &str)] = &[];

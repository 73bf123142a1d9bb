//! IPv4 options of forwarded packets: Linux `ip_options_compile()` (validation),
//! `ip_rcv_options()` (source routes) and `ip_forward_options()` (record route, timestamp)
//! in `net/ipv4/ip_options.c`; and `ip_options_fragment()` for fragments after the first.
//!
//! xfwd forwards packets with options itself, as Linux does; it does not hand them to the
//! kernel. Validation follows `ip_options_compile` with an skb (a received packet): a bad
//! option yields a Parameter Problem whose pointer names the offending octet, exactly where
//! Linux points. Source routes (LSRR, SSRR) are dropped unless `accept_source_route` is on;
//! when it is on, a loose source route not addressed to the router is forwarded on its
//! destination, a strict one gets Parameter Problem pointer 16 (`ip_options_rcv_srr`: a packet
//! reaching a strict-route hop that is not its destination). Packets addressed to the router
//! itself never reach xfwd (the XDP program gives them to the kernel), so the source-route hop
//! processing stays the kernel's.

/// `IPOPT_END`.
const END: u8 = 0;
/// `IPOPT_NOOP`.
const NOOP: u8 = 1;
/// `IPOPT_RR`.
const RR: u8 = 7;
/// `IPOPT_TIMESTAMP`.
const TS: u8 = 68;
/// `IPOPT_LSRR`.
const LSRR: u8 = 131;
/// `IPOPT_SSRR`.
const SSRR: u8 = 137;
/// `IPOPT_RA`.
const RA: u8 = 148;
/// `IPOPT_CIPSO`.
const CIPSO: u8 = 134;

/// What validation found, as offsets from the start of the IPv4 header (0 = absent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Record route option.
    pub rr: u8,
    /// Record route has room: write an address.
    pub rr_needaddr: bool,
    /// Timestamp option.
    pub ts: u8,
    /// Source route option.
    pub srr: u8,
    /// The source route is strict.
    pub strict: bool,
}

/// Validates the options of `hdr` (the whole IPv4 header, options included): Linux
/// `ip_options_compile`.
///
/// # Errors
///
/// The Parameter Problem pointer (offset of the offending octet in the header).
pub fn compile(hdr: &[u8]) -> Result<Options, u8> {
    let mut o = Options::default();
    let mut i = 20;
    let end = hdr.len();
    while i < end {
        match hdr[i] {
            END => break,
            NOOP => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let l = end - i;
        if l < 2 {
            return Err(i as u8);
        }
        let optlen = usize::from(hdr[i + 1]);
        if optlen < 2 || optlen > l {
            return Err(i as u8);
        }
        let opt = &hdr[i..i + optlen];
        match opt[0] {
            LSRR | SSRR => {
                if optlen < 3 {
                    return Err((i + 1) as u8);
                }
                if opt[2] < 4 {
                    return Err((i + 2) as u8);
                }
                if o.srr != 0 {
                    return Err(i as u8);
                }
                o.srr = i as u8;
                o.strict = opt[0] == SSRR;
            }
            RR => {
                if o.rr != 0 {
                    return Err(i as u8);
                }
                if optlen < 3 {
                    return Err((i + 1) as u8);
                }
                if opt[2] < 4 {
                    return Err((i + 2) as u8);
                }
                if usize::from(opt[2]) <= optlen {
                    if usize::from(opt[2]) + 3 > optlen {
                        return Err((i + 2) as u8);
                    }
                    o.rr_needaddr = true;
                }
                o.rr = i as u8;
            }
            TS => {
                if o.ts != 0 {
                    return Err(i as u8);
                }
                if optlen < 4 {
                    return Err((i + 1) as u8);
                }
                if opt[2] < 5 {
                    return Err((i + 2) as u8);
                }
                let ptr = usize::from(opt[2]);
                if ptr <= optlen {
                    if ptr + 3 > optlen {
                        return Err((i + 2) as u8);
                    }
                    // Address + time entries need 8 bytes; unknown flags are accepted from the
                    // wire (Linux, skb != NULL).
                    if matches!(opt[3] & 0x0f, 1 | 3) && ptr + 7 > optlen {
                        return Err((i + 2) as u8);
                    }
                } else if opt[3] & 0x0f != 3 && opt[3] >> 4 == 15 {
                    // Overflow counter would wrap.
                    return Err((i + 3) as u8);
                }
                o.ts = i as u8;
            }
            RA if optlen < 4 => return Err((i + 1) as u8),
            // CIPSO without a configured DOI fails `cipso_v4_validate`.
            CIPSO => return Err(i as u8),
            _ => {}
        }
        i += optlen;
    }
    Ok(o)
}

/// Linux `ip_forward_options` (with the pointer advance `ip_options_compile` does on receive):
/// records `addr` (the egress interface's address, host order) in a record-route option with
/// room, and stamps a timestamp option with `ms_since_midnight_ut`. Returns whether the header
/// changed (the caller recomputes the checksum).
pub fn forward(hdr: &mut [u8], o: &Options, addr: u32, ms_since_midnight_ut: u32) -> bool {
    let mut changed = false;
    if o.rr_needaddr {
        let at = usize::from(o.rr);
        let ptr = usize::from(hdr[at + 2]);
        hdr[at + ptr - 1..at + ptr + 3].copy_from_slice(&addr.to_be_bytes());
        hdr[at + 2] += 4;
        changed = true;
    }
    if o.ts != 0 {
        let at = usize::from(o.ts);
        let optlen = usize::from(hdr[at + 1]);
        let ptr = usize::from(hdr[at + 2]);
        let flags = hdr[at + 3] & 0x0f;
        let time = ms_since_midnight_ut.to_be_bytes();
        if ptr <= optlen {
            match flags {
                0 => {
                    hdr[at + ptr - 1..at + ptr + 3].copy_from_slice(&time);
                    hdr[at + 2] += 4;
                    changed = true;
                }
                1 => {
                    hdr[at + ptr - 1..at + ptr + 3].copy_from_slice(&addr.to_be_bytes());
                    hdr[at + ptr + 3..at + ptr + 7].copy_from_slice(&time);
                    hdr[at + 2] += 8;
                    changed = true;
                }
                3 => {
                    // Prespecified: stamp only when the listed address is ours.
                    let listed =
                        u32::from_be_bytes(hdr[at + ptr - 1..at + ptr + 3].try_into().unwrap());
                    if listed == addr {
                        hdr[at + ptr + 3..at + ptr + 7].copy_from_slice(&time);
                        hdr[at + 2] += 8;
                        changed = true;
                    }
                }
                _ => {}
            }
        } else if flags != 3 {
            let overflow = hdr[at + 3] >> 4;
            hdr[at + 3] = flags | ((overflow + 1) << 4);
            changed = true;
        }
    }
    changed
}

/// Linux `ip_options_fragment`: in the header copied to fragments after the first, options
/// whose copied flag (bit 7 of the type) is clear become NOOPs; the length stays.
pub fn fragment(hdr: &mut [u8]) {
    let mut i = 20;
    while i < hdr.len() {
        match hdr[i] {
            END => return,
            NOOP => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let l = hdr.len() - i;
        if l < 2 {
            return;
        }
        let optlen = usize::from(hdr[i + 1]);
        if optlen < 2 || optlen > l {
            return;
        }
        if hdr[i] & 0x80 == 0 {
            hdr[i..i + optlen].fill(NOOP);
        }
        i += optlen;
    }
}

/// Milliseconds since midnight UT (RFC 791 timestamp; Linux `inet_current_timestamp`).
pub fn now_ms_since_midnight() -> u32 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_millis() % 86_400_000) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(opts: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 20];
        h[0] = 0x40 | ((20 + opts.len()) / 4) as u8;
        h.extend_from_slice(opts);
        h
    }

    #[test]
    fn record_route_records_and_advances() {
        let mut h = hdr(&[RR, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let o = compile(&h).unwrap();
        assert!(o.rr_needaddr);
        assert!(forward(&mut h, &o, 0x0a00_0201, 0));
        assert_eq!(&h[23..27], &[10, 0, 2, 1]);
        assert_eq!(h[22], 8);
        // Full: no more room, pointer past the end.
        let mut h = hdr(&[RR, 7, 8, 1, 2, 3, 4, 0]);
        let o = compile(&h).unwrap();
        assert!(!o.rr_needaddr);
        assert!(!forward(&mut h, &o, 1, 0));
    }

    #[test]
    fn bad_options_point_where_linux_points() {
        assert_eq!(compile(&hdr(&[RR, 1, 4, 0])), Err(20));
        assert_eq!(
            compile(&hdr(&[RR, 8, 4, 0])),
            Err(20),
            "length past the header"
        );
        assert_eq!(compile(&hdr(&[RR, 7, 3, 0, 0, 0, 0, 0])), Err(22));
        assert_eq!(compile(&hdr(&[RR, 7, 6, 0, 0, 0, 0, 0])), Err(22));
        assert_eq!(
            compile(&hdr(&[NOOP, TS, 3, 5])),
            Err(22),
            "ts shorter than 4"
        );
        assert_eq!(
            compile(&hdr(&[TS, 8, 9, 0xf0, 0, 0, 0, 0])),
            Err(23),
            "overflow wraps"
        );
        assert_eq!(
            compile(&hdr(&[NOOP, NOOP, NOOP, 200])),
            Err(23),
            "one octet left"
        );
        assert!(compile(&hdr(&[NOOP, NOOP, NOOP, END])).is_ok());
        assert!(compile(&hdr(&[END, 99, 99, 99])).is_ok(), "after END");
    }

    #[test]
    fn timestamp_only_and_overflow() {
        let mut h = hdr(&[TS, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let o = compile(&h).unwrap();
        assert!(forward(&mut h, &o, 1, 0x0102_0304));
        assert_eq!(&h[24..28], &[1, 2, 3, 4]);
        assert_eq!(h[22], 9);
        let mut h = hdr(&[TS, 8, 9, 0x10, 0, 0, 0, 0]);
        let o = compile(&h).unwrap();
        assert!(forward(&mut h, &o, 1, 5));
        assert_eq!(h[23], 0x20, "overflow counted");
    }

    #[test]
    fn source_route_is_recognised() {
        let o = compile(&hdr(&[LSRR, 7, 4, 1, 2, 3, 4, END])).unwrap();
        assert!(o.srr != 0 && !o.strict);
        let o = compile(&hdr(&[SSRR, 7, 4, 1, 2, 3, 4, END])).unwrap();
        assert!(o.strict);
        assert_eq!(
            compile(&hdr(&[LSRR, 3, 4, SSRR, 3, 4, END, END])),
            Err(23),
            "two source routes"
        );
    }

    #[test]
    fn fragment_keeps_copied_options_only() {
        let mut h = hdr(&[RR, 7, 4, 0, 0, 0, 0, LSRR, 7, 4, 1, 2, 3, 4, END, END]);
        fragment(&mut h);
        assert_eq!(&h[20..27], &[NOOP; 7]);
        assert_eq!(h[27], LSRR);
    }
}

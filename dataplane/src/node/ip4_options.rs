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
    /// Timestamp: an address is recorded (set by [`receive`]).
    pub ts_needaddr: bool,
    /// Timestamp: a time is recorded (set by [`receive`]).
    pub ts_needtime: bool,
    /// Offset of an End of Option List followed by other bytes (0: none).
    pub end_garbage: u8,
    /// [`receive`] changed the header (the checksum is recomputed when forwarding).
    pub changed: bool,
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
            END => {
                if hdr[i + 1..].iter().any(|b| *b != END) {
                    o.end_garbage = i as u8;
                }
                break;
            }
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

/// What `ip_options_compile` changes in a received packet's header (Linux does it when the
/// packet is routed, before `ip_forward` looks at the TTL, so an ICMP error quotes it): bytes
/// after End of Option List become End; a record route with room gets `spec_dst` (the router's
/// address towards the sender, `fib_compute_spec_dst`) and its pointer advanced; a timestamp
/// with room gets the time (and `spec_dst`, or only when the prespecified address `is_local`)
/// and its pointer advanced, a full one its overflow counter incremented.
pub fn receive(
    hdr: &mut [u8],
    o: &mut Options,
    spec_dst: u32,
    is_local: impl Fn(u32) -> bool,
    ms_since_midnight_ut: u32,
) {
    if o.end_garbage != 0 {
        hdr[usize::from(o.end_garbage) + 1..].fill(END);
        o.changed = true;
    }
    if o.rr_needaddr {
        let at = usize::from(o.rr);
        let ptr = usize::from(hdr[at + 2]);
        hdr[at + ptr - 1..at + ptr + 3].copy_from_slice(&spec_dst.to_be_bytes());
        hdr[at + 2] += 4;
        o.changed = true;
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
                    o.ts_needtime = true;
                    o.changed = true;
                }
                1 => {
                    hdr[at + ptr - 1..at + ptr + 3].copy_from_slice(&spec_dst.to_be_bytes());
                    hdr[at + ptr + 3..at + ptr + 7].copy_from_slice(&time);
                    hdr[at + 2] += 8;
                    o.ts_needaddr = true;
                    o.ts_needtime = true;
                    o.changed = true;
                }
                3 => {
                    let listed = u32::from_be_bytes([
                        hdr[at + ptr - 1],
                        hdr[at + ptr],
                        hdr[at + ptr + 1],
                        hdr[at + ptr + 2],
                    ]);
                    if is_local(listed) {
                        hdr[at + ptr + 3..at + ptr + 7].copy_from_slice(&time);
                        hdr[at + 2] += 8;
                        o.ts_needtime = true;
                        o.changed = true;
                    }
                }
                _ => {}
            }
        } else if flags != 3 {
            let overflow = hdr[at + 3] >> 4;
            hdr[at + 3] = flags | ((overflow + 1) << 4);
            o.changed = true;
        }
    }
}

/// Linux `ip_forward_options`: the record-route and timestamp address slots [`receive`] filled
/// get the egress interface's address `addr` (host order). Returns whether the header changed
/// since it was received (the caller recomputes the checksum).
pub fn forward(hdr: &mut [u8], o: &Options, addr: u32) -> bool {
    if o.rr_needaddr {
        let at = usize::from(o.rr);
        let ptr = usize::from(hdr[at + 2]);
        hdr[at + ptr - 5..at + ptr - 1].copy_from_slice(&addr.to_be_bytes());
    }
    if o.ts_needaddr {
        let at = usize::from(o.ts);
        let ptr = usize::from(hdr[at + 2]);
        hdr[at + ptr - 9..at + ptr - 5].copy_from_slice(&addr.to_be_bytes());
    }
    o.changed
}

/// Linux `__ip_options_echo` + `ip_options_build` for an ICMP error about a packet whose header
/// (after [`receive`]) is `hdr` and whose options are `o`: the record-route and timestamp
/// options of the reply, with the reply's source `src` (and the time) recorded where they have
/// room, padded with End to a multiple of 4. Writes into `out` and returns the length; `None`
/// when Linux refuses (`-EINVAL`: then no error is sent). Source routes are not echoed.
pub fn echo(
    hdr: &[u8],
    o: &Options,
    src: u32,
    is_local: impl Fn(u32) -> bool,
    ms_since_midnight_ut: u32,
    out: &mut [u8; 40],
) -> Option<usize> {
    let mut n = 0;
    let mut rr_at = None;
    let mut ts = None;
    if o.rr != 0 {
        let at = usize::from(o.rr);
        let optlen = usize::from(hdr[at + 1]);
        let soffset = usize::from(hdr[at + 2]);
        out[n..n + optlen].copy_from_slice(&hdr[at..at + optlen]);
        if o.rr_needaddr && soffset <= optlen {
            if soffset + 3 > optlen {
                return None;
            }
            out[n + 2] = (soffset + 4) as u8;
            rr_at = Some(n);
        }
        n += optlen;
    }
    if o.ts != 0 {
        let at = usize::from(o.ts);
        let optlen = usize::from(hdr[at + 1]);
        let mut soffset = usize::from(hdr[at + 2]);
        out[n..n + optlen].copy_from_slice(&hdr[at..at + optlen]);
        let (mut needaddr, mut needtime) = (false, false);
        if soffset <= optlen {
            if o.ts_needaddr {
                if soffset + 3 > optlen {
                    return None;
                }
                needaddr = true;
                soffset += 4;
            }
            if o.ts_needtime {
                if soffset + 3 > optlen {
                    return None;
                }
                if out[n + 3] & 0x0f != 3 {
                    needtime = true;
                    soffset += 4;
                } else if soffset + 7 <= optlen {
                    let a = &out[n + soffset - 1..n + soffset + 3];
                    if is_local(u32::from_be_bytes([a[0], a[1], a[2], a[3]])) {
                        needtime = true;
                        soffset += 8;
                    }
                }
            }
            out[n + 2] = soffset as u8;
        }
        ts = Some((n, needaddr, needtime));
        n += optlen;
    }
    while n % 4 != 0 {
        out[n] = END;
        n += 1;
    }
    // ip_options_build: record the reply's own source and time.
    if let Some(at) = rr_at {
        let ptr = usize::from(out[at + 2]);
        out[at + ptr - 5..at + ptr - 1].copy_from_slice(&src.to_be_bytes());
    }
    if let Some((at, needaddr, needtime)) = ts {
        let ptr = usize::from(out[at + 2]);
        if needaddr {
            out[at + ptr - 9..at + ptr - 5].copy_from_slice(&src.to_be_bytes());
        }
        if needtime {
            out[at + ptr - 5..at + ptr - 1].copy_from_slice(&ms_since_midnight_ut.to_be_bytes());
        }
    }
    Some(n)
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
        let mut o = compile(&h).unwrap();
        assert!(o.rr_needaddr);
        receive(&mut h, &mut o, 0x0a00_0101, |_| false, 0);
        assert_eq!(&h[23..27], &[10, 0, 1, 1], "spec_dst at receive");
        assert_eq!(h[22], 8);
        assert!(forward(&mut h, &o, 0x0a00_0201));
        assert_eq!(&h[23..27], &[10, 0, 2, 1], "egress address when forwarded");
        // Full: no more room, pointer past the end.
        let mut h = hdr(&[RR, 7, 8, 1, 2, 3, 4, 0]);
        let mut o = compile(&h).unwrap();
        assert!(!o.rr_needaddr);
        receive(&mut h, &mut o, 1, |_| false, 0);
        assert!(!forward(&mut h, &o, 1));
    }

    #[test]
    fn echo_records_the_reply_source() {
        let mut h = hdr(&[RR, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut o = compile(&h).unwrap();
        receive(&mut h, &mut o, 0x0a00_0101, |_| false, 0);
        let mut out = [0u8; 40];
        let n = echo(&h, &o, 0x0a00_0101, |_| false, 0, &mut out).unwrap();
        assert_eq!(&out[..n], &[7, 11, 12, 10, 0, 1, 1, 10, 0, 1, 1, 0]);
    }

    #[test]
    fn bytes_after_end_become_end() {
        let mut h = hdr(&[NOOP, END, 7, 9]);
        let mut o = compile(&h).unwrap();
        receive(&mut h, &mut o, 0, |_| false, 0);
        assert_eq!(&h[20..], &[NOOP, END, END, END]);
        assert!(o.changed);
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
        let mut o = compile(&h).unwrap();
        receive(&mut h, &mut o, 1, |_| false, 0x0102_0304);
        assert_eq!(&h[24..28], &[1, 2, 3, 4]);
        assert_eq!(h[22], 9);
        let mut h = hdr(&[TS, 8, 9, 0x10, 0, 0, 0, 0]);
        let mut o = compile(&h).unwrap();
        receive(&mut h, &mut o, 1, |_| false, 5);
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

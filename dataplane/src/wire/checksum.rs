//! The Internet checksum: computation (RFC 1071) and incremental update (RFC 1624).
//!
//! ```text
//!   sum(data)      = one's-complement sum of data as 16-bit big-endian words
//!                    (an odd trailing byte is the high byte of a zero-padded word)
//!   checksum(data) = !sum(data with the checksum field zeroed)  -> the value to store
//!   verify         = sum(data including the checksum field) == 0xffff
//! ```
//!
//! [`sum`] is the fast version: it adds 32-bit native-order words into a 64-bit accumulator,
//! 16 bytes per iteration, and folds once at the end (the accumulator cannot overflow before
//! 16 GiB, and [`sum`] folds every 1 MiB anyway). This is correct because the one's-complement
//! sum is independent of byte order (RFC 1071 §2(B)) and of word size as long as carries are
//! folded back (§2(C)). [`sum_reference`] adds byte pairs one at a time, folding every step: it is
//! the oracle the tests and fuzz targets compare [`sum`] with, never the hot path.
//!
//! Incremental updates follow RFC 1624 eqn. 3, `HC' = ~(~HC + ~m + m')`, which (unlike RFC 1141's
//! `HC' = HC + m + ~m'`) never turns a checksum of `0x0000` into `0xffff` (RFC 1624 §3, §4: the
//! "-0 / +0" problem). [`ip_decrease_ttl`] is the special form Linux uses in `ip_decrease_ttl()`
//! (`include/net/ip.h`): `check + 0x0100` with end-around carry, where a result of `0xffff` also
//! carries (`check >= 0xffff`), which is exactly eqn. 3 for a TTL decrement.

/// Bytes summed between two partial folds of the 64-bit accumulator in [`sum`].
const FOLD_BLOCK: usize = 1 << 20;

/// Folds a 64-bit accumulator of 16- or 32-bit words to a 16-bit one's-complement sum, adding
/// every carry back in (end-around carry).
#[inline]
pub const fn fold(acc: u64) -> u16 {
    // Branch-free: after the two 32-bit folds s <= 2^32, after the first 16-bit fold
    // s <= 0x1_fffe (or 0x1_0000), and the second brings any of those to <= 0xffff.
    let mut s = (acc & 0xffff_ffff) + (acc >> 32);
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// One's-complement addition of two 16-bit sums (`a +' b`).
#[inline]
pub const fn add(a: u16, b: u16) -> u16 {
    fold(a as u64 + b as u64)
}

/// The one's-complement sum of `data` as big-endian 16-bit words, not inverted (RFC 1071).
///
/// An odd trailing byte counts as the high byte of a word whose low byte is zero. A buffer whose
/// checksum field holds a correct checksum sums to `0xffff`.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    for block in data.chunks(FOLD_BLOCK) {
        acc = (acc & 0xffff_ffff) + (acc >> 32) + sum_block(block);
    }
    // The accumulator holds a sum of native-order words; stored natively, its bytes are the
    // bytes of the big-endian sum stored big-endian (RFC 1071 §2(B)).
    u16::from_be_bytes(fold(acc).to_ne_bytes())
}

/// Sums `block` (at most [`FOLD_BLOCK`] bytes) as native-order words into a u64, unfolded.
#[inline(always)]
fn sum_block(block: &[u8]) -> u64 {
    let (chunks, rest) = block.as_chunks::<16>();
    let mut acc: u64 = 0;
    for c in chunks {
        let a = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
        let b = u32::from_ne_bytes([c[4], c[5], c[6], c[7]]);
        let d = u32::from_ne_bytes([c[8], c[9], c[10], c[11]]);
        let e = u32::from_ne_bytes([c[12], c[13], c[14], c[15]]);
        acc += u64::from(a) + u64::from(b) + u64::from(d) + u64::from(e);
    }
    let (words, rest) = rest.as_chunks::<4>();
    for w in words {
        acc += u64::from(u32::from_ne_bytes(*w));
    }
    let (pairs, rest) = rest.as_chunks::<2>();
    for p in pairs {
        acc += u64::from(u16::from_ne_bytes(*p));
    }
    if let [last] = rest {
        acc += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    acc
}

/// The five 32-bit native-order words of a 20-byte header added into a u64 (cannot overflow).
#[inline(always)]
fn header_words(hdr: &[u8; 20]) -> u64 {
    let w = |i: usize| {
        u64::from(u32::from_ne_bytes([
            hdr[i],
            hdr[i + 1],
            hdr[i + 2],
            hdr[i + 3],
        ]))
    };
    w(0) + w(4) + w(8) + w(12) + w(16)
}

/// The one's-complement sum of a 20-byte IPv4 header without options: [`sum`] unrolled for the
/// fast path of `ip_rcv_core`, where `ver_ihl == 0x45`.
#[inline]
pub fn sum_ipv4_header(hdr: &[u8; 20]) -> u16 {
    let acc = header_words(hdr);
    u16::from_be_bytes(fold(acc).to_ne_bytes())
}

/// Whether a 20-byte IPv4 header (no options) carries a correct checksum, i.e.
/// `sum_ipv4_header(hdr) == 0xffff`, without folding: the receive fast path's test.
///
/// The five 32-bit native-order words add into a u64 that cannot overflow. Since
/// `2^16 ≡ 1 (mod 0xffff)`, a sum of 16-bit words is congruent mod `0xffff` to its folded
/// one's-complement sum, and a fold of a non-zero value is never 0; so the folded sum is
/// `0xffff` exactly when the plain sum is non-zero and divisible by `0xffff`. Byte order does not
/// matter: swapping the bytes of a word multiplies it by 256 mod `0xffff`, which is invertible.
///
/// The test is one multiply and one compare (the exact-division trick of Granlund and
/// Montgomery, "Division by invariant integers using multiplication", 1994; Hacker's Delight,
/// ch. 10, testing for a zero remainder): multiplying by the inverse of `0xffff` mod 2^64 maps
/// the multiples `k * 0xffff` (`k <= u64::MAX / 0xffff`) onto `k` and everything else above
/// `u64::MAX / 0xffff`, so `acc * inv - 1 < u64::MAX / 0xffff` says "a non-zero multiple" (for
/// `acc == 0` the subtraction wraps to `u64::MAX`).
#[inline]
pub fn ipv4_header_valid(hdr: &[u8; 20]) -> bool {
    let acc = header_words(hdr);
    acc.wrapping_mul(INV_FFFF).wrapping_sub(1) < u64::MAX / 0xffff
}

/// The inverse of `0xffff` modulo 2^64 (Newton's iteration, each step doubling the correct low
/// bits from the 3 that `x = d` has for odd `d`).
const INV_FFFF: u64 = {
    let d: u64 = 0xffff;
    let mut x = d;
    let mut i = 0;
    while i < 5 {
        x = x.wrapping_mul(2u64.wrapping_sub(d.wrapping_mul(x)));
        i += 1;
    }
    assert!(d.wrapping_mul(x) == 1);
    x
};

/// Byte-pair one's-complement sum, folding at every step: the plain reading of RFC 1071 §4.1,
/// kept as the oracle for [`sum`] in tests and fuzz targets. Not for the data path.
pub fn sum_reference(data: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
        acc += u32::from(word);
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum to store in a header whose checksum field is currently zero: `!sum(data)`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// RFC 1624 eqn. 3: the new checksum after a 16-bit word of the covered data changes from `old`
/// to `new`. `check` is the checksum field as read (big-endian) from the header.
#[inline]
pub const fn update_u16(check: u16, old: u16, new: u16) -> u16 {
    !fold((!check) as u64 + (!old) as u64 + new as u64)
}

/// RFC 1624 eqn. 3 for a 32-bit field (an IPv4 address): both 16-bit halves at once.
#[inline]
pub const fn update_u32(check: u16, old: u32, new: u32) -> u16 {
    let acc = (!check) as u64
        + (!(old >> 16) & 0xffff) as u64
        + (!old & 0xffff) as u64
        + (new >> 16) as u64
        + (new & 0xffff) as u64;
    !fold(acc)
}

/// The IPv4 header checksum after decrementing a TTL that was at least 1, as Linux's
/// `ip_decrease_ttl()` computes it (`include/net/ip.h`):
///
/// ```c
/// u32 check = (__force u32)iph->check;
/// check += (__force u32)htons(0x0100);
/// iph->check = (__force __sum16)(check + (check>=0xFFFF));
/// ```
///
/// The TTL is the high byte of the header's fifth 16-bit word, so the word drops by `0x0100`
/// and, by RFC 1624 eqn. 3, the checksum rises by `0x0100` in one's-complement arithmetic. The
/// `>=` (not `>`) is the fix Linux records for `check == 0xfeff` ("The function in 2.2 was
/// invalid, producing wrong result for check=0xFEFF"): `0xfeff + 0x0100 = 0xffff` must become
/// `0x0000`, because eqn. 3 never yields `0xffff` (RFC 1624 §3), and a checksum computed from
/// scratch over a real header is never `0xffff` either.
///
/// Valid only for a TTL of at least 1 before the decrement (a router never decrements 0).
#[inline]
pub const fn ip_decrease_ttl(check: u16) -> u16 {
    let c = check as u32 + 0x0100;
    (c + (c >= 0xffff) as u32) as u16
}

/// The one's-complement sum of the IPv4 pseudo-header that UDP and TCP checksums cover
/// (RFC 768, RFC 9293 §3.1): source, destination, zero, protocol, and the transport length.
#[inline]
pub const fn pseudo_header_sum(src: u32, dst: u32, protocol: u8, length: u16) -> u16 {
    fold(
        (src >> 16) as u64
            + (src & 0xffff) as u64
            + (dst >> 16) as u64
            + (dst & 0xffff) as u64
            + protocol as u64
            + length as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 1071 §3 worked example: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(sum_reference(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    /// A real header (ping from Linux, see `testdata`): it verifies, and recomputing its checksum
    /// from a zeroed field gives back the captured value 0x69f1.
    #[test]
    fn captured_ipv4_header() {
        let mut hdr: [u8; 20] = crate::wire::testdata::ECHO_REQUEST[14..34]
            .try_into()
            .unwrap();
        assert_eq!(sum(&hdr), 0xffff);
        assert_eq!(sum_ipv4_header(&hdr), 0xffff);
        hdr[10] = 0;
        hdr[11] = 0;
        assert_eq!(checksum(&hdr), 0x69f1);
    }

    #[test]
    fn empty_and_zero_data_sum_to_zero() {
        assert_eq!(sum(&[]), 0);
        assert_eq!(sum(&[0; 37]), 0);
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn odd_trailing_byte_is_high_byte() {
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[0x00, 0x01, 0xab]), 0xab01);
    }

    #[test]
    fn fold_carries_end_around() {
        assert_eq!(fold(0), 0);
        assert_eq!(fold(0xffff), 0xffff);
        assert_eq!(fold(0x1_0000), 0x0001);
        assert_eq!(fold(0x1_fffe), 0xffff);
        assert_eq!(fold(u64::MAX), 0xffff);
        assert_eq!(add(0xffff, 0x0001), 0x0001);
        assert_eq!(add(0x8000, 0x8000), 0x0001);
    }

    /// The divisibility test at its edges: zero, the smallest and largest multiples of 0xffff a
    /// header can sum to, and their neighbours.
    #[test]
    fn header_valid_edges() {
        let hdr = |words: [u32; 5]| {
            let mut h = [0u8; 20];
            for (c, w) in h.chunks_mut(4).zip(words) {
                c.copy_from_slice(&w.to_ne_bytes());
            }
            h
        };
        for words in [
            [0; 5],
            [0xffff, 0, 0, 0, 0],
            [0xfffe, 0, 0, 0, 0],
            [0x1_0000, 0, 0, 0, 0],
            [u32::MAX; 5],
            [u32::MAX, u32::MAX, u32::MAX, u32::MAX, u32::MAX - 1],
            [0xffff_0000, 0xffff, 0, 0, 0],
            [1, 0, 0, 0, 0],
        ] {
            let h = hdr(words);
            assert_eq!(
                ipv4_header_valid(&h),
                sum_reference(&h) == 0xffff,
                "{words:x?}"
            );
        }
        assert!(ipv4_header_valid(&hdr([0xffff, 0, 0, 0, 0])));
        assert!(!ipv4_header_valid(&[0; 20]));
    }

    /// RFC 1624 §4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 must give 0x0000 (eqn. 3), not the
    /// 0xffff that RFC 1141's eqn. 2 produces.
    #[test]
    fn rfc1624_section4_example() {
        assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    /// Linux's `ip_decrease_ttl` edge: check 0xfeff must become 0x0000, not 0xffff.
    #[test]
    fn ip_decrease_ttl_feff_edge() {
        assert_eq!(ip_decrease_ttl(0xfeff), 0x0000);
        // The naive `check + 0x100` with carry only above 0xffff gets it wrong.
        let naive = |c: u16| {
            let s = u32::from(c) + 0x100;
            ((s & 0xffff) + (s >> 16)) as u16
        };
        assert_eq!(naive(0xfeff), 0xffff);
        assert_eq!(ip_decrease_ttl(0xff00), 0x0001);
        assert_eq!(ip_decrease_ttl(0xfffe), 0x00ff);
        assert_eq!(ip_decrease_ttl(0x1234), 0x1334);
    }

    /// Exhaustive: the Linux form equals RFC 1624 eqn. 3 for every checksum value and for a
    /// spread of (TTL, protocol) words.
    #[test]
    fn ip_decrease_ttl_is_eqn3_for_every_checksum() {
        for check in 0..=u16::MAX {
            for (ttl, proto) in [(1u8, 0u8), (2, 1), (64, 6), (128, 17), (255, 255)] {
                let old = u16::from_be_bytes([ttl, proto]);
                let new = u16::from_be_bytes([ttl - 1, proto]);
                assert_eq!(
                    ip_decrease_ttl(check),
                    update_u16(check, old, new),
                    "check {check:#06x} ttl {ttl}"
                );
            }
        }
    }

    /// Builds a random header-like buffer: IPv4 version nibble, IHL from the length, checksum
    /// field (bytes 10..12) filled. The version nibble keeps the sum away from the all-zero case.
    fn header_strategy() -> impl Strategy<Value = Vec<u8>> {
        (5usize..=15).prop_flat_map(|ihl| {
            proptest::collection::vec(any::<u8>(), ihl * 4).prop_map(move |mut h| {
                h[0] = 0x40 | ihl as u8;
                h[10] = 0;
                h[11] = 0;
                let c = checksum(&h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
                h
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn fast_sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            prop_assert_eq!(sum(&data), sum_reference(&data));
        }

        #[test]
        fn fast_sum_matches_reference_at_any_offset(
            data in proptest::collection::vec(any::<u8>(), 0..200), start in 0usize..17,
        ) {
            let start = start.min(data.len());
            prop_assert_eq!(sum(&data[start..]), sum_reference(&data[start..]));
        }

        #[test]
        fn unrolled_header_sum_matches_reference(hdr in any::<[u8; 20]>()) {
            prop_assert_eq!(sum_ipv4_header(&hdr), sum_reference(&hdr));
        }

        #[test]
        fn header_valid_matches_sum_of_any_words(words in any::<[u32; 5]>()) {
            let mut hdr = [0u8; 20];
            for (c, w) in hdr.chunks_mut(4).zip(words) {
                c.copy_from_slice(&w.to_ne_bytes());
            }
            prop_assert_eq!(ipv4_header_valid(&hdr), sum_reference(&hdr) == 0xffff);
        }

        #[test]
        fn header_valid_matches_sum(hdr in any::<[u8; 20]>(), fix in any::<bool>(), zero in any::<bool>()) {
            let mut hdr = hdr;
            if zero {
                hdr = [0; 20];
            }
            if fix {
                hdr[10] = 0;
                hdr[11] = 0;
                let c = checksum(&hdr);
                hdr[10..12].copy_from_slice(&c.to_be_bytes());
            }
            prop_assert_eq!(ipv4_header_valid(&hdr), sum_reference(&hdr) == 0xffff);
        }

        #[test]
        fn checksum_then_verify(mut h in header_strategy()) {
            prop_assert_eq!(sum(&h), 0xffff);
            h[10] = 0;
            h[11] = 0;
            prop_assert_ne!(checksum(&h), 0xffff, "a non-zero header never checksums to 0xffff");
        }

        /// Incremental TTL decrement == full recomputation, for random headers and TTLs.
        #[test]
        fn ttl_decrement_matches_recompute(mut h in header_strategy(), ttl in 1u8..=255) {
            h[8] = ttl;
            h[10] = 0;
            h[11] = 0;
            let c = checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());

            h[8] = ttl - 1;
            let incremental = ip_decrease_ttl(c);
            h[10] = 0;
            h[11] = 0;
            prop_assert_eq!(incremental, checksum(&h));
        }

        /// Incremental 16- and 32-bit updates == full recomputation.
        #[test]
        fn update_matches_recompute(
            mut h in header_strategy(), word in 0usize..10, new16 in any::<u16>(), new32 in any::<u32>(),
        ) {
            prop_assume!(word != 5, "word 5 is the checksum itself");
            let at = word * 2;
            let check = u16::from_be_bytes([h[10], h[11]]);
            let old16 = u16::from_be_bytes([h[at], h[at + 1]]);
            h[at..at + 2].copy_from_slice(&new16.to_be_bytes());
            let inc = update_u16(check, old16, new16);
            let mut z = h.clone();
            z[10] = 0;
            z[11] = 0;
            // The version nibble may have been overwritten: eqn. 3 still agrees with a full
            // recomputation unless the data became all zero.
            prop_assume!(z.iter().any(|&b| b != 0));
            prop_assert_eq!(inc, checksum(&z));

            // A 32-bit address field (source, bytes 12..16).
            h[10..12].copy_from_slice(&inc.to_be_bytes());
            let old32 = u32::from_be_bytes(h[12..16].try_into().unwrap());
            h[12..16].copy_from_slice(&new32.to_be_bytes());
            let inc32 = update_u32(inc, old32, new32);
            let mut z = h.clone();
            z[10] = 0;
            z[11] = 0;
            prop_assume!(z.iter().any(|&b| b != 0));
            prop_assert_eq!(inc32, checksum(&z));
        }

        #[test]
        fn pseudo_header_matches_bytes(src in any::<u32>(), dst in any::<u32>(), proto in any::<u8>(), len in any::<u16>()) {
            let mut b = Vec::new();
            b.extend_from_slice(&src.to_be_bytes());
            b.extend_from_slice(&dst.to_be_bytes());
            b.extend_from_slice(&[0, proto]);
            b.extend_from_slice(&len.to_be_bytes());
            prop_assert_eq!(pseudo_header_sum(src, dst, proto, len), sum_reference(&b));
        }

        /// Independent oracle: etherparse's checksum agrees on arbitrary data. (etherparse sums
        /// native-order words and returns the checksum in native layout: its bytes, stored
        /// natively, are the field's bytes.)
        #[test]
        fn sum_matches_etherparse(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let theirs = etherparse::checksum::Sum16BitWords::new().add_slice(&data).ones_complement();
            prop_assert_eq!(checksum(&data), u16::from_be_bytes(theirs.to_ne_bytes()));
        }
    }
}

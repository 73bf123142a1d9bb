//! `ip_fragment`: splitting a datagram larger than the egress MTU (DF clear) into fragments,
//! as Linux `ip_do_fragment()`'s slow path (`net/ipv4/ip_output.c`) does.
//!
//! - Every fragment carries the original header (options included in the first; in later ones
//!   the options without the copied flag become NOOPs, `ip_options_fragment`, so the header
//!   length stays the same), its own total length, offset, MF and checksum, the same ID.
//! - Payload per fragment: `mtu - header_len` rounded down to a multiple of 8, except the last.
//! - A fragment of a fragment keeps its place: offsets are added to the original offset, and
//!   MF is set on the last piece when the original had MF.

use crate::node::ip4_options;
use crate::wire::checksum;

/// Iterates over the fragments of one datagram.
#[derive(Debug)]
pub struct Fragmenter {
    hl: usize,
    total: usize,
    /// Payload bytes per fragment except the last (multiple of 8).
    step: usize,
    /// Next payload offset, relative to this datagram's payload.
    pos: usize,
    base_off: usize,
    orig_mf: bool,
}

impl Fragmenter {
    /// Fragments of `ip` (a valid IPv4 datagram, exactly `total_len` bytes) for `mtu`; `None`
    /// when the header leaves no room for 8 bytes of payload.
    pub fn new(ip: &[u8], mtu: usize) -> Option<Self> {
        let hl = usize::from(ip[0] & 0x0f) * 4;
        let ff = u16::from_be_bytes([ip[6], ip[7]]);
        let step = mtu.checked_sub(hl)? & !7;
        if step == 0 {
            return None;
        }
        Some(Fragmenter {
            hl,
            total: ip.len(),
            step,
            pos: 0,
            base_off: usize::from(ff & 0x1fff) * 8,
            orig_mf: ff & 0x2000 != 0,
        })
    }

    /// How many fragments there are in all.
    pub fn count(&self) -> usize {
        (self.total - self.hl).div_ceil(self.step).max(1)
    }

    /// Writes the next fragment of `ip` into `out` and returns its length, or `None` when done.
    ///
    /// # Panics
    ///
    /// If `out` is shorter than the fragment.
    pub fn next_into(&mut self, ip: &[u8], out: &mut [u8]) -> Option<usize> {
        let payload = self.total - self.hl;
        if self.pos >= payload && !(payload == 0 && self.pos == 0) {
            return None;
        }
        let len = (payload - self.pos).min(self.step);
        let first = self.pos == 0;
        out[..self.hl].copy_from_slice(&ip[..self.hl]);
        if !first {
            ip4_options::fragment(&mut out[..self.hl]);
        }
        out[self.hl..self.hl + len]
            .copy_from_slice(&ip[self.hl + self.pos..self.hl + self.pos + len]);
        let more = self.pos + len < payload || self.orig_mf;
        let off = (self.base_off + self.pos) / 8;
        let ff = (u16::from_be_bytes([ip[6], ip[7]]) & 0x4000)
            | if more { 0x2000 } else { 0 }
            | (off as u16 & 0x1fff);
        let h = &mut out[..self.hl];
        h[2..4].copy_from_slice(&((self.hl + len) as u16).to_be_bytes());
        h[6..8].copy_from_slice(&ff.to_be_bytes());
        h[10..12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        self.pos += len.max(1);
        Some(self.hl + len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn datagram(payload: usize, opts: &[u8], off: u16, mf: bool) -> Vec<u8> {
        let hl = 20 + opts.len();
        let mut p = vec![0u8; hl + payload];
        p[0] = 0x40 | (hl / 4) as u8;
        p[2..4].copy_from_slice(&((hl + payload) as u16).to_be_bytes());
        p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        p[6..8].copy_from_slice(&((off / 8) | if mf { 0x2000 } else { 0 }).to_be_bytes());
        p[8] = 63;
        p[9] = 17;
        p[12..16].copy_from_slice(&[10, 0, 1, 2]);
        p[16..20].copy_from_slice(&[10, 0, 2, 2]);
        p[20..hl].copy_from_slice(opts);
        for (i, b) in p[hl..].iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        let c = checksum::checksum(&p[..hl]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn split(p: &[u8], mtu: usize) -> Vec<Vec<u8>> {
        let mut f = Fragmenter::new(p, mtu).unwrap();
        let n = f.count();
        let mut out = Vec::new();
        let mut buf = vec![0u8; mtu];
        while let Some(len) = f.next_into(p, &mut buf) {
            out.push(buf[..len].to_vec());
        }
        assert_eq!(out.len(), n);
        out
    }

    /// Reassembles (RFC 815 style, for the test) into (offset, mf, payload).
    fn reassemble(frags: &[Vec<u8>]) -> (usize, bool, Vec<u8>) {
        let mut pieces: Vec<(usize, bool, &[u8])> = frags
            .iter()
            .map(|f| {
                let hl = usize::from(f[0] & 0x0f) * 4;
                let ff = u16::from_be_bytes([f[6], f[7]]);
                (usize::from(ff & 0x1fff) * 8, ff & 0x2000 != 0, &f[hl..])
            })
            .collect();
        pieces.sort_by_key(|p| p.0);
        let start = pieces[0].0;
        let mut data = Vec::new();
        for (off, _, d) in &pieces {
            assert_eq!(*off, start + data.len(), "no gap, no overlap");
            data.extend_from_slice(d);
        }
        (start, pieces.last().unwrap().1, data)
    }

    #[test]
    fn options_copied_only_when_flagged() {
        // RR (not copied) + LSRR (copied) + END padding.
        let opts = [7, 7, 4, 0, 0, 0, 0, 131, 7, 4, 1, 2, 3, 4, 0, 0];
        let p = datagram(3000, &opts, 0, false);
        let f = split(&p, 1500);
        assert_eq!(f[0][20..36], opts);
        assert_eq!(f[1][20..27], [1; 7]);
        assert_eq!(f[1][27..34], opts[7..14]);
    }

    proptest! {
        #[test]
        fn fragments_reassemble_to_the_original(
            payload in 0usize..4000,
            mtu in 68usize..1600,
            nopts in 0usize..5,
            off8 in 0u16..100,
            mf: bool,
        ) {
            let opts = vec![1u8; nopts * 4];
            let p = datagram(payload, &opts, off8 * 8, mf);
            let hl = 20 + opts.len();
            prop_assume!(mtu >= hl + 8);
            let frags = split(&p, mtu);
            for f in &frags {
                prop_assert!(f.len() <= mtu);
                prop_assert_eq!(checksum::sum(&f[..hl]), 0xffff);
                prop_assert_eq!(usize::from(u16::from_be_bytes([f[2], f[3]])), f.len());
                prop_assert_eq!(&f[4..6], &p[4..6]);
                prop_assert_eq!(&f[8..10], &p[8..10]);
                prop_assert_eq!(&f[12..20], &p[12..20]);
            }
            for f in &frags[..frags.len() - 1] {
                prop_assert_eq!((f.len() - hl) % 8, 0);
                prop_assert!(f[6] & 0x20 != 0, "MF on all but the last");
            }
            let (start, last_mf, data) = reassemble(&frags);
            prop_assert_eq!(start, usize::from(off8) * 8);
            prop_assert_eq!(last_mf, mf);
            prop_assert_eq!(&data[..], &p[hl..]);
        }
    }
}

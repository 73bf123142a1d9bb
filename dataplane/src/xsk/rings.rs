//! The four rings of one AF_XDP socket and the batch operations that move [`Frame`] tokens
//! through them.
//!
//! Follows `Documentation/networking/af_xdp.rst` ("Rings"): user space produces chunk addresses
//! into the fill ring and packet descriptors into the TX ring, and consumes packet descriptors
//! from the RX ring and chunk addresses from the completion ring.
//!
//! ```text
//!            fill(free)                       recv(out)
//!   free ───────────────► FILL ──► kernel ──► RX ───────────► app
//!   free ◄─────────────── COMP ◄── kernel ◄── TX ◄─────────── app
//!            complete(free)                   send(frames)
//! ```
//!
//! Every operation moves a batch with one shared-index load at most and one index store, and
//! never allocates: the caller owns the `Vec`s, and the consuming operations add at most
//! `capacity() - len()` tokens to them.

use super::ring::{Consumer, Producer};
use super::sys::XdpDesc;
use super::umem::{Frame, Geometry};

/// Counters of the token layer: events that mean a bug somewhere, kept instead of panicking.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XskCounters {
    /// RX descriptors naming no chunk of the UMEM (dropped) or overrunning their chunk (length
    /// clamped). Zero with a correct kernel.
    pub rx_bad_desc: u64,
    /// Completion addresses naming no chunk of the UMEM (dropped). Zero with a correct kernel.
    pub comp_bad_addr: u64,
    /// Empty frames `send` kept back: the kernel would reject them (`tx_invalid_descs`) and never
    /// complete them.
    pub tx_empty_kept: u64,
    /// Frames of another UMEM that `fill` or `send` kept back.
    pub foreign_kept: u64,
    /// `sendto` kicks issued for TX.
    pub tx_kicks: u64,
    /// TX kicks the kernel answered with a "try later" error.
    pub tx_kick_retries: u64,
    /// `recvfrom` wakeups issued for RX/fill.
    pub rx_wakeups: u64,
}

/// The fill, completion, RX and TX rings of one socket, bound to one UMEM.
///
/// [`XskSocket`](super::XskSocket) wraps one with its file descriptor; a simulated one comes from
/// [`sim::pair`](super::sim::pair) for tests without a kernel.
#[derive(Debug)]
pub struct XskRings {
    pub(crate) fill: Producer<u64>,
    pub(crate) comp: Consumer<u64>,
    pub(crate) rx: Consumer<XdpDesc>,
    pub(crate) tx: Producer<XdpDesc>,
    pub(crate) geom: Geometry,
    pub(crate) counters: XskCounters,
}

impl XskRings {
    /// Gives up to `max` frames from the end of `free` to the kernel for receiving; returns how
    /// many. Frames of another UMEM stay in `free` (counted in
    /// [`XskCounters::foreign_kept`]).
    #[inline]
    pub fn fill(&mut self, free: &mut Vec<Frame>, max: usize) -> usize {
        let want = clamp_u32(max.min(free.len()));
        let room = self.fill.free(want).min(want);
        let umem = self.geom.umem_id;
        // Walk from the end; refused tokens are swapped into a kept zone at the very end, so the
        // produced ones end up contiguous in [i, len - kept) and leave with one truncate/drain.
        let len = free.len();
        let (mut i, mut written, mut kept) = (len, 0u32, 0usize);
        // Invariant after each step: [i, len - kept) were produced, [len - kept, len) are refused.
        while i > 0 && written < room {
            i -= 1;
            let f = &free[i];
            if f.umem_id() == umem {
                // Aligned mode: the kernel masks the address down to the chunk base anyway.
                self.fill
                    .write(written, u64::from(f.chunk_index()) << self.geom.shift);
                written += 1;
            } else {
                kept += 1;
                free.swap(i, len - kept);
            }
        }
        self.fill.submit(written);
        self.counters.foreign_kept += kept as u64;
        free.drain(i..len - kept);
        written as usize
    }

    /// Takes up to `max` transmitted frames back from the completion ring, appending them to
    /// `free` as fresh frames (empty, data offset at the receive headroom); returns how many.
    /// Never grows `free` beyond its capacity.
    #[inline]
    pub fn complete(&mut self, free: &mut Vec<Frame>, max: usize) -> usize {
        let want = clamp_u32(max.min(free.capacity() - free.len()));
        let n = self.comp.available(want).min(want);
        for i in 0..n {
            let addr = self.comp.read(i);
            match self.geom.chunk_of(addr) {
                Some(chunk) => free.push(self.geom.fresh(chunk)),
                None => self.counters.comp_bad_addr += 1,
            }
        }
        self.comp.release(n);
        n as usize
    }

    /// Takes up to `max` received packets from the RX ring, appending their frames to `out`;
    /// returns how many descriptors were consumed. Never grows `out` beyond its capacity.
    #[inline]
    pub fn recv(&mut self, out: &mut Vec<Frame>, max: usize) -> usize {
        let want = clamp_u32(max.min(out.capacity() - out.len()));
        let n = self.rx.available(want).min(want);
        for i in 0..n {
            let desc = self.rx.read(i);
            if let Some(frame) = self.rx_frame(desc) {
                out.push(frame);
            }
        }
        self.rx.release(n);
        n as usize
    }

    /// Turns an RX descriptor into a token, checking it names a chunk of this UMEM and stays in it.
    #[inline]
    fn rx_frame(&mut self, desc: XdpDesc) -> Option<Frame> {
        let Some(chunk) = self.geom.chunk_of(desc.addr) else {
            self.counters.rx_bad_desc += 1;
            return None;
        };
        let offset = self.geom.offset_of(desc.addr);
        let room = self.geom.frame_size() - usize::from(offset);
        let len = if desc.len as usize > room || desc.options > u32::from(u8::MAX) {
            self.counters.rx_bad_desc += 1;
            room.min(desc.len as usize)
        } else {
            desc.len as usize
        };
        Some(Frame::new(
            &self.geom,
            chunk,
            offset,
            len as u16,
            desc.options as u8,
        ))
    }

    /// Queues frames from the front of `frames` on the TX ring, in order, as many as fit; returns
    /// how many. The rest stay in `frames`, in order, for a later call. Empty frames and frames
    /// of another UMEM are never queued (the kernel would drop an empty descriptor without
    /// completing it): they stay at the front of `frames` and are counted in [`XskCounters`].
    ///
    /// Queuing is not sending: the kernel transmits after a kick when
    /// [`tx_needs_wakeup`](Self::tx_needs_wakeup) says so (always in copy mode).
    #[inline]
    pub fn send(&mut self, frames: &mut Vec<Frame>) -> usize {
        let want = clamp_u32(frames.len());
        let room = self.tx.free(want).min(want);
        let umem = self.geom.umem_id;
        // Refused tokens are swapped into a kept zone at the front, in order; the queued ones end
        // up contiguous in [kept, i) and leave with one drain (a memmove of the tail).
        let (mut i, mut written, mut kept) = (0usize, 0u32, 0usize);
        while i < frames.len() && written < room {
            let f = &frames[i];
            if f.umem_id() != umem {
                self.counters.foreign_kept += 1;
                frames.swap(kept, i);
                kept += 1;
            } else if f.is_empty() {
                self.counters.tx_empty_kept += 1;
                frames.swap(kept, i);
                kept += 1;
            } else {
                self.tx.write(
                    written,
                    XdpDesc {
                        addr: f.addr(),
                        len: f.len() as u32,
                        options: 0,
                    },
                );
                written += 1;
            }
            i += 1;
        }
        self.tx.submit(written);
        frames.drain(kept..i);
        written as usize
    }

    /// Whether the kernel must be kicked (`sendto`) to transmit what the TX ring holds.
    #[inline]
    pub fn tx_needs_wakeup(&self) -> bool {
        self.tx.needs_wakeup()
    }

    /// Whether the kernel must be woken (`recvfrom`/`poll`) to take buffers from the fill ring.
    #[inline]
    pub fn fill_needs_wakeup(&self) -> bool {
        self.fill.needs_wakeup()
    }

    /// Counters of this socket's token layer.
    pub fn counters(&self) -> XskCounters {
        self.counters
    }

    /// Entries in each ring, published and not yet taken by the other side:
    /// `[fill, rx, tx, completion]`. For accounting and statistics; reads shared indices.
    pub fn occupancy(&self) -> [u32; 4] {
        [
            self.fill.occupancy(),
            self.rx.occupancy(),
            self.tx.occupancy(),
            self.comp.occupancy(),
        ]
    }

    /// Ring sizes `[fill, rx, tx, completion]`.
    pub fn sizes(&self) -> [u32; 4] {
        [
            self.fill.size(),
            self.rx.size(),
            self.tx.size(),
            self.comp.size(),
        ]
    }
}

/// Batch sizes are at most a ring (`u32`); saturate larger requests.
#[inline]
fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

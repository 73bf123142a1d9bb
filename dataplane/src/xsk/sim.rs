//! A simulated kernel: the peer side of an [`XskRings`] over rings in our own memory, for ring,
//! UMEM and worker tests without a kernel, and for in-memory benchmarks.
//!
//! It plays the copy-mode kernel of `net/xdp/xsk.c`: [`SimKernel::receive`] takes buffers from
//! the fill ring, writes packets into them and posts them on RX (`__xsk_rcv`);
//! [`SimKernel::transmit`] takes descriptors from the TX ring, validates them as
//! `xp_aligned_validate_desc()` does, reads the packets and posts the addresses on the completion
//! ring (`xsk_generic_xmit` + `xsk_destruct_skb`). Each call moves a batch atomically with respect
//! to the caller, so a chunk is always in exactly one ring or in user space.

use std::io;
use std::sync::Arc;

use super::mmap::Mmap;
use super::ring::{Consumer, HeapRing, Producer};
use super::rings::{XskCounters, XskRings};
use super::socket::SocketConfig;
use super::sys::{XDP_RING_NEED_WAKEUP, XdpDesc};
use super::umem::{Geometry, Umem};

/// What the simulated kernel has done.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SimStats {
    /// Packets posted on the RX ring.
    pub rx_delivered: u64,
    /// Fill-ring addresses outside the UMEM (dropped, like the kernel's invalid fill entries).
    pub fill_invalid: u64,
    /// Packets taken from the TX ring and completed.
    pub tx_completed: u64,
    /// TX descriptors rejected as invalid (the kernel's `tx_invalid_descs`): not completed.
    pub tx_invalid_descs: u64,
}

/// The kernel side of a simulated socket. See the [module doc](self).
#[derive(Debug)]
pub struct SimKernel {
    fill: Consumer<u64>,
    comp: Producer<u64>,
    rx: Producer<XdpDesc>,
    tx: Consumer<XdpDesc>,
    area: Arc<Mmap>,
    geom: Geometry,
    stats: SimStats,
}

/// Creates the rings of a simulated socket on `umem`: the user side ([`XskRings`], used exactly
/// like a socket's) and the kernel side ([`SimKernel`]). Ring sizes come from `cfg`.
///
/// # Errors
///
/// `InvalidInput` when a ring size in `cfg` is not a power of two.
pub fn pair(umem: &Umem, cfg: &SocketConfig) -> io::Result<(XskRings, SimKernel)> {
    pair_at(umem, cfg, 0)
}

/// Like [`pair`], with every ring index starting at `start` (to test index wrap-around).
///
/// # Errors
///
/// As [`pair`].
pub fn pair_at(umem: &Umem, cfg: &SocketConfig, start: u32) -> io::Result<(XskRings, SimKernel)> {
    cfg.validate()?;
    let (fill_p, fill_c) = HeapRing::<u64>::split(cfg.fill_size, start);
    let (comp_p, comp_c) = HeapRing::<u64>::split(cfg.comp_size, start);
    let (rx_p, rx_c) = HeapRing::<XdpDesc>::split(cfg.rx_size, start);
    let (tx_p, tx_c) = HeapRing::<XdpDesc>::split(cfg.tx_size, start);
    let geom = umem.geometry();
    let user = XskRings {
        fill: fill_p,
        comp: comp_c,
        rx: rx_c,
        tx: tx_p,
        geom,
        counters: XskCounters::default(),
    };
    let kernel = SimKernel {
        fill: fill_c,
        comp: comp_p,
        rx: rx_p,
        tx: tx_c,
        area: Arc::clone(umem.area()),
        geom,
        stats: SimStats::default(),
    };
    Ok((user, kernel))
}

impl SimKernel {
    /// Receives up to `max` packets, limited by the buffers in the fill ring and the room in the
    /// RX ring. For each, `write(i, buf)` gets the chunk's receive area (from the receive
    /// headroom to the chunk end) and returns the packet length (clamped to the area). Returns
    /// the number of packets posted.
    pub fn receive(
        &mut self,
        max: usize,
        mut write: impl FnMut(usize, &mut [u8]) -> usize,
    ) -> usize {
        let want = u32::try_from(max).unwrap_or(u32::MAX);
        let n = self.fill.available(want).min(want);
        let n = n.min(self.rx.free(n));
        let mut posted = 0;
        for i in 0..n {
            let addr = self.fill.read(i);
            let Some(chunk) = self.geom.chunk_of(addr) else {
                self.stats.fill_invalid += 1;
                continue;
            };
            let start = usize::from(self.geom.fresh_offset);
            let room = self.geom.frame_size() - start;
            // SAFETY: the chunk came off the fill ring, so user space gave up its only token for
            // it and nothing else refers to it until we post it on RX below; the window
            // [start, frame_size) lies inside the chunk, which lies inside the mapping.
            let buf = unsafe {
                std::slice::from_raw_parts_mut(
                    self.area
                        .as_ptr()
                        .add(((chunk as usize) << self.geom.shift) + start),
                    room,
                )
            };
            let len = write(posted as usize, buf).min(room);
            let addr = (u64::from(chunk) << self.geom.shift) + start as u64;
            self.rx.write(
                posted,
                XdpDesc {
                    addr,
                    len: len as u32,
                    options: 0,
                },
            );
            posted += 1;
        }
        self.fill.release(n);
        self.rx.submit(posted);
        self.stats.rx_delivered += u64::from(posted);
        posted as usize
    }

    /// Transmits up to `max` packets, limited by the descriptors in the TX ring and the room in
    /// the completion ring: validates each descriptor like the kernel (non-empty, inside one
    /// chunk, no options), passes its bytes to `read`, and completes its address. Invalid
    /// descriptors are consumed and counted but not completed, as the kernel does. Returns the
    /// number of descriptors consumed.
    pub fn transmit(&mut self, max: usize, mut read: impl FnMut(&[u8])) -> usize {
        let want = u32::try_from(max).unwrap_or(u32::MAX);
        let n = self.tx.available(want).min(want);
        let n = n.min(self.comp.free(n));
        let mut completed = 0;
        for i in 0..n {
            let d = self.tx.read(i);
            let offset = usize::from(self.geom.offset_of(d.addr));
            let valid =
                d.len != 0 && offset + d.len as usize <= self.geom.frame_size() && d.options == 0;
            let chunk = self.geom.chunk_of(d.addr).filter(|_| valid);
            let Some(chunk) = chunk else {
                self.stats.tx_invalid_descs += 1;
                continue;
            };
            // SAFETY: the chunk came off the TX ring, so user space gave up its token and nothing
            // writes it until we complete it; [offset, offset + len) lies inside the chunk (checked
            // just above), which lies inside the mapping.
            let bytes = unsafe {
                std::slice::from_raw_parts(
                    self.area
                        .as_ptr()
                        .add(((chunk as usize) << self.geom.shift) + offset),
                    d.len as usize,
                )
            };
            read(bytes);
            self.comp.write(completed, d.addr);
            completed += 1;
        }
        self.tx.release(n);
        self.comp.submit(completed);
        self.stats.tx_completed += u64::from(completed);
        n as usize
    }

    /// Sets or clears `XDP_RING_NEED_WAKEUP` on the TX ring, as a driver going idle would.
    pub fn set_tx_need_wakeup(&self, on: bool) {
        self.tx.set_flag(XDP_RING_NEED_WAKEUP, on);
    }

    /// Sets or clears `XDP_RING_NEED_WAKEUP` on the fill ring.
    pub fn set_fill_need_wakeup(&self, on: bool) {
        self.fill.set_flag(XDP_RING_NEED_WAKEUP, on);
    }

    /// What the simulated kernel has done so far.
    pub fn stats(&self) -> SimStats {
        self.stats
    }
}

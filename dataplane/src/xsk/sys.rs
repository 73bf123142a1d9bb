//! `#[repr(C)]` mirrors of the AF_XDP user-space interface and the few socket constants it needs.
//!
//! Mirrors [`include/uapi/linux/if_xdp.h`] as of Linux 6.18 (checked against the running kernel's
//! BTF: `bpftool btf dump file /sys/kernel/btf/vmlinux format c`). Every struct carries a
//! compile-time size check so a layout slip fails the build, not the kernel call.
//!
//! [`include/uapi/linux/if_xdp.h`]:
//!     https://github.com/torvalds/linux/blob/v6.18/include/uapi/linux/if_xdp.h

use std::mem::size_of;

/// Address family `AF_XDP` (`include/linux/socket.h`).
pub const AF_XDP: i32 = 44;
/// Socket option level `SOL_XDP` (`include/linux/socket.h`).
pub const SOL_XDP: i32 = 283;

// --- `sockaddr_xdp.sxdp_flags` (bind flags) ---

/// Bind using the UMEM (and, on the same device and queue, the fill/completion rings) of the
/// socket named by `sxdp_shared_umem_fd`. Must be passed alone: the kernel rejects it with
/// `EINVAL` combined with any other bind flag, and the new socket inherits copy/zero-copy mode and
/// need-wakeup from the UMEM's first socket (`xp_assign_dev_shared`).
pub const XDP_SHARED_UMEM: u16 = 1 << 0;
/// Force copy mode.
pub const XDP_COPY: u16 = 1 << 1;
/// Force zero-copy mode; bind fails (typically `EOPNOTSUPP`) where the driver cannot do it.
pub const XDP_ZEROCOPY: u16 = 1 << 2;
/// Let the kernel set [`XDP_RING_NEED_WAKEUP`] on the fill and TX rings when it must be woken.
pub const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
/// Multi-buffer (scatter-gather) packets; not used by xfwd.
pub const XDP_USE_SG: u16 = 1 << 4;

// --- `xdp_umem_reg.flags` ---

/// Unaligned chunk mode; not used by xfwd (aligned chunks keep address → chunk a shift).
pub const XDP_UMEM_UNALIGNED_CHUNK_FLAG: u32 = 1 << 0;
/// Software checksum offload for TX metadata; not used by xfwd.
pub const XDP_UMEM_TX_SW_CSUM: u32 = 1 << 1;
/// `tx_metadata_len` is valid; not used by xfwd.
pub const XDP_UMEM_TX_METADATA_LEN: u32 = 1 << 2;

/// Ring flag: the kernel wants a syscall (`sendto` for TX, `poll`/`recvfrom` for fill) to make
/// progress on this ring.
pub const XDP_RING_NEED_WAKEUP: u32 = 1 << 0;

// --- socket options at `SOL_XDP` ---

/// `getsockopt`: [`XdpMmapOffsets`].
pub const XDP_MMAP_OFFSETS: i32 = 1;
/// `setsockopt`: RX ring entries (`u32`, power of two).
pub const XDP_RX_RING: i32 = 2;
/// `setsockopt`: TX ring entries.
pub const XDP_TX_RING: i32 = 3;
/// `setsockopt`: register a UMEM, [`XdpUmemReg`].
pub const XDP_UMEM_REG: i32 = 4;
/// `setsockopt`: fill ring entries.
pub const XDP_UMEM_FILL_RING: i32 = 5;
/// `setsockopt`: completion ring entries.
pub const XDP_UMEM_COMPLETION_RING: i32 = 6;
/// `getsockopt`: [`XdpStatistics`].
pub const XDP_STATISTICS: i32 = 7;
/// `getsockopt`: [`XdpOptions`].
pub const XDP_OPTIONS: i32 = 8;
/// `setsockopt`: descriptors one copy-mode `sendto` may transmit (`u32` in `32..=tx ring size`,
/// default 32). Linux 6.17+; older kernels answer `ENOPROTOOPT`.
pub const XDP_MAX_TX_SKB_BUDGET: i32 = 9;

/// [`XdpOptions::flags`]: the socket is bound in zero-copy mode.
pub const XDP_OPTIONS_ZEROCOPY: u32 = 1 << 0;

// --- mmap page offsets of the rings ---

/// `mmap` offset of the RX ring.
pub const XDP_PGOFF_RX_RING: i64 = 0;
/// `mmap` offset of the TX ring.
pub const XDP_PGOFF_TX_RING: i64 = 0x8000_0000;
/// `mmap` offset of the fill ring.
pub const XDP_UMEM_PGOFF_FILL_RING: i64 = 0x1_0000_0000;
/// `mmap` offset of the completion ring.
pub const XDP_UMEM_PGOFF_COMPLETION_RING: i64 = 0x1_8000_0000;

// --- `xdp_desc.options` ---

/// RX/TX descriptor option: more fragments of this packet follow (multi-buffer only).
pub const XDP_PKT_CONTD: u32 = 1 << 0;
/// TX descriptor option: TX metadata precedes the data (needs `tx_metadata_len`).
pub const XDP_TX_METADATA: u32 = 1 << 1;

/// Headroom the kernel reserves in front of received data in every chunk
/// (`XDP_PACKET_HEADROOM`, `include/uapi/linux/bpf.h`). In aligned mode a received packet starts
/// at `chunk + umem headroom + XDP_PACKET_HEADROOM`.
pub const XDP_PACKET_HEADROOM: u32 = 256;
/// Smallest chunk the kernel accepts (`XDP_UMEM_MIN_CHUNK_SIZE`, `include/net/xdp_sock_drv.h`).
pub const XDP_UMEM_MIN_CHUNK_SIZE: u32 = 2048;

// --- generic socket options (`include/uapi/asm-generic/socket.h`, x86-64 and arm64) ---

/// `SO_BUSY_POLL`: busy-poll for this many microseconds in blocking and `sendto`/`recvfrom` paths.
pub const SO_BUSY_POLL: i32 = 46;
/// `SO_PREFER_BUSY_POLL`: prefer busy polling over softirq processing (Linux 5.11+).
pub const SO_PREFER_BUSY_POLL: i32 = 69;
/// `SO_BUSY_POLL_BUDGET`: packets one busy-poll round may process (Linux 5.11+).
pub const SO_BUSY_POLL_BUDGET: i32 = 70;

/// `struct sockaddr_xdp`: the address `bind(2)` takes.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SockaddrXdp {
    /// Always [`AF_XDP`].
    pub sxdp_family: u16,
    /// Bind flags (`XDP_SHARED_UMEM`, `XDP_COPY`, `XDP_ZEROCOPY`, `XDP_USE_NEED_WAKEUP`).
    pub sxdp_flags: u16,
    /// Interface index.
    pub sxdp_ifindex: u32,
    /// Queue id on that interface.
    pub sxdp_queue_id: u32,
    /// With `XDP_SHARED_UMEM`: the socket that registered the UMEM.
    pub sxdp_shared_umem_fd: u32,
}
const _: () = assert!(size_of::<SockaddrXdp>() == 16);

/// `struct xdp_ring_offset`: where producer, consumer, descriptors and flags sit in a ring mmap.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XdpRingOffset {
    /// Byte offset of the producer index (`u32`).
    pub producer: u64,
    /// Byte offset of the consumer index (`u32`).
    pub consumer: u64,
    /// Byte offset of the descriptor array.
    pub desc: u64,
    /// Byte offset of the ring flags (`u32`, Linux 5.4+).
    pub flags: u64,
}
const _: () = assert!(size_of::<XdpRingOffset>() == 32);

/// `struct xdp_mmap_offsets`: the answer to `getsockopt(XDP_MMAP_OFFSETS)`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XdpMmapOffsets {
    /// RX ring.
    pub rx: XdpRingOffset,
    /// TX ring.
    pub tx: XdpRingOffset,
    /// Fill ring.
    pub fr: XdpRingOffset,
    /// Completion ring.
    pub cr: XdpRingOffset,
}
const _: () = assert!(size_of::<XdpMmapOffsets>() == 128);

/// `struct xdp_umem_reg` in its Linux 6.8+ form (with `tx_metadata_len`), passed with its full
/// size of 32 bytes. Older kernels read the same 32 bytes as `{addr, len, chunk_size, headroom,
/// flags}` plus padding, so a zero `tx_metadata_len` is understood everywhere since 5.4.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XdpUmemReg {
    /// Start of the packet data area (page aligned).
    pub addr: u64,
    /// Length of the area in bytes (a whole number of chunks in aligned mode).
    pub len: u64,
    /// Chunk size: a power of two in `2048..=PAGE_SIZE` in aligned mode.
    pub chunk_size: u32,
    /// Bytes the kernel leaves free at the start of every chunk, before `XDP_PACKET_HEADROOM`.
    pub headroom: u32,
    /// `XDP_UMEM_*` flags.
    pub flags: u32,
    /// TX metadata length (needs [`XDP_UMEM_TX_METADATA_LEN`]); 0 here.
    pub tx_metadata_len: u32,
}
const _: () = assert!(size_of::<XdpUmemReg>() == 32);

/// `struct xdp_desc`: an RX or TX ring entry. Fill and completion entries are a bare `u64`
/// UMEM address.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XdpDesc {
    /// UMEM address of the first data byte (chunk base + offset in aligned mode).
    pub addr: u64,
    /// Data length.
    pub len: u32,
    /// `XDP_PKT_CONTD`, `XDP_TX_METADATA`.
    pub options: u32,
}
const _: () = assert!(size_of::<XdpDesc>() == 16);

/// `struct xdp_statistics`: per-socket drop counters from `getsockopt(XDP_STATISTICS)`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XdpStatistics {
    /// Received packets dropped for reasons other than an invalid descriptor (e.g. too long).
    pub rx_dropped: u64,
    /// Received packets dropped because of an invalid descriptor.
    pub rx_invalid_descs: u64,
    /// TX descriptors the kernel rejected (zero length, out of chunk, bad options). Their frames
    /// never come back on the completion ring.
    pub tx_invalid_descs: u64,
    /// Received packets dropped because the RX ring was full (Linux 5.9+).
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty (Linux 5.9+).
    pub rx_fill_ring_empty_descs: u64,
    /// Times the kernel found the TX ring empty (Linux 5.9+).
    pub tx_ring_empty_descs: u64,
}
const _: () = assert!(size_of::<XdpStatistics>() == 48);

impl XdpStatistics {
    /// The counters with their uAPI names, for reports and metrics.
    pub fn named(&self) -> [(&'static str, u64); 6] {
        [
            ("rx_dropped", self.rx_dropped),
            ("rx_invalid_descs", self.rx_invalid_descs),
            ("tx_invalid_descs", self.tx_invalid_descs),
            ("rx_ring_full", self.rx_ring_full),
            ("rx_fill_ring_empty_descs", self.rx_fill_ring_empty_descs),
            ("tx_ring_empty_descs", self.tx_ring_empty_descs),
        ]
    }
}
/// Size of `struct xdp_statistics_v1` (the first three counters, before Linux 5.9).
pub const XDP_STATISTICS_V1_SIZE: usize = 24;

/// `struct xdp_options`: the answer to `getsockopt(XDP_OPTIONS)`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XdpOptions {
    /// [`XDP_OPTIONS_ZEROCOPY`].
    pub flags: u32,
}
const _: () = assert!(size_of::<XdpOptions>() == 4);

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    /// Field offsets as in the uAPI header (sizes alone would miss a swapped pair).
    #[test]
    fn field_offsets_match_if_xdp_h() {
        assert_eq!(offset_of!(SockaddrXdp, sxdp_flags), 2);
        assert_eq!(offset_of!(SockaddrXdp, sxdp_ifindex), 4);
        assert_eq!(offset_of!(SockaddrXdp, sxdp_queue_id), 8);
        assert_eq!(offset_of!(SockaddrXdp, sxdp_shared_umem_fd), 12);
        assert_eq!(offset_of!(XdpUmemReg, chunk_size), 16);
        assert_eq!(offset_of!(XdpUmemReg, headroom), 20);
        assert_eq!(offset_of!(XdpUmemReg, flags), 24);
        assert_eq!(offset_of!(XdpUmemReg, tx_metadata_len), 28);
        assert_eq!(offset_of!(XdpDesc, len), 8);
        assert_eq!(offset_of!(XdpDesc, options), 12);
        assert_eq!(offset_of!(XdpMmapOffsets, tx), 32);
        assert_eq!(offset_of!(XdpMmapOffsets, fr), 64);
        assert_eq!(offset_of!(XdpMmapOffsets, cr), 96);
        assert_eq!(offset_of!(XdpStatistics, tx_ring_empty_descs), 40);
        assert_eq!(AF_XDP, libc::AF_XDP);
        assert_eq!(SOL_XDP, libc::SOL_XDP);
    }
}

//! AF_XDP sockets on `libc`: UMEM, ring cursors, frame tokens. This module holds all of the
//! crate's `unsafe` code; everything it exports is safe to use.
//!
//! Follows the kernel's AF_XDP interface: `Documentation/networking/af_xdp.rst`,
//! `include/uapi/linux/if_xdp.h` ([`sys`](crate::xsk::sys)) and `net/xdp/xsk.c`,
//! `xsk_queue.h`, `xdp_umem.c`, `xsk_buff_pool.c` (Linux 6.18). Minimum kernel: 5.10.
//!
//! ```text
//!  worker (one core)                                                 kernel
//!  ┌────────────────────────────────────────────────┐
//!  │ Umem: frame_count chunks, one Frame token per  │  registered by the first bind,
//!  │ chunk (move-only, branded with the UMEM's id)  │  shared by the others (XDP_SHARED_UMEM)
//!  │                                                │
//!  │  free: Vec<Frame> ──fill()──────► FILL ring ───┼──► copy path / driver writes packets
//!  │  rx batch ◄───────recv()───────── RX ring ◄────┼─── into the filled chunks
//!  │  tx batch ────────send()────────► TX ring ─────┼──► sendto() kick: transmit
//!  │  free ◄───────────complete()───── COMP ring ◄──┼─── transmitted chunks come back
//!  │                                                │
//!  │ XskSocket eth0 q0 ─┐ each: own fill/rx/tx/comp rings on one (ifindex, queue)
//!  │ XskSocket eth1 q0 ─┴ same Umem: a frame received on eth0 leaves on eth1 uncopied
//!  └────────────────────────────────────────────────┘
//! ```
//!
//! - [`Umem`](crate::xsk::Umem) / [`Frame`](crate::xsk::Frame): the packet memory and the token
//!   that owns one chunk of it (`data`/`data_mut` give its bytes; the soundness argument is in
//!   `umem.rs`).
//! - [`XskSocket`](crate::xsk::XskSocket): one bound socket; batch ops move tokens without
//!   syscalls, `kick_tx` / `wake_rx` / `poll_rx` are the syscalls, `statistics` the kernel's
//!   counters.
//! - [`XskRings`](crate::xsk::XskRings): the four rings of a socket without its fd, and
//!   [`sim`](crate::xsk::sim): a simulated kernel on the other side of them, for tests without a
//!   kernel.
//! - Memory ordering and the need_wakeup race are documented in `ring.rs`.

#![allow(
    unsafe_code,
    reason = "AF_XDP shares rings and UMEM with the kernel through mmap"
)]

mod mmap;
mod ring;
mod rings;
pub mod sim;
mod socket;
pub mod sys;
mod umem;

pub use rings::{XskCounters, XskRings};
pub use socket::{
    BindMode, BusyPoll, Kick, SocketConfig, XskSocket, ifindex, poll_rx_any, queue_count,
    statistics,
};
pub use sys::{XdpDesc, XdpStatistics};
pub use umem::{Frame, FrameBoundsError, Umem, UmemBacking, UmemConfig};

#[cfg(test)]
mod tests;

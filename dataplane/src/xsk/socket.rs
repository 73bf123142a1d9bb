//! An AF_XDP socket bound to one (interface, queue), with its rings mapped and its UMEM shared.
//!
//! Follows `Documentation/networking/af_xdp.rst` and `xsk_bind()` / `xsk_setsockopt()` /
//! `xsk_getsockopt()` / `xsk_sendmsg()` in `net/xdp/xsk.c` (Linux 6.18):
//!
//! 1. `socket(AF_XDP, SOCK_RAW)`;
//! 2. first socket of a UMEM: `XDP_UMEM_REG`; every socket: `XDP_UMEM_FILL_RING`,
//!    `XDP_UMEM_COMPLETION_RING`, `XDP_RX_RING`, `XDP_TX_RING` (a socket sharing the UMEM on
//!    another device or queue needs its own fill and completion rings);
//! 3. `XDP_MMAP_OFFSETS` and four `mmap`s;
//! 4. `bind`: the first socket with its mode and need-wakeup flags; later sockets with
//!    `XDP_SHARED_UMEM` **alone** and the first socket's fd — they inherit its copy/zero-copy
//!    mode and need-wakeup setting (`xp_assign_dev_shared()`);
//! 5. `XDP_OPTIONS` tells which mode the bind got.
//!
//! Minimum kernel: 5.10 (shared UMEM across devices and queues, need-wakeup, `XDP_OPTIONS`).

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::mmap::Mmap;
use super::ring::{Consumer, Producer, ring_mmap_len};
use super::rings::{XskCounters, XskRings};
use super::sys::*;
use super::umem::{Frame, Primary, Umem, has_cap_ipc_lock, memlock_error, memlock_limit};

/// How to bind: zero-copy, copy, or whichever the driver can do.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// Try `XDP_ZEROCOPY`; if the bind fails, bind with `XDP_COPY` and record why
    /// ([`XskSocket::zero_copy_refused`]).
    #[default]
    Auto,
    /// `XDP_ZEROCOPY`, or fail.
    ZeroCopy,
    /// `XDP_COPY`: works on every driver (and on veth, the only mode there).
    Copy,
}

/// Kernel busy polling for this socket (`SO_BUSY_POLL` and friends, Linux 5.11+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyPoll {
    /// `SO_BUSY_POLL`: microseconds to busy-poll the device queue in `sendto`/`recvfrom`/`poll`.
    pub usecs: u32,
    /// `SO_BUSY_POLL_BUDGET`: packets per busy-poll round.
    pub budget: u16,
    /// `SO_PREFER_BUSY_POLL`: keep softirq processing off the queue while the application polls.
    pub prefer: bool,
}

/// Ring sizes and binding options of one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketConfig {
    /// RX ring entries (power of two).
    pub rx_size: u32,
    /// TX ring entries (power of two).
    pub tx_size: u32,
    /// Fill ring entries (power of two).
    pub fill_size: u32,
    /// Completion ring entries (power of two).
    pub comp_size: u32,
    /// Zero-copy, copy or either.
    pub mode: BindMode,
    /// Bind with `XDP_USE_NEED_WAKEUP`: kick only when the kernel sets the ring flag.
    pub need_wakeup: bool,
    /// Kernel busy polling, if wanted. Setting it needs `CAP_NET_ADMIN` beyond the sysctl values.
    pub busy_poll: Option<BusyPoll>,
    /// `XDP_MAX_TX_SKB_BUDGET` (Linux 6.17+): descriptors one copy-mode `sendto` may transmit,
    /// in `32..=tx_size`. `None` keeps the kernel default of 32.
    pub tx_budget: Option<u32>,
}

impl Default for SocketConfig {
    /// 2048-entry rings (libxdp's default), `Auto` mode, need-wakeup on, no busy polling.
    fn default() -> Self {
        SocketConfig {
            rx_size: 2048,
            tx_size: 2048,
            fill_size: 2048,
            comp_size: 2048,
            mode: BindMode::Auto,
            need_wakeup: true,
            busy_poll: None,
            tx_budget: None,
        }
    }
}

impl SocketConfig {
    /// Checks ring sizes and option ranges.
    ///
    /// # Errors
    ///
    /// `InvalidInput`, naming the bad field and value.
    pub fn validate(&self) -> io::Result<()> {
        for (name, v) in [
            ("rx_size", self.rx_size),
            ("tx_size", self.tx_size),
            ("fill_size", self.fill_size),
            ("comp_size", self.comp_size),
        ] {
            if !v.is_power_of_two() || v > 1 << 30 {
                return Err(invalid(format!(
                    "SocketConfig.{name} = {v}: ring sizes must be powers of two from 1 to 2^30"
                )));
            }
        }
        if let Some(bp) = self.busy_poll
            && i32::try_from(bp.usecs).is_err()
        {
            return Err(invalid(format!(
                "SocketConfig.busy_poll.usecs = {}: too large",
                bp.usecs
            )));
        }
        if let Some(b) = self.tx_budget
            && !(32..=self.tx_size).contains(&b)
        {
            return Err(invalid(format!(
                "SocketConfig.tx_budget = {b}: must be in 32..={} (the TX ring size)",
                self.tx_size
            )));
        }
        Ok(())
    }
}

/// Outcome of a wakeup syscall (`sendto` for TX, `recvfrom` for RX) that did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// The kernel took the call.
    Done,
    /// `EAGAIN`: the kernel stopped early (copy mode: TX budget spent, completion ring full, or
    /// socket send buffer full). Frames stay queued; kick again later.
    Again,
    /// `EBUSY`: the device dropped a packet or the kernel is busy; kick again later.
    Busy,
    /// `ENOBUFS`: out of buffers; kick again later.
    NoBufs,
    /// `ENETDOWN`: the interface is down; frames stay queued until it comes up.
    NetDown,
}

impl Kick {
    fn from_errno(errno: i32) -> Option<Kick> {
        match errno {
            libc::EAGAIN => Some(Kick::Again),
            libc::EBUSY => Some(Kick::Busy),
            libc::ENOBUFS => Some(Kick::NoBufs),
            libc::ENETDOWN => Some(Kick::NetDown),
            _ => None,
        }
    }
}

/// An AF_XDP socket on one (interface, queue) with its four rings, sharing a worker's [`Umem`].
///
/// The batch operations ([`fill`](Self::fill), [`complete`](Self::complete),
/// [`recv`](Self::recv), [`send`](Self::send)) move [`Frame`] tokens and make no syscalls; the
/// kernel is woken explicitly with [`kick_tx`](Self::kick_tx) / [`wake_rx`](Self::wake_rx) when
/// [`tx_needs_wakeup`](Self::tx_needs_wakeup) / [`fill_needs_wakeup`](Self::fill_needs_wakeup)
/// say so.
#[derive(Debug)]
pub struct XskSocket {
    rings: XskRings,
    fd: Arc<OwnedFd>,
    ifindex: u32,
    queue: u32,
    zero_copy: bool,
    need_wakeup: bool,
    shared: bool,
    zero_copy_refused: Option<String>,
}

impl XskSocket {
    /// Opens a socket on interface `ifname`, queue `queue`, using `umem`.
    ///
    /// The first socket bound on a UMEM registers it; later ones share it (`XDP_SHARED_UMEM`)
    /// and must be on another interface or queue.
    ///
    /// # Errors
    ///
    /// Every failure names the interface and queue, and says what the kernel refused:
    /// `NotFound` for an unknown interface, `InvalidInput` for a bad [`SocketConfig`] or a queue
    /// the interface does not have, `PermissionDenied` for missing capabilities or memlock limits,
    /// `Unsupported` for zero-copy on a driver without it, and the kernel's error otherwise.
    pub fn bind(
        umem: &Umem,
        ifname: &str,
        queue: u32,
        cfg: &SocketConfig,
    ) -> io::Result<XskSocket> {
        let ifindex = ifindex(ifname)?;
        Self::setup(umem, ifindex, queue, cfg)
            .map_err(|e| context(e, format!("AF_XDP socket on {ifname} queue {queue}")))
    }

    /// Like [`bind`](Self::bind), with the interface given by index.
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind).
    pub fn bind_ifindex(
        umem: &Umem,
        ifindex: u32,
        queue: u32,
        cfg: &SocketConfig,
    ) -> io::Result<XskSocket> {
        Self::setup(umem, ifindex, queue, cfg).map_err(|e| {
            context(
                e,
                format!("AF_XDP socket on ifindex {ifindex} queue {queue}"),
            )
        })
    }

    fn setup(umem: &Umem, ifindex: u32, queue: u32, cfg: &SocketConfig) -> io::Result<XskSocket> {
        cfg.validate()?;
        // Held across the whole setup: binds on one UMEM are serialised, so exactly one of them
        // registers it.
        let mut primary = umem
            .primary
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());

        // SAFETY: plain socket(2) call; the result is checked and owned right below.
        let raw = unsafe { libc::socket(AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            let e = io::Error::last_os_error();
            let hint = if e.raw_os_error() == Some(libc::EPERM) {
                " (needs CAP_NET_RAW)"
            } else {
                ""
            };
            return Err(context(e, format!("socket(AF_XDP){hint}")));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
        let sfd = fd.as_fd();

        match primary.as_ref() {
            None => register_umem(sfd, umem)?,
            Some(p) => check_shareable(p, ifindex, queue, cfg)?,
        }
        set_ring(sfd, XDP_UMEM_FILL_RING, cfg.fill_size, "fill")?;
        set_ring(sfd, XDP_UMEM_COMPLETION_RING, cfg.comp_size, "completion")?;
        set_ring(sfd, XDP_RX_RING, cfg.rx_size, "RX")?;
        set_ring(sfd, XDP_TX_RING, cfg.tx_size, "TX")?;

        let (off, off_len) = getsockopt::<XdpMmapOffsets>(sfd, SOL_XDP, XDP_MMAP_OFFSETS)
            .map_err(|e| context(e, "getsockopt(XDP_MMAP_OFFSETS)"))?;
        if off_len < size_of::<XdpMmapOffsets>() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the kernel gave ring offsets without ring flags (Linux < 5.4 is not supported)",
            ));
        }
        let map = |pgoff, len, what: &str| {
            Mmap::ring(sfd, pgoff, len).map_err(|e| context(e, format!("mmap of the {what} ring")))
        };
        let fill = Producer::from_mmap(
            map(
                XDP_UMEM_PGOFF_FILL_RING,
                ring_mmap_len::<u64>(&off.fr, cfg.fill_size),
                "fill",
            )?,
            &off.fr,
            cfg.fill_size,
        )?;
        let comp = Consumer::from_mmap(
            map(
                XDP_UMEM_PGOFF_COMPLETION_RING,
                ring_mmap_len::<u64>(&off.cr, cfg.comp_size),
                "completion",
            )?,
            &off.cr,
            cfg.comp_size,
        )?;
        let rx = Consumer::from_mmap(
            map(
                XDP_PGOFF_RX_RING,
                ring_mmap_len::<XdpDesc>(&off.rx, cfg.rx_size),
                "RX",
            )?,
            &off.rx,
            cfg.rx_size,
        )?;
        let tx = Producer::from_mmap(
            map(
                XDP_PGOFF_TX_RING,
                ring_mmap_len::<XdpDesc>(&off.tx, cfg.tx_size),
                "TX",
            )?,
            &off.tx,
            cfg.tx_size,
        )?;

        let mut zero_copy_refused = None;
        let shared = primary.is_some();
        let need_wakeup = match primary.as_ref() {
            Some(p) => {
                let addr = sockaddr(ifindex, queue, XDP_SHARED_UMEM, p.fd.as_raw_fd());
                bind_xdp(sfd, &addr).map_err(|e| {
                    bind_error(e, ifindex, queue, "sharing the UMEM (XDP_SHARED_UMEM)")
                })?;
                p.need_wakeup
            }
            None => {
                let wake = if cfg.need_wakeup {
                    XDP_USE_NEED_WAKEUP
                } else {
                    0
                };
                match cfg.mode {
                    BindMode::Copy => bind_xdp(sfd, &sockaddr(ifindex, queue, wake | XDP_COPY, 0))
                        .map_err(|e| bind_error(e, ifindex, queue, "in copy mode"))?,
                    BindMode::ZeroCopy => {
                        bind_xdp(sfd, &sockaddr(ifindex, queue, wake | XDP_ZEROCOPY, 0))
                            .map_err(|e| bind_error(e, ifindex, queue, "in zero-copy mode"))?
                    }
                    BindMode::Auto => {
                        let zc = sockaddr(ifindex, queue, wake | XDP_ZEROCOPY, 0);
                        if let Err(zc_err) = bind_xdp(sfd, &zc) {
                            // A failed bind leaves the socket unbound with its rings intact
                            // (xsk_bind() only moves them into the pool on success), so it can
                            // bind again.
                            let copy = sockaddr(ifindex, queue, wake | XDP_COPY, 0);
                            bind_xdp(sfd, &copy).map_err(|e| {
                                bind_error(e, ifindex, queue, "in copy mode").also(&zc_err)
                            })?;
                            tracing::info!(
                                ifindex,
                                queue,
                                error = %zc_err,
                                "zero-copy bind refused, bound in copy mode"
                            );
                            zero_copy_refused = Some(format!("XDP_ZEROCOPY bind: {zc_err}"));
                        }
                    }
                }
                cfg.need_wakeup
            }
        };

        let (opts, _) = getsockopt::<XdpOptions>(sfd, SOL_XDP, XDP_OPTIONS)
            .map_err(|e| context(e, "getsockopt(XDP_OPTIONS)"))?;
        let zero_copy = opts.flags & XDP_OPTIONS_ZEROCOPY != 0;
        if let Some(p) = primary.as_ref()
            && p.zero_copy != zero_copy
        {
            return Err(io::Error::other(format!(
                "shared bind got {} mode, the UMEM's first socket has {}",
                mode_name(zero_copy),
                mode_name(p.zero_copy)
            )));
        }

        if let Some(bp) = cfg.busy_poll {
            set_busy_poll(sfd, bp)?;
        }
        if let Some(budget) = cfg.tx_budget {
            set_tx_budget(sfd, budget)?;
        }

        if primary.is_none() {
            *primary = Some(Primary {
                fd: Arc::clone(&fd),
                ifindex,
                queue,
                zero_copy,
                need_wakeup,
            });
        }
        let rings = XskRings {
            fill,
            comp,
            rx,
            tx,
            geom: umem.geometry(),
            counters: XskCounters::default(),
        };
        Ok(XskSocket {
            rings,
            fd,
            ifindex,
            queue,
            zero_copy,
            need_wakeup,
            shared,
            zero_copy_refused,
        })
    }

    /// Gives up to `max` frames from the end of `free` to the kernel for receiving; returns how
    /// many. See [`XskRings::fill`].
    #[inline]
    pub fn fill(&mut self, free: &mut Vec<Frame>, max: usize) -> usize {
        self.rings.fill(free, max)
    }

    /// Takes up to `max` transmitted frames back, appending them to `free` (never beyond its
    /// capacity); returns how many. See [`XskRings::complete`].
    #[inline]
    pub fn complete(&mut self, free: &mut Vec<Frame>, max: usize) -> usize {
        self.rings.complete(free, max)
    }

    /// Takes up to `max` received packets, appending them to `out` (never beyond its
    /// capacity); returns how many. See [`XskRings::recv`].
    #[inline]
    pub fn recv(&mut self, out: &mut Vec<Frame>, max: usize) -> usize {
        self.rings.recv(out, max)
    }

    /// Queues frames from the front of `frames` on the TX ring, as many as fit; the rest stay
    /// in `frames`, in order. Returns how many were queued. Then kick if
    /// [`tx_needs_wakeup`](Self::tx_needs_wakeup). See [`XskRings::send`].
    #[inline]
    pub fn send(&mut self, frames: &mut Vec<Frame>) -> usize {
        self.rings.send(frames)
    }

    /// Whether the kernel must be kicked to transmit: always without need-wakeup and in copy
    /// mode (the kernel leaves the flag set there), else when the driver set the flag.
    #[inline]
    pub fn tx_needs_wakeup(&self) -> bool {
        !self.need_wakeup || self.rings.tx_needs_wakeup()
    }

    /// Whether the kernel must be woken ([`wake_rx`](Self::wake_rx) or [`poll_rx`](Self::poll_rx))
    /// to take buffers from the fill ring (zero-copy drivers with need-wakeup only).
    #[inline]
    pub fn fill_needs_wakeup(&self) -> bool {
        self.need_wakeup && self.rings.fill_needs_wakeup()
    }

    /// Kicks the kernel to transmit what the TX ring holds: `sendto(fd, NULL, 0, MSG_DONTWAIT)`.
    ///
    /// In copy mode this call does the transmission itself, up to the TX budget (32 descriptors
    /// unless [`SocketConfig::tx_budget`] says otherwise), answering `EAGAIN` ([`Kick::Again`])
    /// when more remain.
    ///
    /// # Errors
    ///
    /// Errors other than the "try later" ones of [`Kick`] (e.g. `ENXIO` for an unbound socket).
    #[inline]
    pub fn kick_tx(&mut self) -> io::Result<Kick> {
        self.rings.counters.tx_kicks += 1;
        // SAFETY: sendto with a null buffer of length 0 and no address reads no memory; the fd is
        // ours and open.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        self.wakeup_result(rc, true)
            .map_err(|e| context(e, "sendto (TX kick)"))
    }

    /// Wakes the kernel to process the fill and RX rings (and busy-poll, if configured):
    /// `recvfrom(fd, NULL, 0, MSG_DONTWAIT)`.
    ///
    /// # Errors
    ///
    /// Errors other than the "try later" ones of [`Kick`].
    #[inline]
    pub fn wake_rx(&mut self) -> io::Result<Kick> {
        self.rings.counters.rx_wakeups += 1;
        // SAFETY: recvfrom with a null buffer of length 0 and no address writes no memory.
        let rc = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        self.wakeup_result(rc, false)
            .map_err(|e| context(e, "recvfrom (RX wakeup)"))
    }

    fn wakeup_result(&mut self, rc: isize, tx: bool) -> io::Result<Kick> {
        if rc >= 0 {
            return Ok(Kick::Done);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error().and_then(Kick::from_errno) {
            Some(k) => {
                if tx {
                    self.rings.counters.tx_kick_retries += 1;
                }
                Ok(k)
            }
            None => Err(e),
        }
    }

    /// Waits up to `timeout_ms` (negative: forever) for received packets with `poll(POLLIN)`;
    /// returns whether the RX ring has any. In copy mode `poll` also transmits pending TX.
    ///
    /// # Errors
    ///
    /// `poll` failures other than `EINTR` (which returns `Ok(false)`), and a socket error
    /// reported with `POLLERR` (e.g. `ENETDOWN` when the interface went away).
    pub fn poll_rx(&self, timeout_ms: i32) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid, writable pollfd for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        if pfd.revents & libc::POLLERR != 0 {
            let (err, _) = getsockopt::<i32>(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_ERROR)?;
            return Err(context(
                io::Error::from_raw_os_error(err),
                "poll: socket error",
            ));
        }
        Ok(pfd.revents & libc::POLLIN != 0)
    }

    /// The kernel's drop counters for this socket (`XDP_STATISTICS`). Counters added in Linux 5.9
    /// read 0 on older kernels.
    ///
    /// # Errors
    ///
    /// When `getsockopt` fails.
    pub fn statistics(&self) -> io::Result<XdpStatistics> {
        statistics(self.fd.as_fd())
    }

    /// Sets `XDP_MAX_TX_SKB_BUDGET` (Linux 6.17+): how many descriptors one copy-mode `sendto`
    /// transmits before answering `EAGAIN` (kernel default 32). Can be set after bind, so callers
    /// can treat it as best effort on older kernels.
    ///
    /// # Errors
    ///
    /// `ENOPROTOOPT` before Linux 6.17; `EACCES` outside `32..=tx_size`.
    pub fn set_tx_budget(&self, budget: u32) -> io::Result<()> {
        set_tx_budget(self.fd.as_fd(), budget)
    }

    /// Counters of the token layer and of wakeups (ours, not the kernel's).
    pub fn counters(&self) -> XskCounters {
        self.rings.counters()
    }

    /// Entries in `[fill, rx, tx, completion]`, published and not yet taken by the other side.
    pub fn occupancy(&self) -> [u32; 4] {
        self.rings.occupancy()
    }

    /// The socket descriptor (for an XSKMAP entry, or `epoll`).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Interface index the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Queue id the socket is bound to.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Whether the bind got zero-copy (`XDP_OPTIONS_ZEROCOPY`).
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// With [`BindMode::Auto`] on a UMEM's first socket: why zero-copy was refused, if it was.
    pub fn zero_copy_refused(&self) -> Option<&str> {
        self.zero_copy_refused.as_deref()
    }

    /// Whether the socket runs with `XDP_USE_NEED_WAKEUP` (its own, or inherited from the UMEM's
    /// first socket).
    pub fn need_wakeup(&self) -> bool {
        self.need_wakeup
    }

    /// Whether this socket shares a UMEM registered by an earlier socket (`XDP_SHARED_UMEM`).
    pub fn shared_umem(&self) -> bool {
        self.shared
    }

    /// The rings, for code written against [`XskRings`] (which a simulated kernel also provides).
    pub fn rings_mut(&mut self) -> &mut XskRings {
        &mut self.rings
    }
}

impl AsFd for XskSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for XskSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Resolves an interface name to its index in the calling thread's network namespace.
///
/// # Errors
///
/// `InvalidInput` for a name that cannot be an interface name (empty, too long, `/`, NUL or
/// whitespace), `NotFound` when no such interface exists.
pub fn ifindex(name: &str) -> io::Result<u32> {
    if name.is_empty()
        || name.len() >= libc::IFNAMSIZ
        || name.contains(['/', '\0'])
        || name.contains(char::is_whitespace)
    {
        return Err(invalid(format!(
            "{name:?} is not a valid interface name (1 to {} bytes, no '/', NUL or whitespace)",
            libc::IFNAMSIZ - 1
        )));
    }
    let c = CString::new(name).map_err(|e| invalid(e.to_string()))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENODEV) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no interface named {name:?} in this network namespace"),
            ));
        }
        return Err(context(e, format!("if_nametoindex({name:?})")));
    }
    Ok(idx)
}

/// Number of queues AF_XDP can bind on an interface (`max(rx, tx) + combined` channels from
/// `ETHTOOL_GCHANNELS`), in the calling thread's network namespace. Drivers without channel
/// support (`EOPNOTSUPP`, e.g. loopback, many virtual devices) are counted by their RX queues in
/// sysfs, which is the kernel's `real_num_rx_queues`.
///
/// # Errors
///
/// When the interface does not exist or neither source reports its queues.
pub fn queue_count(ifindex: u32) -> io::Result<u32> {
    match ethtool_channels(ifindex) {
        Ok(ch) => Ok(ch.rx_count.max(ch.tx_count) + ch.combined_count),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            sysfs_rx_queues(ifindex).map_err(|s| {
                context(
                    s,
                    format!("counting RX queues (ethtool channels unsupported: {e})"),
                )
            })
        }
        Err(e) => Err(e),
    }
}

/// Counts `/sys/class/net/NAME/queues/rx-*`.
fn sysfs_rx_queues(ifindex: u32) -> io::Result<u32> {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `name` is IF_NAMESIZE writable bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) };
    if p.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success if_indextoname wrote a NUL-terminated name into `name`.
    let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    let dir = std::fs::read_dir(format!("/sys/class/net/{name}/queues"))?;
    let n = dir
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    u32::try_from(n).map_err(|_| io::Error::other("queue count overflows u32"))
}

// --- setup helpers ---

fn register_umem(fd: BorrowedFd<'_>, umem: &Umem) -> io::Result<()> {
    let cfg = umem.config();
    let reg = XdpUmemReg {
        addr: umem.addr(),
        len: cfg.len_bytes(),
        chunk_size: cfg.frame_size,
        headroom: cfg.headroom,
        flags: 0,
        tx_metadata_len: 0,
    };
    setsockopt(fd, SOL_XDP, XDP_UMEM_REG, &reg).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOBUFS) && !has_cap_ipc_lock() {
            return memlock_error(reg.len, memlock_limit().unwrap_or(0));
        }
        context(
            e,
            format!(
                "setsockopt(XDP_UMEM_REG, {} bytes in {} chunks)",
                reg.len, cfg.frame_count
            ),
        )
    })
}

fn check_shareable(p: &Primary, ifindex: u32, queue: u32, cfg: &SocketConfig) -> io::Result<()> {
    let first = format!(
        "the UMEM's first socket (ifindex {} queue {})",
        p.ifindex, p.queue
    );
    if (p.ifindex, p.queue) == (ifindex, queue) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{first} is already on this interface and queue; one socket per queue"),
        ));
    }
    let conflict = match cfg.mode {
        BindMode::ZeroCopy => !p.zero_copy,
        BindMode::Copy => p.zero_copy,
        BindMode::Auto => false,
    };
    if conflict {
        return Err(invalid(format!(
            "{:?} mode asked for, but {first} is bound in {} mode and every socket of a UMEM \
             inherits that mode (XDP_SHARED_UMEM)",
            cfg.mode,
            mode_name(p.zero_copy)
        )));
    }
    if cfg.need_wakeup != p.need_wakeup {
        return Err(invalid(format!(
            "need_wakeup = {} asked for, but {first} has need_wakeup = {} and every socket of a \
             UMEM inherits it (XDP_SHARED_UMEM)",
            cfg.need_wakeup, p.need_wakeup
        )));
    }
    Ok(())
}

fn set_ring(fd: BorrowedFd<'_>, opt: i32, size: u32, what: &str) -> io::Result<()> {
    setsockopt(fd, SOL_XDP, opt, &size)
        .map_err(|e| context(e, format!("setsockopt({what} ring of {size} entries)")))
}

fn set_busy_poll(fd: BorrowedFd<'_>, bp: BusyPoll) -> io::Result<()> {
    let set = |name: i32, label: &str, v: i32| {
        setsockopt(fd, libc::SOL_SOCKET, name, &v).map_err(|e| {
            let hint = if e.raw_os_error() == Some(libc::EPERM) {
                " (needs CAP_NET_ADMIN)"
            } else {
                ""
            };
            context(e, format!("setsockopt({label} = {v}){hint}"))
        })
    };
    set(
        SO_PREFER_BUSY_POLL,
        "SO_PREFER_BUSY_POLL",
        i32::from(bp.prefer),
    )?;
    set(SO_BUSY_POLL, "SO_BUSY_POLL", bp.usecs as i32)?;
    set(
        SO_BUSY_POLL_BUDGET,
        "SO_BUSY_POLL_BUDGET",
        i32::from(bp.budget),
    )
}

fn sockaddr(ifindex: u32, queue: u32, flags: u16, shared_fd: RawFd) -> SockaddrXdp {
    SockaddrXdp {
        sxdp_family: AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: shared_fd as u32,
    }
}

fn bind_xdp(fd: BorrowedFd<'_>, addr: &SockaddrXdp) -> io::Result<()> {
    // SAFETY: `addr` is a valid `sockaddr_xdp` of the length passed, read by the kernel only
    // during the call.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (addr as *const SockaddrXdp).cast(),
            size_of::<SockaddrXdp>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Explains a bind failure in terms of what the kernel checks in `xsk_bind()`/`xp_assign_dev()`.
fn bind_error(e: io::Error, ifindex: u32, queue: u32, how: &str) -> io::Error {
    let why = match e.raw_os_error() {
        Some(libc::ENODEV) => format!("interface index {ifindex} does not exist"),
        Some(libc::EINVAL) => match queue_count(ifindex) {
            Ok(n) if queue >= n => {
                let e2 = io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "bind {how}: queue {queue} does not exist: the interface has {n} \
                         queue(s) (ethtool -l)"
                    ),
                );
                return e2;
            }
            _ => "invalid bind (queue out of range, or flags the kernel refused)".to_owned(),
        },
        Some(libc::EBUSY) => "the queue already has an AF_XDP socket".to_owned(),
        Some(libc::EOPNOTSUPP) => "the driver does not support this mode".to_owned(),
        Some(libc::EPERM) => "permission denied".to_owned(),
        _ => String::new(),
    };
    let msg = if why.is_empty() {
        format!("bind {how}")
    } else {
        format!("bind {how}: {why}")
    };
    context(e, msg)
}

fn mode_name(zero_copy: bool) -> &'static str {
    if zero_copy { "zero-copy" } else { "copy" }
}

/// Plain-old-data that `getsockopt` may fill: every bit pattern is a valid value.
///
/// # Safety
///
/// Implementors must be `#[repr(C)]` (or primitive) types without references, valid for any bytes.
unsafe trait Pod: Copy + Default {}
// SAFETY: primitive integers are valid for any bit pattern.
unsafe impl Pod for i32 {}
// SAFETY: as above.
unsafe impl Pod for u32 {}
// SAFETY: `#[repr(C)]` structs of `u64` fields only.
unsafe impl Pod for XdpMmapOffsets {}
// SAFETY: as above.
unsafe impl Pod for XdpStatistics {}
// SAFETY: `#[repr(C)]` struct of one `u32`.
unsafe impl Pod for XdpOptions {}
// SAFETY: `#[repr(C)]` struct of `u64` and `u32` fields, no padding (size 32 asserted).
unsafe impl Pod for XdpUmemReg {}
// SAFETY: `#[repr(C)]` struct of `u32` fields.
unsafe impl Pod for EthtoolChannels {}

fn setsockopt<T: Pod>(fd: BorrowedFd<'_>, level: i32, name: i32, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a valid `T` of the size passed; the kernel only reads it during the
    // call, and `T: Pod` has no padding we would leak uninitialised.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `getsockopt` into a `T`; returns it and the length the kernel wrote.
fn getsockopt<T: Pod>(fd: BorrowedFd<'_>, level: i32, name: i32) -> io::Result<(T, usize)> {
    let mut val = T::default();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `val` is a writable `T` of `len` bytes; the kernel writes at most `len` bytes and any
    // bytes form a valid `T` (`Pod`). `len` is a valid writable socklen_t.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut val as *mut T).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((val, len as usize))
}

/// `struct ethtool_channels` (`include/uapi/linux/ethtool.h`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}
const _: () = assert!(size_of::<EthtoolChannels>() == 36);
const ETHTOOL_GCHANNELS: u32 = 0x3c;
const SIOCETHTOOL: libc::c_ulong = 0x8946;

fn ethtool_channels(ifindex: u32) -> io::Result<EthtoolChannels> {
    let mut name = [0 as libc::c_char; libc::IFNAMSIZ];
    // SAFETY: `name` has IFNAMSIZ bytes, as if_indextoname requires.
    if unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) }.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain socket(2) call, owned right below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    // SAFETY: an all-zero `ifreq` is valid (integers and a null pointer in the union).
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    ifr.ifr_name = name;
    ifr.ifr_ifru.ifru_data = (&mut ch as *mut EthtoolChannels).cast();
    // SAFETY: SIOCETHTOOL reads `ifr` and reads/writes the `ethtool_channels` it points to, both
    // valid and writable for the duration of the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL, &mut ifr) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ch)
}

// --- errors ---

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// Prefixes an error with what was being done, keeping its kind.
fn context(e: io::Error, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

trait AlsoErr {
    fn also(self, other: &io::Error) -> io::Error;
}

impl AlsoErr for io::Error {
    /// Appends an earlier error that led here (the refused zero-copy bind before the copy one).
    fn also(self, other: &io::Error) -> io::Error {
        io::Error::new(
            self.kind(),
            format!("{self} (after XDP_ZEROCOPY bind failed: {other})"),
        )
    }
}

/// The kernel's drop counters (`XDP_STATISTICS`) of the AF_XDP socket `fd`, for readers that hold
/// a duplicate of a worker's socket fd (the control socket reports them while workers run).
///
/// # Errors
///
/// When `getsockopt` fails (e.g. `fd` is not an AF_XDP socket).
pub fn statistics(fd: BorrowedFd<'_>) -> io::Result<XdpStatistics> {
    let (stats, len) = getsockopt::<XdpStatistics>(fd, SOL_XDP, XDP_STATISTICS)
        .map_err(|e| context(e, "getsockopt(XDP_STATISTICS)"))?;
    if len < XDP_STATISTICS_V1_SIZE {
        return Err(io::Error::other(format!(
            "XDP_STATISTICS returned {len} bytes"
        )));
    }
    Ok(stats)
}

fn set_tx_budget(fd: BorrowedFd<'_>, budget: u32) -> io::Result<()> {
    setsockopt(fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget).map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::ENOPROTOOPT) => " (needs Linux 6.17+)",
            Some(libc::EACCES) => " (must be in 32..=TX ring size)",
            _ => "",
        };
        context(
            e,
            format!("setsockopt(XDP_MAX_TX_SKB_BUDGET = {budget}){why}"),
        )
    })
}

/// Most sockets [`poll_rx_any`] waits on at once (one per port).
const POLL_MAX: usize = 64;

/// Waits up to `timeout_ms` until any of `socks` has received packets (`poll(POLLIN)` on all of
/// them): how an idle worker sleeps without missing traffic on any of its ports. Returns whether
/// one has. Sockets beyond the first 64 are not waited on.
///
/// # Errors
///
/// `poll` failures other than `EINTR` (which returns `Ok(false)`).
pub fn poll_rx_any<'a>(
    socks: impl IntoIterator<Item = &'a XskSocket>,
    timeout_ms: i32,
) -> io::Result<bool> {
    let mut pfds = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; POLL_MAX];
    let mut n = 0;
    for (pfd, s) in pfds.iter_mut().zip(socks) {
        pfd.fd = s.fd.as_raw_fd();
        n += 1;
    }
    // SAFETY: `pfds[..n]` are valid, writable pollfds for the duration of the call, and `n` is
    // their count.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(pfds[..n].iter().any(|p| p.revents & libc::POLLIN != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_name_the_bad_value() {
        let bad = |cfg: SocketConfig, needle: &str| {
            let e = cfg.validate().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(
                e.to_string().contains(needle),
                "{e} should mention {needle}"
            );
        };
        let ok = SocketConfig::default();
        ok.validate().unwrap();
        bad(
            SocketConfig {
                rx_size: 1000,
                ..ok
            },
            "rx_size = 1000",
        );
        bad(SocketConfig { tx_size: 0, ..ok }, "tx_size = 0");
        bad(SocketConfig { fill_size: 3, ..ok }, "fill_size = 3");
        bad(
            SocketConfig {
                comp_size: 1 << 31,
                ..ok
            },
            "comp_size = 2147483648",
        );
        bad(
            SocketConfig {
                tx_budget: Some(16),
                ..ok
            },
            "tx_budget = 16",
        );
        bad(
            SocketConfig {
                tx_budget: Some(4096),
                ..ok
            },
            "tx_budget = 4096",
        );
    }

    #[test]
    fn interface_names_are_checked_before_the_kernel() {
        for name in ["", "a/b", "sixteen-bytes-xx", "with space", "nul\0"] {
            assert_eq!(
                ifindex(name).unwrap_err().kind(),
                io::ErrorKind::InvalidInput,
                "{name:?}"
            );
        }
        let e = ifindex("xfwd-nonexist0").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("xfwd-nonexist0"), "{e}");
        assert_eq!(ifindex("lo").unwrap(), 1);
    }

    #[test]
    fn kick_classifies_try_later_errors() {
        assert_eq!(Kick::from_errno(libc::EAGAIN), Some(Kick::Again));
        assert_eq!(Kick::from_errno(libc::EBUSY), Some(Kick::Busy));
        assert_eq!(Kick::from_errno(libc::ENOBUFS), Some(Kick::NoBufs));
        assert_eq!(Kick::from_errno(libc::ENETDOWN), Some(Kick::NetDown));
        assert_eq!(Kick::from_errno(libc::ENXIO), None);
    }
}

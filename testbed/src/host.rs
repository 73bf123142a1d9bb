//! Raw-frame hosts: an `AF_PACKET` socket on one interface of a namespace.
//!
//! Follows packet(7) and the uAPI in `include/uapi/linux/if_packet.h`: `SOCK_RAW` with
//! `ETH_P_ALL`, bound to one ifindex, so a test sends and receives whole Ethernet frames exactly
//! as they are on the wire of that veth end. All of the crate's socket `unsafe` lives here.

use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::NetNs;

/// Largest frame a receive accepts: a 64 KiB IPv4 packet (or a GRO super-frame) plus its
/// Ethernet header. A larger frame is reported as an error, never silently cut.
const MAX_FRAME: usize = 65_536 + 64;

/// Receive buffer asked for, so that a test's burst of frames is not dropped by the socket.
const RCVBUF: libc::c_int = 4 << 20;

/// An `AF_PACKET`/`SOCK_RAW` socket bound to one interface of a network namespace.
///
/// It sends crafted Ethernet frames out of that interface and receives every frame arriving on
/// it (whatever its destination MAC), never the frames it or the host's stack sent
/// (`PACKET_IGNORE_OUTGOING`, plus a `PACKET_OUTGOING` check for good measure).
///
/// The socket is opened inside the namespace and stays there: the value can be used from any
/// thread after [`RawSocket::open`] returns. Closed on drop.
#[derive(Debug)]
pub struct RawSocket {
    fd: OwnedFd,
    ifindex: u32,
    ifname: String,
}

impl RawSocket {
    /// Opens a raw socket on interface `ifname` of namespace `ns` (kernel ≥ 4.20 for
    /// `PACKET_IGNORE_OUTGOING`).
    ///
    /// # Errors
    ///
    /// When the namespace cannot be entered, the interface does not exist there, or the socket
    /// cannot be created or bound (needs CAP_NET_RAW).
    pub fn open(ns: &NetNs, ifname: &str) -> Result<RawSocket> {
        let name = CString::new(ifname).with_context(|| format!("interface name {ifname:?}"))?;
        let (fd, ifindex) = ns
            .run(|| open_here(&name))?
            .with_context(|| format!("raw socket on {ifname} in netns {}", ns.name()))?;
        Ok(RawSocket {
            fd,
            ifindex,
            ifname: ifname.to_owned(),
        })
    }

    /// The interface's index inside its namespace.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The interface's name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Sends one Ethernet frame (destination MAC first, no FCS) out of the interface.
    ///
    /// # Errors
    ///
    /// When the kernel refuses it (e.g. `EMSGSIZE` above the MTU, `ENETDOWN`), or sends only part.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: the pointer and length describe `frame`, which outlives the call; the kernel
        // only reads from it.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize != frame.len() {
            return Err(io::Error::other(format!(
                "sent {n} of {} bytes on {}",
                frame.len(),
                self.ifname
            )));
        }
        Ok(())
    }

    /// Receives the next incoming frame, waiting at most `timeout`; `None` when none came.
    ///
    /// # Errors
    ///
    /// On a socket error, or a frame larger than 64 KiB (reported, not cut).
    pub fn recv_timeout(&self, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        self.recv_matching(|_| true, timeout)
    }

    /// Receives frames until one satisfies `pred`, waiting at most `timeout` in total; frames
    /// that do not match are discarded. `None` when no matching frame came in time.
    ///
    /// # Errors
    ///
    /// As [`RawSocket::recv_timeout`].
    pub fn recv_matching(
        &self,
        mut pred: impl FnMut(&[u8]) -> bool,
        timeout: Duration,
    ) -> io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.try_recv()? {
                if pred(&frame) {
                    return Ok(Some(frame));
                }
                // A steady stream of other frames must not stretch the wait past the deadline.
                if Instant::now() >= deadline {
                    return Ok(None);
                }
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.poll_readable(left)? {
                return Ok(None);
            }
        }
    }

    /// Discards every frame already queued on the socket and returns how many there were.
    ///
    /// # Errors
    ///
    /// As [`RawSocket::recv_timeout`].
    pub fn drain(&self) -> io::Result<usize> {
        let mut n = 0;
        while self.try_recv()?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    /// Turns promiscuous mode on the interface on or off for as long as this socket lives
    /// (`PACKET_MR_PROMISC` membership). Not needed on veth, which hands every frame up whatever
    /// its destination MAC; provided for other devices.
    ///
    /// # Errors
    ///
    /// When the membership cannot be changed.
    pub fn set_promiscuous(&self, on: bool) -> io::Result<()> {
        // SAFETY: packet_mreq is plain old data; all-zero is a valid value.
        let mut mreq: libc::packet_mreq = unsafe { zeroed() };
        mreq.mr_ifindex = self.ifindex as libc::c_int;
        mreq.mr_type = libc::PACKET_MR_PROMISC as libc::c_ushort;
        let opt = if on {
            libc::PACKET_ADD_MEMBERSHIP
        } else {
            libc::PACKET_DROP_MEMBERSHIP
        };
        setsockopt(self.fd.as_fd(), libc::SOL_PACKET, opt, &mreq)
    }

    /// One non-blocking receive of an incoming frame: `None` when the queue is empty.
    fn try_recv(&self) -> io::Result<Option<Vec<u8>>> {
        loop {
            let mut buf: Vec<u8> = Vec::with_capacity(MAX_FRAME);
            // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
            let mut from: libc::sockaddr_ll = unsafe { zeroed() };
            let mut from_len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: the buffer pointer and capacity describe writable memory owned by `buf`
            // for the whole call; `from`/`from_len` point to a sockaddr_ll-sized local. With
            // MSG_TRUNC the return value is the real frame length, possibly above capacity.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.capacity(),
                    libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                    (&raw mut from).cast(),
                    &raw mut from_len,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                return match err.kind() {
                    io::ErrorKind::WouldBlock => Ok(None),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(err),
                };
            }
            let n = n as usize;
            if n > buf.capacity() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "frame of {n} bytes on {} exceeds the {MAX_FRAME}-byte receive buffer",
                        self.ifname
                    ),
                ));
            }
            // SAFETY: the kernel wrote exactly `n` (≤ capacity) bytes at the start of the buffer.
            unsafe { buf.set_len(n) };
            if from.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            return Ok(Some(buf));
        }
    }

    /// Waits until the socket is readable or `timeout` passes; `false` on timeout.
    fn poll_readable(&self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // Round up so that a sub-millisecond remainder still waits rather than spins.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `pfd` is one valid pollfd that lives across the call.
        let rc = unsafe { libc::poll(&raw mut pfd, 1, ms) };
        match rc {
            0 => Ok(false),
            n if n > 0 => Ok(true),
            _ => {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    Ok(true)
                } else {
                    Err(err)
                }
            }
        }
    }
}

impl From<RawSocket> for OwnedFd {
    /// The socket's descriptor, still bound to its interface in its namespace.
    fn from(s: RawSocket) -> OwnedFd {
        s.fd
    }
}

impl AsFd for RawSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Creates and binds the socket in the calling thread's network namespace.
fn open_here(ifname: &CString) -> io::Result<(OwnedFd, u32)> {
    // SAFETY: `ifname` is a NUL-terminated string that outlives the call.
    let ifindex = unsafe { libc::if_nametoindex(ifname.as_ptr()) };
    if ifindex == 0 {
        return Err(io::Error::last_os_error());
    }
    // Protocol 0: the socket receives nothing until bound, so no frame from another interface
    // can slip in between socket() and bind().
    // SAFETY: socket() takes no pointers.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    setsockopt(
        fd.as_fd(),
        libc::SOL_PACKET,
        libc::PACKET_IGNORE_OUTGOING,
        &(1 as libc::c_int),
    )?;
    // SO_RCVBUFFORCE (CAP_NET_ADMIN) lifts the net.core.rmem_max cap; fall back to SO_RCVBUF.
    if setsockopt(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &RCVBUF).is_err() {
        setsockopt(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, &RCVBUF)?;
    }
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as libc::c_ushort;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex as libc::c_int;
    // SAFETY: the pointer and length describe `sll`, a sockaddr_ll that outlives the call.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const sll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((fd, ifindex))
}

/// `setsockopt` with a typed value.
fn setsockopt<T>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: the pointer and length describe `*value`, which outlives the call; the kernel
    // only reads `size_of::<T>()` bytes from it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

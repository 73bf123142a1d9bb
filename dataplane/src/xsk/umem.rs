//! The UMEM: one anonymous memory area cut into equal chunks, and [`Frame`], the move-only token
//! that owns one chunk.
//!
//! Follows `Documentation/networking/af_xdp.rst` ("UMEM") and `xdp_umem_reg()` in
//! `net/xdp/xdp_umem.c` for the rules the kernel enforces: aligned chunk mode, chunk size a power
//! of two in `2048..=PAGE_SIZE`, `headroom < chunk_size - XDP_PACKET_HEADROOM`.
//!
//! ```text
//!  UMEM area (frame_count × frame_size bytes, page aligned)
//!  ┌────────────┬────────────┬────────────┬─────┬────────────┐
//!  │  chunk 0   │  chunk 1   │  chunk 2   │ ... │ chunk n-1  │
//!  └────────────┴────────────┴────────────┴─────┴────────────┘
//!  one chunk:
//!  ┌──────────┬─────────────────────┬────────────────────┬──────────┐
//!  │ headroom │ XDP_PACKET_HEADROOM │ data (len bytes)   │ tailroom │
//!  └──────────┴─────────────────────┴────────────────────┴──────────┘
//!  ◄────────── data offset ────────►   descriptor addr = chunk base + data offset
//! ```
//!
//! # Ownership: who may touch a chunk
//!
//! At every moment each chunk has exactly one owner: either one [`Frame`] token in user space, or
//! the kernel (the chunk's address sits in a fill or TX ring, or the kernel is between consuming
//! it there and producing it on the RX or completion ring). Tokens are created only by
//! [`Umem::new`] (one per chunk) and by consuming the RX and completion rings; they are consumed
//! only by producing into the fill and TX rings. A token is neither `Copy` nor `Clone`.
//!
//! # Why [`Umem::data_mut`] is sound
//!
//! `data_mut(&self, f: &mut Frame) -> &mut [u8]` creates a mutable slice over the data of `f`'s
//! chunk while other slices over other chunks may exist. It is sound because:
//!
//! 1. **Distinct tokens name distinct chunks.** Each chunk has at most one token: `Umem::new`
//!    makes one per chunk; a ring consumer makes a token for an address only after the kernel
//!    returns it, and the kernel returns an address only after we gave it up by producing its
//!    token into the fill or TX ring (and returns each such address once — we trust the kernel's
//!    ring protocol as we trust it with all of our memory, which it can write at will anyway).
//! 2. **Tokens cannot cross UMEMs.** A token carries its UMEM's id, unique for the process's
//!    lifetime (never reused); `data`, `data_mut` and the ring producers check it, so a token of
//!    another UMEM can never be mistaken for a chunk of this one.
//! 3. **A token's bounds stay in its chunk.** `chunk < frame_count` and
//!    `offset + len <= frame_size` hold when a token is made (RX descriptors are validated) and
//!    every `Frame` method that moves the data window checks them, so the slice never leaves the
//!    chunk.
//! 4. **Borrows pin the token.** The slice borrows `f` mutably (shared for [`Umem::data`]) for its
//!    lifetime, so the same token cannot yield a second slice, and the token cannot be moved into
//!    a ring (which needs it by value) while the slice lives. The slice also borrows the `Umem`,
//!    so the mapping outlives it.
//! 5. **The kernel does not touch user-owned chunks.** It writes only chunks taken from the fill
//!    ring and reads only chunks taken from the TX ring, until it returns them; the
//!    Acquire/Release ring protocol (see `ring.rs`) orders its accesses before ours.
//!
//! Hence slices handed out for distinct tokens are disjoint and unaliased by the kernel, which is
//! exactly what `&mut [u8]` requires.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::mmap::Mmap;
use super::sys::{XDP_PACKET_HEADROOM, XDP_UMEM_MIN_CHUNK_SIZE};

/// How a UMEM is laid out. Checked by [`UmemConfig::validate`] (and so by [`Umem::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UmemConfig {
    /// Chunk size in bytes: 2048 or 4096 (a power of two between `XDP_UMEM_MIN_CHUNK_SIZE` and
    /// the page size; aligned chunk mode).
    pub frame_size: u32,
    /// Number of chunks.
    pub frame_count: u32,
    /// Bytes the kernel leaves free at the start of each chunk, in front of its own 256 bytes of
    /// `XDP_PACKET_HEADROOM`. Must be below `frame_size - 256`.
    pub headroom: u32,
    /// Back the area with 2 MiB huge pages (`MAP_HUGETLB`) if the system has them reserved; falls
    /// back to normal pages otherwise and says so in [`Umem::backing`].
    pub huge_pages: bool,
}

impl Default for UmemConfig {
    /// 4096 chunks of 4096 bytes (16 MiB), no extra headroom, normal pages.
    fn default() -> Self {
        UmemConfig {
            frame_size: 4096,
            frame_count: 4096,
            headroom: 0,
            huge_pages: false,
        }
    }
}

impl UmemConfig {
    /// Total size of the area in bytes.
    pub fn len_bytes(&self) -> u64 {
        u64::from(self.frame_size) * u64::from(self.frame_count)
    }

    /// Checks the layout against the kernel's rules.
    ///
    /// # Errors
    ///
    /// `InvalidInput`, naming the bad field and value.
    pub fn validate(&self) -> io::Result<()> {
        let page = page_size();
        if !self.frame_size.is_power_of_two()
            || self.frame_size < XDP_UMEM_MIN_CHUNK_SIZE
            || self.frame_size as usize > page
        {
            return Err(invalid(format!(
                "UmemConfig.frame_size = {}: must be a power of two from {XDP_UMEM_MIN_CHUNK_SIZE} \
                 to the page size {page} (aligned chunk mode), i.e. 2048 or 4096",
                self.frame_size
            )));
        }
        if self.frame_count == 0 {
            return Err(invalid(
                "UmemConfig.frame_count = 0: a UMEM needs at least one frame",
            ));
        }
        if usize::try_from(self.len_bytes()).is_err() || self.len_bytes() > isize::MAX as u64 {
            return Err(invalid(format!(
                "UmemConfig.frame_count = {}: {} bytes do not fit the address space",
                self.frame_count,
                self.len_bytes()
            )));
        }
        if self.headroom >= self.frame_size - XDP_PACKET_HEADROOM {
            return Err(invalid(format!(
                "UmemConfig.headroom = {}: must be below frame_size - XDP_PACKET_HEADROOM = {}",
                self.headroom,
                self.frame_size - XDP_PACKET_HEADROOM
            )));
        }
        Ok(())
    }
}

/// What memory backs a UMEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UmemBacking {
    /// Normal pages; huge pages were not requested.
    Pages,
    /// 2 MiB huge pages (`MAP_HUGETLB`).
    HugePages,
    /// Huge pages were requested but could not be had; normal pages are used instead.
    PagesAfterHugeFailed {
        /// Why `MAP_HUGETLB` failed (typically: no huge pages reserved in `vm.nr_hugepages`).
        reason: String,
    },
}

/// An error from a [`Frame`] method that would move its data window outside its chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameBoundsError {
    /// The operation (`set_len`, `push_head`, `pull_head`, `set_data`).
    pub op: &'static str,
    /// Bytes asked for.
    pub requested: usize,
    /// Bytes the chunk allowed.
    pub available: usize,
}

impl fmt::Display for FrameBoundsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "frame {} of {} bytes exceeds the {} bytes its chunk allows",
            self.op, self.requested, self.available
        )
    }
}

impl std::error::Error for FrameBoundsError {}

/// A move-only token that owns one UMEM chunk and describes the packet in it.
///
/// The packet is the window `[offset, offset + len)` of the chunk; its descriptor address is
/// `chunk base + offset`. The window can grow or shrink at both ends within the chunk, like an
/// `sk_buff`'s data within its buffer: [`push_head`](Self::push_head) /
/// [`pull_head`](Self::pull_head) (`skb_push` / `skb_pull`) and [`set_len`](Self::set_len) (`skb_put` / `skb_trim`).
///
/// Read and write the bytes with [`Umem::data`] / [`Umem::data_mut`]. A token dropped instead of
/// being returned to a ring leaks its chunk until the UMEM is gone (safe, but a lost buffer).
#[derive(PartialEq, Eq)]
pub struct Frame {
    umem: u32,
    chunk: u32,
    offset: u16,
    len: u16,
    options: u8,
    shift: u8,
}

// A token is passed around in Vecs by the thousand per batch: keep it two words.
const _: () = assert!(std::mem::size_of::<Frame>() == 16);

impl Frame {
    /// Makes the token for `chunk` with data window `[offset, offset + len)`.
    ///
    /// Crate-internal: only the UMEM and the ring consumers may create tokens, and only for a chunk
    /// they own (see the module doc). The caller guarantees `chunk < frame_count` and
    /// `offset + len <= 1 << shift`.
    pub(crate) fn new(geom: &Geometry, chunk: u32, offset: u16, len: u16, options: u8) -> Frame {
        debug_assert!(chunk < geom.frame_count);
        debug_assert!(usize::from(offset) + usize::from(len) <= geom.frame_size());
        Frame {
            umem: geom.umem_id,
            chunk,
            offset,
            len,
            options,
            shift: geom.shift,
        }
    }

    /// Length of the data in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the frame holds no data. The kernel rejects empty TX descriptors, so
    /// [`XskSocket::send`](super::XskSocket::send) keeps empty frames back.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes in the chunk in front of the data (where headers can be pushed).
    #[inline]
    pub fn headroom(&self) -> usize {
        usize::from(self.offset)
    }

    /// Bytes in the chunk after the data.
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.chunk_size() - self.headroom() - self.len()
    }

    /// Size of the chunk (the UMEM's `frame_size`).
    #[inline]
    pub fn chunk_size(&self) -> usize {
        1 << self.shift
    }

    /// Index of the chunk within its UMEM.
    #[inline]
    pub fn chunk_index(&self) -> u32 {
        self.chunk
    }

    /// The descriptor address: chunk base + data offset, as the RX and TX rings carry it.
    #[inline]
    pub fn addr(&self) -> u64 {
        (u64::from(self.chunk) << self.shift) | u64::from(self.offset)
    }

    /// Descriptor options the kernel set on receive (`XDP_PKT_CONTD` only with multi-buffer,
    /// which xfwd does not enable, so 0 in practice). TX descriptors are always sent with 0.
    #[inline]
    pub fn options(&self) -> u32 {
        u32::from(self.options)
    }

    /// Sets the data length, keeping the start (`skb_put` when growing, `skb_trim` when
    /// shrinking). New bytes hold whatever the chunk held before.
    ///
    /// # Errors
    ///
    /// When `len` exceeds the bytes from the data start to the chunk end.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> Result<(), FrameBoundsError> {
        let available = self.chunk_size() - self.headroom();
        if len > available {
            return Err(FrameBoundsError {
                op: "set_len",
                requested: len,
                available,
            });
        }
        self.len = len as u16;
        Ok(())
    }

    /// Moves the data start `n` bytes earlier, growing the data (`skb_push`): room for a new
    /// header in front.
    ///
    /// # Errors
    ///
    /// When `n` exceeds [`headroom`](Self::headroom).
    #[inline]
    pub fn push_head(&mut self, n: usize) -> Result<(), FrameBoundsError> {
        if n > self.headroom() {
            return Err(FrameBoundsError {
                op: "push_head",
                requested: n,
                available: self.headroom(),
            });
        }
        self.offset -= n as u16;
        self.len += n as u16;
        Ok(())
    }

    /// Moves the data start `n` bytes later, dropping them from the data (`skb_pull`): strip a
    /// header.
    ///
    /// # Errors
    ///
    /// When `n` exceeds [`len`](Self::len).
    #[inline]
    pub fn pull_head(&mut self, n: usize) -> Result<(), FrameBoundsError> {
        if n > self.len() {
            return Err(FrameBoundsError {
                op: "pull_head",
                requested: n,
                available: self.len(),
            });
        }
        self.offset += n as u16;
        self.len -= n as u16;
        Ok(())
    }

    /// Places the data window at `[offset, offset + len)` of the chunk.
    ///
    /// # Errors
    ///
    /// When the window does not fit in the chunk.
    #[inline]
    pub fn set_data(&mut self, offset: usize, len: usize) -> Result<(), FrameBoundsError> {
        let size = self.chunk_size();
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(FrameBoundsError {
                op: "set_data",
                requested: offset.saturating_add(len),
                available: size,
            });
        }
        self.offset = offset as u16;
        self.len = len as u16;
        Ok(())
    }

    /// The id of the UMEM this token belongs to.
    #[inline]
    pub(crate) fn umem_id(&self) -> u32 {
        self.umem
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("umem", &self.umem)
            .field("chunk", &self.chunk)
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish()
    }
}

/// The numbers a ring needs to turn addresses into tokens and back, copied out of a [`Umem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) umem_id: u32,
    pub(crate) shift: u8,
    pub(crate) frame_count: u32,
    /// Data offset of a fresh (free or completed) frame: `headroom + XDP_PACKET_HEADROOM`, where
    /// the kernel puts received data.
    pub(crate) fresh_offset: u16,
}

impl Geometry {
    pub(crate) fn frame_size(&self) -> usize {
        1 << self.shift
    }

    /// A fresh token for `chunk` (data window empty at the receive offset).
    #[inline]
    pub(crate) fn fresh(&self, chunk: u32) -> Frame {
        Frame::new(self, chunk, self.fresh_offset, 0, 0)
    }

    /// The chunk an address falls in, if it is inside the UMEM.
    #[inline]
    pub(crate) fn chunk_of(&self, addr: u64) -> Option<u32> {
        let chunk = addr >> self.shift;
        (chunk < u64::from(self.frame_count)).then_some(chunk as u32)
    }

    /// Offset of an address within its chunk.
    #[inline]
    pub(crate) fn offset_of(&self, addr: u64) -> u16 {
        (addr & (self.frame_size() as u64 - 1)) as u16
    }
}

/// Ids of UMEMs, never reused within a process, so tokens of a dropped UMEM match no other.
static NEXT_UMEM_ID: AtomicU32 = AtomicU32::new(1);

/// The registration of a UMEM with the kernel, made by its first socket's bind and shared by all
/// later sockets (`XDP_SHARED_UMEM` names this socket).
#[derive(Debug)]
pub(crate) struct Primary {
    pub(crate) fd: Arc<std::os::fd::OwnedFd>,
    pub(crate) ifindex: u32,
    pub(crate) queue: u32,
    pub(crate) zero_copy: bool,
    pub(crate) need_wakeup: bool,
}

/// A UMEM: the packet memory one worker shares among all its AF_XDP sockets.
///
/// Created with every frame free ([`Umem::new`] returns the tokens). Registered with the kernel by
/// the first [`XskSocket`](super::XskSocket) bound on it; later sockets on other interfaces or
/// queues share it with `XDP_SHARED_UMEM`.
pub struct Umem {
    area: Arc<Mmap>,
    cfg: UmemConfig,
    geom: Geometry,
    backing: UmemBacking,
    pub(crate) primary: std::sync::Mutex<Option<Primary>>,
}

// SAFETY (Send, Sync are automatic): `Umem` holds an `Arc<Mmap>` (Send + Sync) and plain data.
// Handing `&Umem` to several threads is sound because `data`/`data_mut` derive every slice from a
// token, and distinct tokens name disjoint chunks (module doc), wherever the tokens live.

impl Umem {
    /// Maps the area and returns the UMEM with one free [`Frame`] per chunk.
    ///
    /// The area is registered with the kernel later, by the first socket; the kernel then pins
    /// it, charging it to `RLIMIT_MEMLOCK` unless the process has `CAP_IPC_LOCK`. That limit is
    /// checked here already so the error comes early and says what to do.
    ///
    /// # Errors
    ///
    /// - `InvalidInput` for a bad [`UmemConfig`] (the message names the field and value);
    /// - `PermissionDenied` when the area exceeds `RLIMIT_MEMLOCK` without `CAP_IPC_LOCK`;
    /// - the `mmap` error when the memory cannot be had.
    pub fn new(cfg: UmemConfig) -> io::Result<(Umem, Vec<Frame>)> {
        cfg.validate()?;
        let len = cfg.len_bytes() as usize;
        check_memlock(len as u64)?;
        let (area, backing) = if cfg.huge_pages {
            match Mmap::anonymous(len, true) {
                Ok(m) => (m, UmemBacking::HugePages),
                Err(e) => {
                    let reason = format!(
                        "MAP_HUGETLB of {} bytes failed: {e} (reserve huge pages with \
                         vm.nr_hugepages)",
                        len.next_multiple_of(super::mmap::HUGE_PAGE_SIZE)
                    );
                    tracing::warn!(%reason, "UMEM falls back to normal pages");
                    (
                        Mmap::anonymous(len, false)?,
                        UmemBacking::PagesAfterHugeFailed { reason },
                    )
                }
            }
        } else {
            (Mmap::anonymous(len, false)?, UmemBacking::Pages)
        };
        let umem_id = NEXT_UMEM_ID
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |id| id.checked_add(1))
            .map_err(|_| io::Error::other("UMEM ids exhausted (2^32 UMEMs in one process)"))?;
        let geom = Geometry {
            umem_id,
            shift: cfg.frame_size.trailing_zeros() as u8,
            frame_count: cfg.frame_count,
            fresh_offset: (cfg.headroom + XDP_PACKET_HEADROOM) as u16,
        };
        let frames = (0..cfg.frame_count).map(|c| geom.fresh(c)).collect();
        let umem = Umem {
            area: Arc::new(area),
            cfg,
            geom,
            backing,
            primary: std::sync::Mutex::new(None),
        };
        Ok((umem, frames))
    }

    /// The layout this UMEM was made with.
    pub fn config(&self) -> &UmemConfig {
        &self.cfg
    }

    /// Which pages back the area, and why huge pages were not used if they were asked for.
    pub fn backing(&self) -> &UmemBacking {
        &self.backing
    }

    /// Number of frames (chunks).
    pub fn frame_count(&self) -> u32 {
        self.cfg.frame_count
    }

    /// Chunk size in bytes.
    pub fn frame_size(&self) -> usize {
        self.cfg.frame_size as usize
    }

    /// Whether `frame` belongs to this UMEM.
    #[inline]
    pub fn owns(&self, frame: &Frame) -> bool {
        frame.umem == self.geom.umem_id
    }

    /// The data bytes of `frame`.
    ///
    /// # Panics
    ///
    /// When `frame` belongs to another UMEM (a bug in the caller: the memory would not be its own).
    #[inline]
    #[track_caller]
    pub fn data<'a>(&'a self, frame: &'a Frame) -> &'a [u8] {
        let base = self.chunk_ptr(frame);
        // SAFETY: the window [offset, offset + len) lies in the frame's chunk, which lies in the
        // mapping (token invariants, module doc point 3). The token, borrowed shared for 'a, is
        // the chunk's only owner, so nothing writes it meanwhile (points 1, 4, 5).
        unsafe { std::slice::from_raw_parts(base.add(frame.headroom()), frame.len()) }
    }

    /// The data bytes of `frame`, writable. Slices of distinct frames may be held at once.
    ///
    /// # Panics
    ///
    /// When `frame` belongs to another UMEM.
    #[inline]
    #[track_caller]
    pub fn data_mut<'a>(&'a self, frame: &'a mut Frame) -> &'a mut [u8] {
        let base = self.chunk_ptr(frame);
        // SAFETY: as in `data`; the token is borrowed mutably for 'a, so this is the only slice
        // over its chunk, and no other token names the chunk (module doc).
        unsafe { std::slice::from_raw_parts_mut(base.add(frame.headroom()), frame.len()) }
    }

    /// The whole chunk of `frame` (headroom, data, tailroom); the data starts at
    /// `frame.headroom()`.
    ///
    /// # Panics
    ///
    /// When `frame` belongs to another UMEM.
    #[inline]
    #[track_caller]
    pub fn chunk<'a>(&'a self, frame: &'a Frame) -> &'a [u8] {
        let base = self.chunk_ptr(frame);
        // SAFETY: the chunk [base, base + frame_size) lies in the mapping and is owned by `frame`
        // (module doc), borrowed shared for 'a.
        unsafe { std::slice::from_raw_parts(base, frame.chunk_size()) }
    }

    /// The whole chunk of `frame`, writable: build headers in the headroom, then
    /// [`Frame::push_head`].
    ///
    /// # Panics
    ///
    /// When `frame` belongs to another UMEM.
    #[inline]
    #[track_caller]
    pub fn chunk_mut<'a>(&'a self, frame: &'a mut Frame) -> &'a mut [u8] {
        let base = self.chunk_ptr(frame);
        // SAFETY: as in `chunk`, with the token borrowed mutably for 'a.
        unsafe { std::slice::from_raw_parts_mut(base, frame.chunk_size()) }
    }

    #[inline]
    #[track_caller]
    fn chunk_ptr(&self, frame: &Frame) -> *mut u8 {
        assert!(
            self.owns(frame),
            "frame of UMEM {} used with UMEM {}",
            frame.umem,
            self.geom.umem_id
        );
        // SAFETY: `chunk < frame_count` (token invariant) and the mapping is at least
        // frame_count << shift bytes long, so the chunk base is inside it.
        unsafe {
            self.area
                .as_ptr()
                .add((frame.chunk as usize) << self.geom.shift)
        }
    }

    pub(crate) fn geometry(&self) -> Geometry {
        self.geom
    }

    pub(crate) fn area(&self) -> &Arc<Mmap> {
        &self.area
    }

    /// Start address of the area, for `XDP_UMEM_REG`.
    pub(crate) fn addr(&self) -> u64 {
        self.area.as_ptr() as u64
    }
}

impl fmt::Debug for Umem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Umem")
            .field("id", &self.geom.umem_id)
            .field("config", &self.cfg)
            .field("backing", &self.backing)
            .finish_non_exhaustive()
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).unwrap_or(4096)
}

/// Fails early when registering `len` bytes would exceed `RLIMIT_MEMLOCK` and the process cannot
/// bypass it (`xdp_umem_account_pages()` in `net/xdp/xdp_umem.c` answers `ENOBUFS` then).
fn check_memlock(len: u64) -> io::Result<()> {
    if has_cap_ipc_lock() {
        return Ok(());
    }
    let limit = memlock_limit()?;
    if limit != libc::RLIM_INFINITY && len > limit {
        return Err(memlock_error(len, limit));
    }
    Ok(())
}

pub(crate) fn memlock_limit() -> io::Result<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable `rlimit` for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rl.rlim_cur)
}

pub(crate) fn memlock_error(len: u64, limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "a UMEM of {len} bytes exceeds RLIMIT_MEMLOCK ({limit} bytes) and the process lacks \
             CAP_IPC_LOCK: raise the limit (ulimit -l, LimitMEMLOCK= in the systemd unit), \
             grant CAP_IPC_LOCK, or use fewer/smaller frames"
        ),
    )
}

/// Whether the effective capability set holds `CAP_IPC_LOCK` (bit 14).
pub(crate) fn has_cap_ipc_lock() -> bool {
    crate::privileges::has(14)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> UmemConfig {
        UmemConfig {
            frame_size: 2048,
            frame_count: 16,
            headroom: 0,
            huge_pages: false,
        }
    }

    #[test]
    fn config_errors_name_the_bad_value() {
        let bad = |cfg: UmemConfig, needle: &str| {
            let e = cfg.validate().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(
                e.to_string().contains(needle),
                "{e} should mention {needle}"
            );
        };
        bad(
            UmemConfig {
                frame_size: 3000,
                ..small()
            },
            "frame_size = 3000",
        );
        bad(
            UmemConfig {
                frame_size: 1024,
                ..small()
            },
            "frame_size = 1024",
        );
        bad(
            UmemConfig {
                frame_size: 8192,
                ..small()
            },
            "frame_size = 8192",
        );
        bad(
            UmemConfig {
                frame_count: 0,
                ..small()
            },
            "frame_count = 0",
        );
        bad(
            UmemConfig {
                headroom: 1792,
                ..small()
            },
            "headroom = 1792",
        );
        assert!(
            UmemConfig {
                headroom: 1791,
                ..small()
            }
            .validate()
            .is_ok()
        );
        assert!(UmemConfig::default().validate().is_ok());
    }

    #[test]
    fn new_hands_out_every_chunk_once() {
        let (umem, frames) = Umem::new(small()).unwrap();
        assert_eq!(frames.len(), 16);
        let mut chunks: Vec<u32> = frames.iter().map(Frame::chunk_index).collect();
        chunks.dedup();
        assert_eq!(chunks, (0..16).collect::<Vec<_>>());
        for f in &frames {
            assert!(umem.owns(f));
            assert_eq!(f.headroom(), 256);
            assert!(f.is_empty());
            assert_eq!(f.addr(), u64::from(f.chunk_index()) * 2048 + 256);
        }
        assert_eq!(*umem.backing(), UmemBacking::Pages);
    }

    #[test]
    fn distinct_frames_give_disjoint_writable_slices() {
        let (umem, mut frames) = Umem::new(small()).unwrap();
        for f in frames.iter_mut() {
            f.set_len(100).unwrap();
        }
        // Hold every slice at once and write a distinct pattern into each.
        let mut slices: Vec<&mut [u8]> = frames.iter_mut().map(|f| umem.data_mut(f)).collect();
        for (i, s) in slices.iter_mut().enumerate() {
            s.fill(i as u8);
        }
        for (i, f) in frames.iter().enumerate() {
            assert!(umem.data(f).iter().all(|&b| b == i as u8));
        }
    }

    #[test]
    fn window_moves_stay_in_the_chunk() {
        let (umem, mut frames) = Umem::new(small()).unwrap();
        let mut f = frames.pop().unwrap();
        assert_eq!(f.tailroom(), 2048 - 256);
        f.set_len(60).unwrap();
        umem.data_mut(&mut f).copy_from_slice(&[7; 60]);
        // Prepend a 14-byte header, as an encapsulation would.
        f.push_head(14).unwrap();
        assert_eq!((f.headroom(), f.len()), (242, 74));
        umem.data_mut(&mut f)[..14].fill(0xee);
        assert_eq!(&umem.data(&f)[14..], &[7; 60]);
        // Strip it again.
        f.pull_head(14).unwrap();
        assert_eq!(umem.data(&f), &[7; 60]);
        // The whole chunk sees the data at the data offset.
        assert_eq!(&umem.chunk(&f)[f.headroom()..f.headroom() + 60], &[7; 60]);
        // Out-of-chunk moves are refused and change nothing.
        let e = f.push_head(300).unwrap_err();
        assert_eq!((e.op, e.requested, e.available), ("push_head", 300, 256));
        assert!(f.pull_head(61).is_err());
        assert!(f.set_len(2048 - 256 + 1).is_err());
        assert!(f.set_data(2000, 49).is_err());
        assert!(f.set_data(usize::MAX, 2).is_err());
        assert_eq!((f.headroom(), f.len()), (256, 60));
        f.set_data(0, 2048).unwrap();
        assert_eq!(umem.data(&f).len(), 2048);
        assert_eq!(f.tailroom(), 0);
        f.set_data(2048, 0).unwrap();
        assert!(umem.data(&f).is_empty());
    }

    #[test]
    #[should_panic(expected = "used with UMEM")]
    fn a_frame_of_another_umem_is_refused() {
        let (a, _fa) = Umem::new(small()).unwrap();
        let (_b, fb) = Umem::new(small()).unwrap();
        let _ = a.data(&fb[0]);
    }

    #[test]
    fn huge_pages_fall_back_cleanly() {
        let (umem, frames) = Umem::new(UmemConfig {
            huge_pages: true,
            ..small()
        })
        .unwrap();
        assert_eq!(frames.len(), 16);
        match umem.backing() {
            UmemBacking::HugePages => {}
            UmemBacking::PagesAfterHugeFailed { reason } => assert!(reason.contains("MAP_HUGETLB")),
            UmemBacking::Pages => panic!("huge pages were requested"),
        }
    }
}

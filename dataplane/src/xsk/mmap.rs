//! RAII memory mappings: the anonymous UMEM area and the four ring mappings of a socket.
//!
//! Follows `mmap(2)` and, for the rings, `xsk_mmap()` in `net/xdp/xsk.c` (the page offset selects
//! the ring, the size may not exceed the ring's vmalloc area).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

/// Size of a huge page when the UMEM asks for `MAP_HUGETLB` (the x86-64/arm64 default, 2 MiB).
pub(crate) const HUGE_PAGE_SIZE: usize = 2 << 20;

/// An owned `mmap` region, unmapped on drop.
///
/// It hands out only a raw pointer: who may touch which bytes, and when, is decided by its owner
/// (the UMEM's frame tokens, the ring cursors), never by this type.
#[derive(Debug)]
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: `Mmap` owns its mapping exclusively (no other Rust value refers to it) and the mapping
// is valid from any thread until `munmap`, which only `Drop` calls. Synchronising accesses to
// the bytes is the job of the owner that hands out references (see `Umem` and the ring cursors).
unsafe impl Send for Mmap {}
// SAFETY: `&Mmap` only exposes the pointer value and the length; it never reads or writes the
// mapped bytes itself.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Maps `len` bytes of private anonymous zeroed memory, prefaulted (`MAP_POPULATE`) so the
    /// hot path takes no page faults. With `huge`, asks for `MAP_HUGETLB` with `len` rounded up
    /// to [`HUGE_PAGE_SIZE`].
    pub(crate) fn anonymous(len: usize, huge: bool) -> io::Result<Mmap> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "mmap of 0 bytes",
            ));
        }
        let (len, extra) = if huge {
            (len.next_multiple_of(HUGE_PAGE_SIZE), libc::MAP_HUGETLB)
        } else {
            (len, 0)
        };
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE | extra;
        // SAFETY: an anonymous mapping at an address the kernel chooses cannot alias any existing
        // Rust object; all arguments are plain values and the result is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                -1,
                0,
            )
        };
        Self::from_raw(ptr, len)
    }

    /// Maps `len` bytes of an AF_XDP ring of socket `fd` at page offset `pgoff`
    /// (`XDP_PGOFF_RX_RING`, ...), shared with the kernel.
    pub(crate) fn ring(fd: BorrowedFd<'_>, pgoff: i64, len: usize) -> io::Result<Mmap> {
        // SAFETY: maps kernel-owned ring memory at an address the kernel chooses, so it cannot
        // alias an existing Rust object; `fd` is a live socket for the duration of the call
        // (borrowed), and the result is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                pgoff,
            )
        };
        Self::from_raw(ptr, len)
    }

    fn from_raw(ptr: *mut libc::c_void, len: usize) -> io::Result<Mmap> {
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        Ok(Mmap { ptr, len })
    }

    /// Start of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length of the mapping in bytes (after any huge-page rounding).
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe exactly the mapping this value created and still owns;
        // after `drop` nothing can reach it. Kernel users of the pages (a registered UMEM, a ring)
        // hold their own page references, so unmapping our view never frees pages under them.
        let rc = unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        debug_assert_eq!(rc, 0, "munmap: {}", io::Error::last_os_error());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_mapping_is_zeroed_and_writable() {
        let m = Mmap::anonymous(8192, false).unwrap();
        assert_eq!(m.len(), 8192);
        // SAFETY: the mapping is 8192 bytes long, owned by `m` and not shared with anyone.
        let bytes = unsafe { std::slice::from_raw_parts_mut(m.as_ptr(), m.len()) };
        assert!(bytes.iter().all(|&b| b == 0));
        bytes[8191] = 0xa5;
        assert_eq!(bytes[8191], 0xa5);
    }

    #[test]
    fn zero_length_is_an_error() {
        assert_eq!(
            Mmap::anonymous(0, false).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}

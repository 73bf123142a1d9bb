//! AF_XDP sockets on `libc`. This module holds all of the crate's `unsafe` code.
#![allow(
    unsafe_code,
    reason = "AF_XDP shares rings and UMEM with the kernel through mmap"
)]

//! Typed zero-copy views over packet bytes (smoltcp style). No I/O, no `unsafe`.

//! The BPF objects `build.rs` compiled from `src/*.bpf.c`, embedded 8-byte aligned.

/// `steer.bpf.o`: `xfwd_steer` and `xfwd_steer_frags`.
pub(crate) fn steer() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/steer.bpf.o"))
}

/// `gen.bpf.o`: `xfwd_gen`.
pub(crate) fn generator() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/gen.bpf.o"))
}

/// `sink.bpf.o`: `xfwd_sink`.
pub(crate) fn sink() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sink.bpf.o"))
}

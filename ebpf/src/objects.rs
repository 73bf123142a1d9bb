//! The BPF objects `build.rs` compiled from `src/*.bpf.c`, embedded 8-byte aligned, and
//! how they are loaded.

use aya::{Ebpf, EbpfLoader};

use crate::error::{self, Result};

/// Parses `bytes` and creates its maps (programs are loaded one by one afterwards).
///
/// The programs use no CO-RE relocations, so the kernel's BTF (`/sys/kernel/btf/vmlinux`)
/// is neither read nor needed; the objects' own BTF describes their maps.
pub(crate) fn load(name: &'static str, bytes: &[u8]) -> Result<Ebpf> {
    EbpfLoader::new()
        .btf(None)
        .load(bytes)
        .map_err(|e| error::object(name, e))
}

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

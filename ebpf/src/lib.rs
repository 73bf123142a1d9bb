//! xfwd's XDP programs, written in C (`src/*.bpf.c`, built by `build.rs` with clang),
//! embedded in this crate, and their loaders (aya 0.14).
//!
//! - [`Steer`]: the product's steering program — transit IPv4 into AF_XDP sockets,
//!   everything else to the kernel — with its maps, attachments and verdict counters.
//! - [`Generator`] and [`Sink`]: benchmark programs — a BPF_PROG_RUN live-frames UDP
//!   generator and a per-CPU counting sink.
//!
//! Modules:
//! - `abi`: `repr(C)` mirrors of the C headers and of `struct xdp_md`.
//! - `attach`: attach modes, bpf_link attachment, operator-facing attach errors.
//! - `error`: [`Error`].
//! - `generator`, `sink`, `steer`: the three programs' loaders.
//! - `objects`: the embedded objects.
//! - `test_run`: BPF_PROG_TEST_RUN and the XDP action numbers.
//!
//! Everything needs CAP_BPF and CAP_NET_ADMIN (or root). Minimum kernels are documented
//! per item; the floor is 5.10 (5.18 for the generator and the multi-buffer variant).
#![deny(unsafe_code)]

mod abi;
mod attach;
mod error;
mod generator;
mod objects;
mod sink;
mod steer;
mod test_run;

pub use abi::{LAT_BUCKETS, SINK_MAX_FLOWS, SINK_WINDOW};
pub use abi::{MAX_IFACES, MAX_LOCAL_ADDRS, MAX_QUEUES};
pub use attach::{AttachMode, AttachedMode, Attachment};
pub use error::{Error, Result};
pub use generator::{Generator, UdpTemplate};
pub use sink::{
    Sink, SinkAction, SinkConfig, SinkFlow, SinkStats, latency_bucket, latency_bucket_range,
};
pub use steer::{Steer, SteerCounters, SteerVariant, Verdict};
pub use test_run::{XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX};

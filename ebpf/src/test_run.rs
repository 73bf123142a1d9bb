//! BPF_PROG_TEST_RUN for XDP programs (`net/bpf/test_run.c` `bpf_prog_test_run_xdp`), and
//! the XDP action numbers (`enum xdp_action`, `include/uapi/linux/bpf.h`).
//!
//! Kernel facts this relies on (6.18, same since ~5.15): `ctx_in` is a `struct xdp_md`
//! whose `ingress_ifindex` is looked up in the calling thread's network namespace and whose
//! `rx_queue_index` must be below that device's real number of rx queues (else `EINVAL`);
//! data shorter than an Ethernet header is refused (`EINVAL`); data longer than a page minus
//! head- and tailroom becomes fragments.

use aya::programs::{TestRun, TestRunOptions, Xdp};

use crate::abi;
use crate::error::{self, Error, Result};

/// `XDP_ABORTED`: program error; the frame is dropped (tracepoint `xdp:xdp_exception`).
pub const XDP_ABORTED: u32 = 0;
/// `XDP_DROP`.
pub const XDP_DROP: u32 = 1;
/// `XDP_PASS`: on to the kernel's stack.
pub const XDP_PASS: u32 = 2;
/// `XDP_TX`: back out of the receiving interface.
pub const XDP_TX: u32 = 3;
/// `XDP_REDIRECT`: to the map target chosen by `bpf_redirect_map`.
pub const XDP_REDIRECT: u32 = 4;

const ETH_HLEN: usize = 14;

/// Runs `program` once on `frame` as if received on (`ingress_ifindex`, `rx_queue`) and
/// returns the XDP action.
///
/// A frame shorter than 14 bytes, which the kernel refuses as test input, is padded to 14
/// bytes with `ctx.data_end` at its real length: the program's linear area is then exactly
/// `frame`, the padding sits in a fragment (what a single-buffer program sees is the runt).
pub(crate) fn run_once(
    program: &Xdp,
    name: &str,
    frame: &[u8],
    ingress_ifindex: u32,
    rx_queue: u32,
) -> Result<u32> {
    let data_end = u32::try_from(frame.len()).map_err(|_| Error::InvalidArgument {
        what: "test frame",
        why: format!("{} bytes is too long", frame.len()),
    })?;
    let mut padded = [0u8; ETH_HLEN];
    let data_in = if frame.len() < ETH_HLEN {
        padded[..frame.len()].copy_from_slice(frame);
        &padded[..]
    } else {
        frame
    };
    let ctx = abi::xdp_md(data_end, ingress_ifindex, rx_queue);
    let opts = TestRunOptions {
        data_in: Some(data_in),
        ctx_in: Some(&ctx),
        ..TestRunOptions::new()
    };
    match program.test_run(opts) {
        Ok(result) => Ok(result.return_value),
        Err(e) => {
            let source = error::program_io_error(e);
            if source.raw_os_error() == Some(libc::ENODEV) {
                return Err(Error::NoSuchInterface {
                    ifindex: ingress_ifindex,
                });
            }
            Err(error::kernel(
                format!(
                    "test-run {name} on a {}-byte frame from ifindex {ingress_ifindex} queue {rx_queue} (the queue must exist on that interface)",
                    frame.len()
                ),
                source,
            ))
        }
    }
}

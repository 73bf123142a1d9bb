//! Where a veth's receive path runs: threaded NAPI (`/sys/class/net/DEV/threaded`, Linux ≥ 5.12,
//! `net/core/dev.c` `dev_set_threaded`) moves a device's NAPI poll out of the softirq of
//! whichever CPU scheduled it into a kernel thread `napi/DEV-ID`, which can then be pinned.
//!
//! Why the benchmark needs it: a veth schedules its peer's NAPI on the CPU that transmitted
//! (`veth_xdp_xmit` → `napi_schedule` on the local CPU). The generator transmits on its own CPU,
//! so by default the router's whole receive path (for Linux: the whole forwarding path) runs
//! in the generator CPU's softirq. A NIC instead interrupts the core that owns the queue.
//! Pinning the router's receive NAPI thread to the forwarding CPU puts the router's work where
//! it would run on real hardware, for both systems alike.

use anyhow::{Context, Result, bail};
use xfwd_testbed::{NetNs, sh};

use crate::procfs;

/// Turns on threaded NAPI for `dev` in `ns` and pins its NAPI thread to `cpu`; returns the
/// thread's pid. The device must already have a NAPI instance (a veth has one once an XDP
/// program is attached to it) and exactly one receive queue.
///
/// The thread is found as the one `napi/DEV-*` kernel thread that appeared when threading was
/// turned on (kernel threads are global, and other namespaces may hold a device of the same
/// name).
///
/// # Errors
///
/// When the device has no NAPI yet (`EOPNOTSUPP` from sysfs), no or several new threads appear,
/// or pinning fails (`taskset`, Debian package util-linux).
pub fn thread_and_pin(ns: &NetNs, dev: &str, cpu: usize) -> Result<u32> {
    let prefix = format!("napi/{dev}-");
    let before = procfs::processes_named_like(&prefix)?;
    ns.exec(&[
        "sh",
        "-c",
        &format!("echo 1 > /sys/class/net/{dev}/threaded"),
    ])
    .with_context(|| {
        format!(
            "turning on threaded NAPI for {dev} in {} (needs Linux >= 5.12 and a NAPI instance: \
             an XDP program on the veth)",
            ns.name()
        )
    })?;
    // The kthread is created synchronously by the sysfs write.
    let after = procfs::processes_named_like(&prefix)?;
    let new: Vec<&(u32, String)> = after.iter().filter(|p| !before.contains(p)).collect();
    let pid = match new.as_slice() {
        [(pid, _)] => *pid,
        [] => bail!("no {prefix}* kernel thread appeared after enabling threaded NAPI on {dev}"),
        many => bail!("several {prefix}* kernel threads appeared at once: {many:?}"),
    };
    sh(&["taskset", "-pc", &cpu.to_string(), &pid.to_string()])
        .with_context(|| format!("pinning NAPI thread {pid} of {dev} to CPU {cpu}"))?;
    Ok(pid)
}

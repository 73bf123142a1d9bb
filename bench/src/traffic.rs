//! Driving the live-frames generator flat out ([`xfwd_ebpf::Generator`]) and reading its rate.
//!
//! ## The XDP dispatcher trap (measured on Linux 6.18)
//!
//! Every `BPF_PROG_RUN` of an XDP program calls `bpf_prog_change_xdp(NULL, prog)` before and
//! `bpf_prog_change_xdp(prog, NULL)` after the run (`net/bpf/test_run.c`). When the program is
//! not already in the XDP dispatcher (`kernel/bpf/dispatcher.c`), each call rewrites the
//! dispatcher image and waits for an RCU grace period (`bpf_dispatcher_update` →
//! `synchronize_rcu`). On this 2-vCPU VM that is about 30 ms per run, asleep: runs of 32 768
//! frames (6 ms of work at 5.8 Mpps) then reach 0.9 Mpps, and even 262 144-frame runs only
//! 3.3 Mpps. A program that is attached to some device in native mode stays in the dispatcher,
//! and the runs then only take a reference (`bpf_dispatcher_add_prog` finds the entry). So
//! [`anchor_in_dispatcher`] attaches the generator to an idle veth that never receives a frame,
//! and short runs cost nothing extra.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use xfwd_ebpf::Generator;
use xfwd_testbed::NetNs;

use crate::procfs;

/// Ids of the BPF programs this process holds a file descriptor to, from
/// `/proc/self/fdinfo/N` (`prog_id:` lines of `anon_inode:bpf-prog` descriptors, Linux ≥ 4.13).
///
/// # Errors
///
/// When `/proc/self/fd` cannot be listed.
pub fn own_bpf_programs() -> Result<BTreeSet<u32>> {
    let mut ids = BTreeSet::new();
    for entry in std::fs::read_dir("/proc/self/fd").context("listing /proc/self/fd")? {
        let entry = entry?;
        // Descriptors may close between the listing and the reads.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if target.to_str() != Some("anon_inode:bpf-prog") {
            continue;
        }
        let info = format!("/proc/self/fdinfo/{}", entry.file_name().to_string_lossy());
        let Ok(text) = std::fs::read_to_string(&info) else {
            continue;
        };
        if let Some(id) = parse_prog_id(&text) {
            ids.insert(id);
        }
    }
    Ok(ids)
}

/// The `prog_id:` of a BPF program's fdinfo.
fn parse_prog_id(fdinfo: &str) -> Option<u32> {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("prog_id:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Attaches BPF program `prog_id` (the generator) in native mode to a new idle veth pair
/// `xbgen0`/`xbgen1` in `ns`, so that it stays in the kernel's XDP dispatcher (see the module
/// documentation). Both ends stay down and nothing is ever sent to them; the pair and the
/// attachment go with the namespace.
///
/// # Errors
///
/// When `ip` or `bpftool` (Debian package bpftool) fails.
pub fn anchor_in_dispatcher(ns: &NetNs, prog_id: u32) -> Result<()> {
    ns.ip(&[
        "link", "add", "xbgen0", "type", "veth", "peer", "name", "xbgen1",
    ])?;
    ns.exec(&[
        "bpftool",
        "net",
        "attach",
        "xdpdrv",
        "id",
        &prog_id.to_string(),
        "dev",
        "xbgen0",
    ])
    .context("attaching the generator to an idle veth with bpftool (Debian package bpftool)")?;
    Ok(())
}

/// Counters read together at the end of a generator run, so that what was sent and what
/// arrived are compared over exactly the same interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Boundary {
    /// When the run ended.
    pub at: Instant,
    /// Frames the generator sent up to then.
    pub sent: u64,
    /// What the probe counted then (e.g. frames at the sink, frames at the router).
    pub probed: Probed,
}

/// What a probe passed to [`generate`] reads at each [`Boundary`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Probed {
    /// Frames delivered to the receiver.
    pub delivered: u64,
    /// Frames taken by the router, when counted.
    pub router_rx: Option<u64>,
}

/// State shared between the generator thread and the thread that measures.
#[derive(Debug, Default)]
pub struct GenShared {
    /// The generator thread's id, once it runs.
    pub tid: AtomicU32,
    /// Set to stop the generator after its current run.
    pub stop: AtomicBool,
    /// The end of the latest completed run.
    last: Mutex<Option<Boundary>>,
    /// Nanoseconds spent inside `BPF_PROG_RUN` so far.
    busy_ns: AtomicU64,
}

impl GenShared {
    /// The end of the latest completed run.
    pub fn last(&self) -> Option<Boundary> {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Nanoseconds spent inside `BPF_PROG_RUN` so far.
    pub fn busy_ns(&self) -> u64 {
        self.busy_ns.load(Ordering::Relaxed)
    }
}

/// Runs the generator flat out on `cpu`, `repeat` frames per `BPF_PROG_RUN`, until
/// `shared.stop`, and after each run publishes a [`Boundary`] with what `probe` reads then.
/// Call from a thread inside the sender's namespace.
///
/// # Errors
///
/// When the thread cannot be pinned, a run fails or the probe fails.
pub fn generate(
    g: &mut Generator,
    ifindex: u32,
    cpu: usize,
    batch: u32,
    repeat: u32,
    shared: &GenShared,
    probe: impl Fn() -> Result<Probed>,
) -> Result<()> {
    ensure!(
        core_affinity::set_for_current(core_affinity::CoreId { id: cpu }),
        "cannot pin the generator thread to CPU {cpu}"
    );
    shared.tid.store(procfs::current_tid()?, Ordering::Release);
    let mut sent = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        sent += g.run(ifindex, batch, repeat)?;
        let t1 = Instant::now();
        shared
            .busy_ns
            .fetch_add(t1.duration_since(t0).as_nanos() as u64, Ordering::Relaxed);
        let boundary = Boundary {
            at: t1,
            sent,
            probed: probe()?,
        };
        *shared.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(boundary);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prog_id_from_fdinfo() {
        let info = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\nprog_type:\t6\n\
                    prog_jited:\t1\nprog_tag:\t3b185187f1855c4c\nmemlock:\t4096\nprog_id:\t4242\n\
                    run_time_ns:\t0\nrun_cnt:\t0\n";
        assert_eq!(parse_prog_id(info), Some(4242));
        assert_eq!(parse_prog_id("pos:\t0\n"), None);
        assert_eq!(parse_prog_id("prog_id:\tx\n"), None);
    }
}

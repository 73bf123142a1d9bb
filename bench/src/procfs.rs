//! CPU time from procfs (proc(5)): per-CPU lines of `/proc/stat`, and a task's `utime`/`stime`
//! from `/proc/PID/task/TID/stat`.
//!
//! Both count in clock ticks of `USER_HZ`, which the kernel fixes at 100 on x86-64 and arm64
//! whatever `CONFIG_HZ` is (`include/asm-generic/param.h`, `jiffies_64_to_clock_t`). With tick
//! accounting (`CONFIG_TICK_CPU_ACCOUNTING`, no `CONFIG_IRQ_TIME_ACCOUNTING`, as on the VM these
//! numbers were taken on) the kernel charges each whole tick to whatever it interrupted, so a
//! 10-second window has a resolution of 1 % per CPU and the user/system/softirq split is a
//! sample, not an exact measure.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use serde::Serialize;

/// `USER_HZ`: ticks per second in `/proc/stat` and `/proc/PID/stat`.
pub const USER_HZ: f64 = 100.0;

/// One CPU's cumulative time from a `cpuN ...` line of `/proc/stat`, in `USER_HZ` ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Normal processes in user mode.
    pub user: u64,
    /// Niced processes in user mode.
    pub nice: u64,
    /// Kernel mode outside interrupts (syscalls such as `sendto`, `BPF_PROG_RUN`, kthreads).
    pub system: u64,
    /// Idle.
    pub idle: u64,
    /// Idle with I/O outstanding.
    pub iowait: u64,
    /// Hard interrupts.
    pub irq: u64,
    /// Soft interrupts (NAPI polls, the network receive path).
    pub softirq: u64,
    /// Taken by the hypervisor for other guests.
    pub steal: u64,
}

impl CpuTimes {
    /// The time between `earlier` and `self`, per field (a counter that went backwards counts 0).
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            nice: self.nice.saturating_sub(earlier.nice),
            system: self.system.saturating_sub(earlier.system),
            idle: self.idle.saturating_sub(earlier.idle),
            iowait: self.iowait.saturating_sub(earlier.iowait),
            irq: self.irq.saturating_sub(earlier.irq),
            softirq: self.softirq.saturating_sub(earlier.softirq),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }

    /// All ticks (`guest` time is already inside `user`, so it is not added again).
    pub fn total(&self) -> u64 {
        self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
    }

    /// Each kind as a share of the total, 0..=1 (all zero when no tick passed).
    pub fn shares(&self) -> CpuShare {
        let total = self.total();
        let f = |v: u64| {
            if total == 0 {
                0.0
            } else {
                v as f64 / total as f64
            }
        };
        CpuShare {
            user: f(self.user + self.nice),
            system: f(self.system),
            softirq: f(self.softirq),
            irq: f(self.irq),
            idle: f(self.idle + self.iowait),
            steal: f(self.steal),
        }
    }
}

/// How one CPU spent a window, as shares 0..=1 that add up to 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct CpuShare {
    /// User mode (including nice).
    pub user: f64,
    /// Kernel mode outside interrupts.
    pub system: f64,
    /// Soft interrupts.
    pub softirq: f64,
    /// Hard interrupts.
    pub irq: f64,
    /// Idle (including iowait).
    pub idle: f64,
    /// Stolen by the hypervisor.
    pub steal: f64,
}

/// Parses the per-CPU lines of `/proc/stat` (`cpu0 user nice system idle iowait irq softirq
/// steal ...`; the aggregate `cpu` line is skipped). Kernels before 2.6.11 lack `steal`, which
/// then reads 0.
///
/// # Errors
///
/// When a `cpuN` line has fewer than 7 numbers or a field is not a number, or no CPU is found.
pub fn parse_proc_stat(text: &str) -> Result<BTreeMap<usize, CpuTimes>> {
    let mut cpus = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(label) = words.next() else { continue };
        let Some(n) = label.strip_prefix("cpu") else {
            continue;
        };
        if n.is_empty() {
            continue;
        }
        let cpu: usize = n
            .parse()
            .with_context(|| format!("bad CPU label {label:?} in /proc/stat"))?;
        let v: Vec<u64> = words
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("bad number in /proc/stat line {line:?}"))?;
        ensure!(
            v.len() >= 7,
            "/proc/stat line {line:?} has {} fields, expected at least 7",
            v.len()
        );
        cpus.insert(
            cpu,
            CpuTimes {
                user: v[0],
                nice: v[1],
                system: v[2],
                idle: v[3],
                iowait: v[4],
                irq: v[5],
                softirq: v[6],
                steal: v.get(7).copied().unwrap_or(0),
            },
        );
    }
    ensure!(!cpus.is_empty(), "no cpuN line in /proc/stat");
    Ok(cpus)
}

/// Reads and parses `/proc/stat`.
///
/// # Errors
///
/// When it cannot be read or parsed.
pub fn read_proc_stat() -> Result<BTreeMap<usize, CpuTimes>> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_proc_stat(&text)
}

/// A task's cumulative CPU time, from `/proc/PID/task/TID/stat`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskTimes {
    /// The task's name (`comm`).
    pub comm: String,
    /// User-mode ticks.
    pub utime: u64,
    /// Kernel-mode ticks (with tick accounting, also the soft interrupts that ran while it was
    /// the current task).
    pub stime: u64,
    /// The CPU it last ran on.
    pub cpu: usize,
}

impl TaskTimes {
    /// User and system ticks since `earlier`.
    pub fn since(&self, earlier: &TaskTimes) -> (u64, u64) {
        (
            self.utime.saturating_sub(earlier.utime),
            self.stime.saturating_sub(earlier.stime),
        )
    }
}

/// Parses a `/proc/PID/stat` (or `.../task/TID/stat`) line: `pid (comm) state ppid ...`, where
/// `comm` may itself hold spaces and parentheses, so fields are counted from the last `)`:
/// `utime` is field 14, `stime` 15 and `processor` 39 (1-based, proc(5)).
///
/// # Errors
///
/// When the line is truncated or a field is not a number.
pub fn parse_task_stat(line: &str) -> Result<TaskTimes> {
    let open = line.find('(').context("no '(' in task stat")?;
    let close = line.rfind(')').context("no ')' in task stat")?;
    if close < open {
        bail!("malformed task stat {line:?}");
    }
    let comm = line[open + 1..close].to_owned();
    // Field 3 (state) is index 0 here, so field N is index N - 3.
    let rest: Vec<&str> = line[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        rest.get(n - 3)
            .with_context(|| format!("task stat has no field {n}: {line:?}"))?
            .parse()
            .with_context(|| format!("task stat field {n} is not a number: {line:?}"))
    };
    Ok(TaskTimes {
        comm,
        utime: field(14)?,
        stime: field(15)?,
        cpu: usize::try_from(field(39)?).context("processor field out of range")?,
    })
}

/// Reads one task's times.
///
/// # Errors
///
/// When the file cannot be read (the task ended) or parsed.
pub fn read_task(pid: u32, tid: u32) -> Result<TaskTimes> {
    let path = format!("/proc/{pid}/task/{tid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_task_stat(text.trim_end())
}

/// The thread ids of process `pid` whose name is exactly `comm`.
///
/// # Errors
///
/// When `/proc/PID/task` cannot be listed (the process is gone).
pub fn threads_named(pid: u32, comm: &str) -> Result<Vec<u32>> {
    let dir = format!("/proc/{pid}/task");
    let mut tids = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {dir}"))? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if name.trim_end() == comm {
            tids.push(tid);
        }
    }
    Ok(tids)
}

/// The ids of processes (kernel threads included) whose name starts with `prefix`.
///
/// # Errors
///
/// When `/proc` cannot be listed.
pub fn processes_named_like(prefix: &str) -> Result<Vec<(u32, String)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").context("listing /proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // The process may end between the listing and the read.
        let Ok(name) =
            std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("comm"))
        else {
            continue;
        };
        let name = name.trim_end();
        if name.starts_with(prefix) {
            found.push((pid, name.to_owned()));
        }
    }
    found.sort();
    Ok(found)
}

/// The calling thread's id, from the `/proc/thread-self` link (`PID/task/TID`).
///
/// # Errors
///
/// When procfs is not mounted.
pub fn current_tid() -> Result<u32> {
    let target = std::fs::read_link("/proc/thread-self").context("reading /proc/thread-self")?;
    target
        .file_name()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("unexpected /proc/thread-self target {target:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  297416 111841 66112 432550 1011 0 8927 2033 0 0
cpu0 144615 58166 33885 215830 228 0 6246 1003 0 0
cpu1 152801 53674 32226 216720 782 0 2681 1029 0 0
intr 123456 0 0
ctxt 987654
btime 1700000000
";

    #[test]
    fn proc_stat_per_cpu_lines() {
        let cpus = parse_proc_stat(STAT).unwrap();
        assert_eq!(cpus.len(), 2, "the aggregate line is skipped");
        assert_eq!(
            cpus[&1],
            CpuTimes {
                user: 152801,
                nice: 53674,
                system: 32226,
                idle: 216720,
                iowait: 782,
                irq: 0,
                softirq: 2681,
                steal: 1029,
            }
        );
        // Old kernels without steal.
        let old = parse_proc_stat("cpu0 1 2 3 4 5 6 7\n").unwrap();
        assert_eq!(old[&0].steal, 0);
        assert_eq!(old[&0].softirq, 7);
        assert!(parse_proc_stat("cpu0 1 2 3\n").is_err(), "truncated");
        assert!(
            parse_proc_stat("cpu0 1 2 x 4 5 6 7\n").is_err(),
            "not a number"
        );
        assert!(parse_proc_stat("intr 1 2\n").is_err(), "no CPU");
    }

    #[test]
    fn cpu_deltas_and_shares() {
        let a = CpuTimes {
            user: 100,
            system: 50,
            softirq: 10,
            idle: 40,
            ..CpuTimes::default()
        };
        let b = CpuTimes {
            user: 130,
            nice: 10,
            system: 100,
            softirq: 110,
            idle: 50,
            ..CpuTimes::default()
        };
        let d = b.since(&a);
        assert_eq!(d.total(), 200);
        let s = d.shares();
        assert!((s.user - 0.2).abs() < 1e-9, "user includes nice: {s:?}");
        assert!((s.system - 0.25).abs() < 1e-9);
        assert!((s.softirq - 0.5).abs() < 1e-9);
        assert!((s.idle - 0.05).abs() < 1e-9);
        let sum = s.user + s.system + s.softirq + s.irq + s.idle + s.steal;
        assert!((sum - 1.0).abs() < 1e-9);
        // Backwards (CPU hot-unplugged and back) counts zero, and no ticks give zero shares.
        assert_eq!(a.since(&b).total(), 0);
        assert_eq!(a.since(&b).shares(), CpuShare::default());
    }

    #[test]
    fn task_stat_with_awkward_comm() {
        // comm "a) (b" holds spaces and parentheses; utime 7, stime 11, processor 1.
        let line = "4242 (a) (b) R 1 4242 4242 0 -1 4194560 100 0 0 0 7 11 0 0 20 0 3 0 \
                    123 456 789 1 2 3 4 5 6 7 8 9 10 11 12 13 17 1 0 0 0 0";
        let t = parse_task_stat(line).unwrap();
        assert_eq!(t.comm, "a) (b");
        assert_eq!((t.utime, t.stime, t.cpu), (7, 11, 1));
        let later = TaskTimes {
            utime: 10,
            stime: 31,
            ..t.clone()
        };
        assert_eq!(later.since(&t), (3, 20));
        assert!(parse_task_stat("4242 (x) R 1 2 3").is_err(), "truncated");
        assert!(parse_task_stat("no parens").is_err());
    }

    #[test]
    fn reads_this_process() {
        let tid = current_tid().unwrap();
        let t = read_task(std::process::id(), tid).unwrap();
        assert!(!t.comm.is_empty());
        assert!(read_proc_stat().unwrap().contains_key(&t.cpu));
    }
}

//! The capabilities `xfwd run` needs, checked before anything is attached so that a missing one
//! is named instead of surfacing as an `EPERM` from deep inside setup.

use anyhow::{Result, bail};

/// A Linux capability xfwd needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    /// Bit number in `CapEff`.
    pub bit: u32,
    /// Name, as `capsh` and systemd spell it.
    pub name: &'static str,
    /// What xfwd uses it for.
    pub why: &'static str,
}

/// What `xfwd run` needs.
pub const NEEDED: &[Cap] = &[
    Cap {
        bit: 12,
        name: "CAP_NET_ADMIN",
        why: "attach XDP programs, netlink requests, busy polling",
    },
    Cap {
        bit: 13,
        name: "CAP_NET_RAW",
        why: "create AF_XDP sockets",
    },
    Cap {
        bit: 39,
        name: "CAP_BPF",
        why: "load the XDP program and its maps",
    },
    Cap {
        bit: 14,
        name: "CAP_IPC_LOCK",
        why: "pin UMEM memory beyond RLIMIT_MEMLOCK",
    },
];

/// `CAP_SYS_ADMIN` implies `CAP_BPF` (kernels before 5.8 know only the former).
const CAP_SYS_ADMIN: u32 = 21;

/// Whether this process has capability number `bit` (e.g. 14, `CAP_IPC_LOCK`) in effect.
pub fn has(bit: u32) -> bool {
    effective() & (1 << bit) != 0
}

/// The effective capability set of this process (`CapEff` in `/proc/self/status`).
fn effective() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// The needed capabilities missing from an effective set.
pub fn missing_from(eff: u64) -> Vec<Cap> {
    NEEDED
        .iter()
        .copied()
        .filter(|c| {
            let has = eff & (1 << c.bit) != 0;
            let implied = c.bit == 39 && eff & (1 << CAP_SYS_ADMIN) != 0;
            !has && !implied
        })
        .collect()
}

/// Fails, naming each missing capability and its use, unless the process has them all.
///
/// # Errors
///
/// When a capability is missing.
pub fn check() -> Result<()> {
    let missing = missing_from(effective());
    if missing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = missing
        .iter()
        .map(|c| format!("{} (to {})", c.name, c.why))
        .collect();
    bail!(
        "missing capabilities: {}; run as root or grant them (systemd AmbientCapabilities=, setcap)",
        list.join(", ")
    )
}

/// What the running instance still needs once sockets are bound, programs attached and workers
/// about to start.
pub const KEPT_AFTER_SETUP: &[Cap] = &[
    Cap {
        bit: 12,
        name: "CAP_NET_ADMIN",
        why: "ask the kernel to resolve neighbours (RTM_NEWNEIGH) and detach XDP on exit",
    },
    Cap {
        bit: 39,
        name: "CAP_BPF",
        why: "update the XDP maps (local addresses, sockets); kernels before 6.5 with \
              unprivileged BPF disabled check it on every bpf() call",
    },
];

/// Names of the capabilities set in `bits`.
fn names(bits: u64) -> Vec<String> {
    (0..64)
        .filter(|b| bits & (1u64 << b) != 0)
        .map(
            |b| match NEEDED.iter().chain(KEPT_AFTER_SETUP).find(|c| c.bit == b) {
                Some(c) => c.name.to_owned(),
                None => cap_name(b),
            },
        )
        .collect()
}

fn cap_name(bit: u32) -> String {
    const NAMES: [&str; 41] = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    NAMES
        .get(bit as usize)
        .map_or_else(|| format!("cap_{bit}"), |n| (*n).to_owned())
}

/// Drops every capability of the calling thread except [`KEPT_AFTER_SETUP`] (effective,
/// permitted and inheritable sets; the ambient set follows the permitted one). Threads created
/// afterwards inherit the reduced sets, so calling this on the main thread before the workers,
/// control-socket and metrics threads start covers the whole process. Returns the names kept.
///
/// `CAP_SYS_ADMIN` stands in for `CAP_BPF` on kernels before 5.8, so it is kept when `CAP_BPF`
/// is not known there.
///
/// # Errors
///
/// When `capset(2)` fails.
pub fn drop_after_setup() -> Result<Vec<String>> {
    use rustix::thread::{CapabilitySet, CapabilitySets, capabilities, set_capabilities};
    let cur = capabilities(None)?;
    let mut keep = KEPT_AFTER_SETUP.iter().fold(0u64, |a, c| a | 1 << c.bit);
    if cur.permitted.bits() & (1 << 39) == 0 {
        keep |= 1 << CAP_SYS_ADMIN;
    }
    let kept = cur.permitted.bits() & keep;
    let set = CapabilitySet::from_bits_retain(kept);
    set_capabilities(
        None,
        CapabilitySets {
            effective: set,
            permitted: set,
            inheritable: CapabilitySet::empty(),
        },
    )?;
    let dropped = cur.permitted.bits() & !kept;
    tracing::info!(
        "privileges: keeping {}; dropped {} capabilities",
        names(kept).join(", "),
        dropped.count_ones()
    );
    Ok(names(kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_is_missing() {
        let all = NEEDED.iter().fold(0u64, |acc, c| acc | 1 << c.bit);
        assert!(missing_from(all).is_empty());
        let names: Vec<_> = missing_from(0).iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            ["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_BPF", "CAP_IPC_LOCK"]
        );
        let sys_admin_for_bpf = (all & !(1 << 39)) | 1 << CAP_SYS_ADMIN;
        assert!(missing_from(sys_admin_for_bpf).is_empty());
    }
}

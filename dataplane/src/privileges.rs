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

//! What `xfwd run` is asked to do, validated before anything touches the kernel.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::neigh::PendingLimits;
pub use crate::node::icmp::IcmpConfig;
pub use crate::node::{ForwardConfig, Martians, MultipathHash, RpFilter};

/// How the XDP program is attached.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Native (driver) mode, falling back to generic mode when the driver lacks XDP.
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (skb) mode: works everywhere, slowest.
    Generic,
}

/// How AF_XDP sockets bind.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum BindMode {
    /// Zero-copy where the driver supports it, else copy mode.
    Auto,
    /// Zero-copy only.
    ZeroCopy,
    /// Copy mode only.
    Copy,
}

/// What a worker does when its rings are empty.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum IdleMode {
    /// Spin for a while, then sleep in `poll(2)` until traffic returns (lower CPU when idle).
    Adaptive,
    /// Always spin (lowest latency; the core stays at 100 %).
    Spin,
}

/// Everything `xfwd run` needs, after validation.
#[derive(Clone, Debug, PartialEq)]
pub struct RunConfig {
    /// Interfaces to drive, in order: index = port id.
    pub interfaces: Vec<String>,
    /// CPUs for workers; worker `i` owns queue `i` of every interface.
    pub cpus: Vec<usize>,
    /// Control socket path.
    pub control: PathBuf,
    /// XDP attach mode.
    pub xdp_mode: XdpMode,
    /// AF_XDP bind mode.
    pub bind_mode: BindMode,
    /// UMEM frame size (2048 or 4096).
    pub frame_size: u32,
    /// Size of every AF_XDP ring (power of two).
    pub ring_size: u32,
    /// Idle behaviour.
    pub idle: IdleMode,
    /// Kernel busy polling on the sockets (`SO_PREFER_BUSY_POLL`, budget = batch).
    pub busy_poll: bool,
    /// Packets held while next hops resolve.
    pub pending: PendingLimits,
    /// Try huge pages for the UMEM.
    pub huge_pages: bool,
    /// Reverse-path filter (Linux `rp_filter`).
    pub rp_filter: RpFilter,
    /// Which addresses are martians (RFC 1812 or Linux).
    pub martians: Martians,
    /// Forward loose source-routed packets (Linux `accept_source_route`).
    pub accept_source_route: bool,
    /// ICMP errors (Linux `net.ipv4.icmp_*`).
    pub icmp: IcmpConfig,
    /// What multipath routes hash to pick a path (Linux `fib_multipath_hash_policy` 0 / 1).
    pub multipath_hash: MultipathHash,
}

/// How many CPUs this process may run on, as counted the first time anyone asked (before the
/// control thread moves off the workers' CPUs, which would shrink a later count: a reload must
/// still see every CPU).
pub fn process_cpus() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        n.max(core_affinity::get_core_ids().map_or(0, |v| v.len()))
    })
}

impl Default for RunConfig {
    /// The defaults of `xfwd run` (no interfaces: those must be given); one worker on the last
    /// CPU.
    fn default() -> Self {
        let n = process_cpus();
        RunConfig {
            interfaces: Vec::new(),
            cpus: vec![n - 1],
            control: PathBuf::from(super::server::DEFAULT_CONTROL),
            xdp_mode: XdpMode::Auto,
            bind_mode: BindMode::Auto,
            frame_size: 4096,
            ring_size: 4096,
            idle: IdleMode::Adaptive,
            busy_poll: false,
            pending: PendingLimits::default(),
            huge_pages: false,
            rp_filter: RpFilter::Off,
            martians: Martians::Rfc1812,
            accept_source_route: false,
            icmp: IcmpConfig::default(),
            multipath_hash: MultipathHash::L3,
        }
    }
}

impl RunConfig {
    /// The forwarding policy the workers apply.
    pub fn forward_config(&self) -> ForwardConfig {
        ForwardConfig {
            rp_filter: self.rp_filter,
            martians: self.martians,
            accept_source_route: self.accept_source_route,
            icmp: self.icmp,
            multipath_hash: self.multipath_hash,
        }
    }

    /// Frames in each worker's UMEM: enough to fill every ring of every port, plus the pending
    /// budget and two batches of slack.
    ///
    /// Per port, frames can sit in the fill ring and the RX ring on the way in, and in the TX ring
    /// and the completion ring on the way out; two rings' worth per port keeps the fill rings
    /// stocked while the TX side is full.
    pub fn frames_per_worker(&self) -> u32 {
        let ports = self.interfaces.len() as u32;
        ports * self.ring_size * 2 + self.pending.total as u32 + 2 * crate::node::BATCH as u32
    }

    /// Checks the values that do not need the kernel.
    ///
    /// # Errors
    ///
    /// Names the offending flag and value.
    pub fn validate(&self) -> Result<()> {
        if self.interfaces.is_empty() {
            bail!("no interfaces: give at least one --iface");
        }
        if self.interfaces.len() > crate::fib::MAX_PORTS {
            bail!(
                "{} interfaces given; xfwd drives at most {}",
                self.interfaces.len(),
                crate::fib::MAX_PORTS
            );
        }
        for (i, name) in self.interfaces.iter().enumerate() {
            if self.interfaces[..i].contains(name) {
                bail!("--iface {name} given twice");
            }
            if name.is_empty() || name.len() > 15 {
                bail!("--iface {name:?}: interface names are 1 to 15 bytes");
            }
        }
        if self.cpus.is_empty() {
            bail!("--cpus: no CPUs given");
        }
        let online = process_cpus();
        for &c in &self.cpus {
            if c >= online {
                bail!("--cpus: CPU {c} does not exist (this machine has {online})");
            }
        }
        if !matches!(self.frame_size, 2048 | 4096) {
            bail!("--frame-size {}: must be 2048 or 4096", self.frame_size);
        }
        if !self.ring_size.is_power_of_two() || !(64..=16384).contains(&self.ring_size) {
            bail!(
                "--ring-size {}: must be a power of two from 64 to 16384",
                self.ring_size
            );
        }
        if self.pending.per_nexthop == 0 || self.pending.total < self.pending.per_nexthop {
            bail!(
                "--unres-qlen {} / --pending-total {}: need 1 <= unres-qlen <= pending-total",
                self.pending.per_nexthop,
                self.pending.total
            );
        }
        if self.pending.timeout < Duration::from_millis(100) {
            bail!("--resolve-timeout-ms: at least 100 ms");
        }
        Ok(())
    }
}

/// Parses a CPU list like `1`, `0-3`, `1,3,5-7` (as `taskset -c` and DPDK's `-l` take it).
///
/// # Errors
///
/// On empty items, non-numbers, reversed ranges and duplicates.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>> {
    let mut cpus = Vec::new();
    for item in s.split(',') {
        let item = item.trim();
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (item, item),
        };
        let parse = |x: &str| -> Result<usize> {
            x.parse()
                .map_err(|_| anyhow::anyhow!("--cpus {s:?}: {x:?} is not a CPU number"))
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo > hi {
            bail!("--cpus {s:?}: range {lo}-{hi} is reversed");
        }
        for c in lo..=hi {
            if cpus.contains(&c) {
                bail!("--cpus {s:?}: CPU {c} listed twice");
            }
            cpus.push(c);
        }
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("1").unwrap(), vec![1]);
        assert_eq!(parse_cpu_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list(" 3 , 1 ").unwrap(), vec![3, 1]);
        for bad in ["", "a", "1-", "3-1", "1,1", "0-2,2", "-1"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?} accepted");
        }
    }
}

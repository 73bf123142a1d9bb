//! `xfwd tune [--apply]`: the NIC and CPU settings that suit xfwd's model (one worker per core,
//! worker `i` owning queue `i` of every interface), checked against the running system, printed
//! as commands, or applied. `docs/tuning.md` explains each.
//!
//! ```text
//!   per interface: queues = workers (ethtool -L) ─► RSS over those queues (ethtool -X equal N)
//!                  ─► GRO/LRO off (ethtool -K) ─► queue i's IRQ on worker i's CPU
//!                  ─► busy-poll knobs (napi_defer_hard_irqs, gro_flush_timeout)
//!                  ─► what the driver cannot do (native XDP, zero-copy)
//!   per machine:   irqbalance, isolated worker CPUs
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

/// What one line of the plan says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Already as it should be.
    Ok,
    /// A change to make (the action says how).
    Change,
    /// Something the hardware or system cannot do, or that needs a person.
    Warn,
    /// Information.
    Note,
}

/// How to make a change.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Run a command.
    Run(Vec<String>),
    /// Write a value into a file of `/proc` or `/sys`.
    Write {
        /// The file.
        path: PathBuf,
        /// The value.
        value: String,
    },
}

impl Action {
    /// The shell form, for printing.
    pub fn shell(&self) -> String {
        match self {
            Action::Run(argv) => argv.join(" "),
            Action::Write { path, value } => format!("echo {value} > {}", path.display()),
        }
    }

    fn apply(&self) -> Result<(), String> {
        match self {
            Action::Run(argv) => {
                let out = Command::new(&argv[0])
                    .args(&argv[1..])
                    .output()
                    .map_err(|e| format!("{}: {e}", argv[0]))?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
                }
            }
            Action::Write { path, value } => {
                std::fs::write(path, value).map_err(|e| format!("{}: {e}", path.display()))
            }
        }
    }
}

/// One line of the plan.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// The interface it is about (empty for the machine).
    pub iface: String,
    /// Its kind.
    pub kind: Kind,
    /// What and why, in one line.
    pub what: String,
    /// The change, for [`Kind::Change`].
    pub action: Option<Action>,
}

fn step(iface: &str, kind: Kind, what: String, action: Option<Action>) -> Step {
    Step {
        iface: iface.to_owned(),
        kind,
        what,
        action,
    }
}

fn run(argv: &[&str]) -> Option<String> {
    let out = Command::new(argv[0]).args(&argv[1..]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn argv(parts: &[&str]) -> Action {
    Action::Run(parts.iter().map(|s| (*s).to_owned()).collect())
}

/// `ethtool -l` figures: (max, current) for combined, rx and tx (`None` = n/a).
#[derive(Debug, Default, PartialEq, Eq)]
struct Channels {
    max: [Option<u32>; 3],
    cur: [Option<u32>; 3],
}

fn parse_channels(text: &str) -> Channels {
    let mut c = Channels::default();
    let mut current = false;
    for line in text.lines() {
        if line.starts_with("Current hardware settings") {
            current = true;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let i = match k.trim() {
            "Combined" => 0,
            "RX" => 1,
            "TX" => 2,
            _ => continue,
        };
        let v = v.trim().parse().ok();
        if current {
            c.cur[i] = v;
        } else {
            c.max[i] = v;
        }
    }
    c
}

/// The queues an `ethtool -x` indirection table uses, sorted.
fn rss_queues(text: &str) -> Vec<u32> {
    let mut q: Vec<u32> = text
        .lines()
        .filter_map(|l| l.trim().split_once(':'))
        .filter(|(k, _)| k.trim().parse::<u32>().is_ok())
        .flat_map(|(_, v)| {
            v.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    q.sort_unstable();
    q.dedup();
    q
}

/// Whether `ethtool -k` lists `feature: on` (and not `[fixed]`).
fn feature(text: &str, name: &str) -> Option<(bool, bool)> {
    text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix(name)?.strip_prefix(':')?.trim();
        Some((rest.starts_with("on"), rest.contains("[fixed]")))
    })
}

/// Drivers known to support native XDP and AF_XDP zero-copy (Linux 6.x).
const ZERO_COPY: &[&str] = &[
    "i40e",
    "ice",
    "ixgbe",
    "igc",
    "igb",
    "mlx5_core",
    "stmmac",
    "idpf",
    "virtio_net",
];
/// Drivers with native XDP but no AF_XDP zero-copy.
const NATIVE_ONLY: &[&str] = &[
    "veth",
    "bnxt_en",
    "mlx4_en",
    "ena",
    "nfp",
    "tun",
    "qede",
    "ixgbevf",
    "hv_netvsc",
    "sfc",
    "thunder_nicvf",
    "mvneta",
    "mvpp2",
    "dpaa2-eth",
    "enetc",
    "fec",
    "gve",
    "atlantic",
];

/// The plan for `ifaces` driven by workers on `cpus`.
pub fn plan(ifaces: &[String], cpus: &[usize], busy_poll: bool) -> Vec<Step> {
    let n = cpus.len() as u32;
    let ns = n.to_string();
    let mut steps = Vec::new();
    let interrupts = std::fs::read_to_string("/proc/interrupts").unwrap_or_default();
    for ifc in ifaces {
        let i = ifc.as_str();
        if !PathBuf::from("/sys/class/net").join(i).exists() {
            steps.push(step(i, Kind::Warn, "no such interface".into(), None));
            continue;
        }
        // Driver: native XDP and zero-copy.
        let driver = run(&["ethtool", "-i", i])
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("driver: ").map(str::to_owned))
            })
            .unwrap_or_default();
        if ZERO_COPY.contains(&driver.as_str()) {
            steps.push(step(
                i,
                Kind::Ok,
                format!("driver {driver}: native XDP and AF_XDP zero-copy"),
                None,
            ));
        } else if NATIVE_ONLY.contains(&driver.as_str()) {
            steps.push(step(
                i,
                Kind::Warn,
                format!(
                    "driver {driver}: native XDP but no AF_XDP zero-copy: sockets run in copy \
                     mode (one copy per packet each way)"
                ),
                None,
            ));
        } else {
            steps.push(step(
                i,
                Kind::Warn,
                format!(
                    "driver {driver:?}: native XDP and zero-copy support unknown; xfwd falls back \
                     to generic XDP and copy mode (check `xfwd show interfaces` once running)"
                ),
                None,
            ));
        }

        // Queues = workers.
        match run(&["ethtool", "-l", i]).map(|t| parse_channels(&t)) {
            Some(ch) if ch.max[0].is_some_and(|m| m > 0) => {
                let (max, cur) = (ch.max[0].unwrap_or(0), ch.cur[0].unwrap_or(0));
                if max < n {
                    steps.push(step(
                        i,
                        Kind::Warn,
                        format!(
                            "too few queues: at most {max} combined channel(s), {n} worker(s) \
                             need one each (use fewer CPUs)"
                        ),
                        None,
                    ));
                } else if cur != n {
                    steps.push(step(
                        i,
                        Kind::Change,
                        format!("{cur} combined channel(s): one per worker ({n}), so no queue is left to the kernel"),
                        Some(argv(&["ethtool", "-L", i, "combined", &ns])),
                    ));
                } else {
                    steps.push(step(
                        i,
                        Kind::Ok,
                        format!("{n} combined channel(s) = workers"),
                        None,
                    ));
                }
            }
            Some(ch) if ch.max[1].is_some() => {
                let (max, cur) = (ch.max[1].unwrap_or(0), ch.cur[1].unwrap_or(0));
                let cur_tx = ch.cur[2].unwrap_or(0);
                if max < n {
                    steps.push(step(
                        i,
                        Kind::Warn,
                        format!(
                            "too few queues: at most {max} RX queue(s), {n} worker(s) need one each"
                        ),
                        None,
                    ));
                } else if cur != n || cur_tx != n {
                    steps.push(step(
                        i,
                        Kind::Change,
                        format!("{cur} RX / {cur_tx} TX queue(s): one per worker ({n})"),
                        Some(argv(&["ethtool", "-L", i, "rx", &ns, "tx", &ns])),
                    ));
                } else {
                    steps.push(step(
                        i,
                        Kind::Ok,
                        format!("{n} RX/TX queue(s) = workers"),
                        None,
                    ));
                }
            }
            _ => steps.push(step(
                i,
                Kind::Warn,
                "the driver does not report channels (ethtool -l): cannot match queues to workers"
                    .into(),
                None,
            )),
        }

        // RSS spread over the workers' queues.
        if let Some(table) = run(&["ethtool", "-x", i]) {
            let used = rss_queues(&table);
            if used == (0..n).collect::<Vec<_>>() {
                steps.push(step(
                    i,
                    Kind::Ok,
                    format!("RSS spreads over queues 0..{n}"),
                    None,
                ));
            } else {
                steps.push(step(
                    i,
                    Kind::Change,
                    format!("RSS indirection table spread evenly over queues 0..{n}"),
                    Some(argv(&["ethtool", "-X", i, "equal", &ns])),
                ));
            }
        } else {
            steps.push(step(
                i,
                Kind::Note,
                "no RSS indirection table (ethtool -x): the driver picks the queue (veth: the \
                 sender's CPU)"
                    .into(),
                None,
            ));
        }

        // GRO and LRO off.
        if let Some(k) = run(&["ethtool", "-k", i]) {
            let mut off = Vec::new();
            for (name, short) in [
                ("generic-receive-offload", "gro"),
                ("large-receive-offload", "lro"),
            ] {
                if let Some((true, fixed)) = feature(&k, name) {
                    if fixed {
                        steps.push(step(
                            i,
                            Kind::Warn,
                            format!("{name} is on and fixed: the driver cannot turn it off"),
                            None,
                        ));
                    } else {
                        off.push(short);
                    }
                }
            }
            if off.is_empty() {
                steps.push(step(i, Kind::Ok, "GRO and LRO off".into(), None));
            } else {
                let mut a = vec!["ethtool", "-K", i];
                for o in &off {
                    a.extend([*o, "off"]);
                }
                steps.push(step(
                    i,
                    Kind::Change,
                    format!(
                        "{} on: coalesced frames are not what a router forwards (and LRO blocks XDP)",
                        off.join("/")
                    ),
                    Some(argv(&a)),
                ));
            }
        }

        // IRQ affinity: queue q's interrupt on worker q's CPU.
        let mut irqs = 0;
        for line in interrupts.lines() {
            let Some(name) = line.split_whitespace().last() else {
                continue;
            };
            // `eth1-TxRx-0`, `i40e-eth1-TxRx-0`, `ice-eth1-TxRx-0`, `virtio0-input.0`...
            if !name.starts_with(&format!("{i}-")) && !name.contains(&format!("-{i}-")) {
                continue;
            }
            let Some(irq) = line
                .split(':')
                .next()
                .and_then(|s| s.trim().parse::<u32>().ok())
            else {
                continue;
            };
            let digits: String = name
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let Ok(q) = digits.parse::<usize>() else {
                continue;
            };
            let Some(cpu) = cpus.get(q) else { continue };
            irqs += 1;
            let path = PathBuf::from(format!("/proc/irq/{irq}/smp_affinity_list"));
            let cur = std::fs::read_to_string(&path).unwrap_or_default();
            if cur.trim() == cpu.to_string() {
                steps.push(step(
                    i,
                    Kind::Ok,
                    format!("IRQ {irq} ({name}) on CPU {cpu}"),
                    None,
                ));
            } else {
                steps.push(step(
                    i,
                    Kind::Change,
                    format!("IRQ {irq} ({name}) of queue {q} on worker {q}'s CPU {cpu}"),
                    Some(Action::Write {
                        path,
                        value: cpu.to_string(),
                    }),
                ));
            }
        }
        if irqs == 0 {
            steps.push(step(
                i,
                Kind::Note,
                format!(
                    "no per-queue IRQs named after {i} in /proc/interrupts (virtual device, or \
                     the driver names them otherwise): pin queue q's IRQ to worker q's CPU by hand"
                ),
                None,
            ));
        }

        // Busy polling: defer hard IRQs so the worker's busy poll drives the NAPI.
        let dev = PathBuf::from("/sys/class/net").join(i);
        if busy_poll {
            for (file, want) in [
                ("napi_defer_hard_irqs", "2"),
                ("gro_flush_timeout", "200000"),
            ] {
                let path = dev.join(file);
                let cur = std::fs::read_to_string(&path).unwrap_or_default();
                if cur.trim() == want {
                    steps.push(step(i, Kind::Ok, format!("{file} = {want}"), None));
                } else {
                    steps.push(step(
                        i,
                        Kind::Change,
                        format!(
                            "{file} = {want} (busy_poll: the worker's polling replaces interrupts)"
                        ),
                        Some(Action::Write {
                            path,
                            value: want.to_owned(),
                        }),
                    ));
                }
            }
        }
    }

    // The machine.
    if !busy_poll {
        steps.push(step(
            "",
            Kind::Note,
            "busy_poll is off: interrupts drive the NAPI; enable dataplane.busy_poll for lower \
             latency at the cost of the workers' cores"
                .into(),
            None,
        ));
    }
    if run(&["pidof", "irqbalance"]).is_some() {
        steps.push(step(
            "",
            Kind::Warn,
            "irqbalance is running and will move the IRQs pinned above: stop it, or ban the \
             worker CPUs (IRQBALANCE_BANNED_CPULIST in /etc/default/irqbalance)"
                .into(),
            None,
        ));
    }
    let isolated = std::fs::read_to_string("/sys/devices/system/cpu/isolated").unwrap_or_default();
    let isolated = crate::control::config::parse_cpu_list(isolated.trim()).unwrap_or_default();
    let shared: Vec<String> = cpus
        .iter()
        .filter(|c| !isolated.contains(c))
        .map(ToString::to_string)
        .collect();
    if shared.is_empty() {
        steps.push(step("", Kind::Ok, "worker CPUs are isolated".into(), None));
    } else {
        steps.push(step(
            "",
            Kind::Note,
            format!(
                "worker CPU(s) {} are not isolated: the scheduler may run other tasks there \
                 (kernel command line isolcpus=/nohz_full=, or systemd CPUAffinity= for the rest)",
                shared.join(",")
            ),
            None,
        ));
    }
    steps
}

/// The plan for people: one line per step, changes as commands.
pub fn render(steps: &[Step]) -> String {
    let mut s = String::new();
    let mut last = None;
    for st in steps {
        if last != Some(&st.iface) {
            let title = if st.iface.is_empty() {
                "machine"
            } else {
                &st.iface
            };
            let _ = writeln!(s, "# {title}");
            last = Some(&st.iface);
        }
        let tag = match st.kind {
            Kind::Ok => "ok    ",
            Kind::Change => "change",
            Kind::Warn => "warn  ",
            Kind::Note => "note  ",
        };
        let _ = writeln!(s, "{tag} {}", st.what);
        if let Some(a) = &st.action {
            let _ = writeln!(s, "       {}", a.shell());
        }
    }
    s
}

/// Applies every change; returns `(step, error)` for those that failed.
pub fn apply(steps: &[Step]) -> Vec<(Step, String)> {
    let mut failed = Vec::new();
    for st in steps {
        if let (Kind::Change, Some(a)) = (st.kind, &st.action)
            && let Err(e) = a.apply()
        {
            failed.push((st.clone(), e));
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ethtool_output() {
        let l = "Channel parameters for a:\nPre-set maximums:\nRX:\t\t4\nTX:\t\t4\nOther:\t\tn/a\n\
                 Combined:\tn/a\nCurrent hardware settings:\nRX:\t\t2\nTX:\t\t4\nOther:\t\tn/a\n\
                 Combined:\tn/a\n";
        let c = parse_channels(l);
        assert_eq!(c.max, [None, Some(4), Some(4)]);
        assert_eq!(c.cur, [None, Some(2), Some(4)]);
        let k = "generic-receive-offload: on\nlarge-receive-offload: off [fixed]\n";
        assert_eq!(feature(k, "generic-receive-offload"), Some((true, false)));
        assert_eq!(feature(k, "large-receive-offload"), Some((false, true)));
        let x = "RX flow hash indirection table for eth1 with 4 RX ring(s):\n    0:      0     1     0     1\n    4:      1     0     1     0\nRSS hash key:\n6d:5a\n";
        assert_eq!(rss_queues(x), [0, 1]);
    }
}

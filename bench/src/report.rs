//! What `xfwd-bench forward` reports: per-run measurements, medians per system, the
//! xfwd/Linux ratio; serialised as one JSON object (`--json`) or rendered as tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::procfs::CpuShare;
use crate::summary::{median, median_of};

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct ForwardReport {
    /// The command line that produced it.
    pub command: String,
    /// When it started (UTC).
    pub date: String,
    /// `uname -r`.
    pub kernel: String,
    /// CPU model and count.
    pub machine: String,
    /// Ethernet frame size including the 4-byte FCS (the generator sends 4 bytes less).
    pub frame_size: u16,
    /// Measured window per run, seconds.
    pub duration_s: f64,
    /// Warm-up before each window, seconds.
    pub warmup_s: f64,
    /// Runs per system.
    pub runs: u32,
    /// UDP flows (distinct source ports).
    pub flows: u16,
    /// CPU the generator runs on.
    pub gen_cpu: usize,
    /// CPU the forwarding runs on.
    pub fwd_cpu: usize,
    /// Where the router's receive NAPI runs (`softirq` or `threaded`).
    pub rx_napi: String,
    /// The xfwd binary used, when xfwd was measured.
    pub xfwd_binary: Option<String>,
    /// One entry per system, in the order asked.
    pub results: Vec<SystemResult>,
    /// Median delivered rate of xfwd over that of Linux, when both were measured.
    pub ratio_xfwd_linux: Option<f64>,
    /// Set when Ctrl-C ended the benchmark early.
    pub interrupted: bool,
}

/// One system's runs and their medians.
#[derive(Clone, Debug, Serialize)]
pub struct SystemResult {
    /// `xfwd` or `linux`.
    pub system: String,
    /// Why the system could not be measured (then the remaining runs were not attempted).
    pub error: Option<String>,
    /// Median of the runs' delivered packets per second.
    pub delivered_pps_median: Option<f64>,
    /// Median of the runs' offered packets per second.
    pub offered_pps_median: Option<f64>,
    /// Median loss, percent of offered.
    pub loss_pct_median: Option<f64>,
    /// The completed runs.
    pub runs: Vec<RunResult>,
    /// Field-wise medians of the runs' CPU use.
    pub cpu: Option<CpuReport>,
    /// The line xfwd printed when it became ready (XDP and AF_XDP modes).
    pub xfwd_ready: Option<String>,
}

/// One run.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    /// Run number, from 1.
    pub run: u32,
    /// Exact length of the measured window, seconds.
    pub window_s: f64,
    /// Frames the generator sent per second.
    pub offered_pps: f64,
    /// Share of the window the generator thread spent inside `BPF_PROG_RUN` (below 1: it
    /// was descheduled or between runs).
    pub generator_busy: f64,
    /// Frames the router's receive path took per second (Linux: a counting XDP_PASS program on
    /// p0; xfwd: frames its sockets received on p0). `None` when unknown.
    pub router_rx_pps: Option<f64>,
    /// Frames refused at the router's ingress veth ring (`xdp_xmit_errors` of h1's veth) per
    /// second.
    pub ingress_ring_full_pps: f64,
    /// Frames the sink on h2 counted per second.
    pub delivered_pps: f64,
    /// Delivered bits per second on the wire (frame + FCS; no preamble or gap).
    pub delivered_bps: f64,
    /// `100 * (1 - delivered / offered)`.
    pub loss_pct: f64,
    /// CPU use in the window.
    pub cpu: CpuReport,
    /// xfwd's own counters over the window.
    pub xfwd: Option<XfwdRun>,
}

/// How the generator's and the forwarding CPU spent the window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CpuReport {
    /// The generator's CPU.
    pub generator: CpuUse,
    /// The forwarding CPU.
    pub forwarding: CpuUse,
    /// The generator thread (BPF_PROG_RUN runs in system time).
    pub gen_thread: ThreadUse,
    /// The router's receive NAPI thread, when threaded.
    pub napi_thread: Option<ThreadUse>,
    /// xfwd's worker thread.
    pub xfwd_worker: Option<ThreadUse>,
}

/// One CPU over the window.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct CpuUse {
    /// CPU number.
    pub cpu: usize,
    /// Shares of the window, from `/proc/stat`.
    #[serde(flatten)]
    pub share: CpuShare,
    /// User time on this CPU not spent by the benchmark's own pinned threads: other people's
    /// processes competing for it. A clean run has this near 0.
    pub foreign_user: f64,
}

/// One thread over the window, as shares of the window's wall time.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ThreadUse {
    /// Thread name.
    pub name: String,
    /// User-mode share.
    pub user: f64,
    /// Kernel-mode share (soft interrupts that ran while it was current included).
    pub system: f64,
}

/// xfwd's counters over a run's window (from `xfwd show stats --json` before and after).
#[derive(Clone, Debug, Default, Serialize)]
pub struct XfwdRun {
    /// Packets forwarded.
    pub forwarded: u64,
    /// Share of the worker's time in iterations that did work (mean over workers).
    pub busy_ratio: f64,
    /// Packets received per non-empty RX batch.
    pub packets_per_batch: f64,
    /// TX wake-ups (`sendto`) per forwarded packet.
    pub tx_kicks_per_packet: f64,
    /// Frames the kernel dropped on their way into xfwd's sockets per second (`rx_dropped`, e.g.
    /// fill ring empty, plus `rx_ring_full`, summed over interfaces): loss xfwd's own drop
    /// counters cannot see.
    pub xsk_rx_drop_pps: f64,
    /// Drops by reason (only reasons that fired).
    pub drops: BTreeMap<String, u64>,
    /// AF_XDP socket statistics deltas per interface (only non-zero ones).
    pub xsk: BTreeMap<String, BTreeMap<String, u64>>,
    /// XDP steering verdicts (only non-zero ones).
    pub xdp: BTreeMap<String, u64>,
}

impl SystemResult {
    /// A result for `system` from its completed runs, with medians, and the error that stopped
    /// it if any.
    pub fn new(
        system: &str,
        runs: Vec<RunResult>,
        error: Option<String>,
        xfwd_ready: Option<String>,
    ) -> Self {
        let cpu = (!runs.is_empty()).then(|| median_cpu(&runs));
        SystemResult {
            system: system.to_owned(),
            error,
            delivered_pps_median: median_of(&runs, |r| r.delivered_pps),
            offered_pps_median: median_of(&runs, |r| r.offered_pps),
            loss_pct_median: median_of(&runs, |r| r.loss_pct),
            runs,
            cpu,
            xfwd_ready,
        }
    }
}

/// Field-wise medians of the runs' CPU use.
fn median_cpu(runs: &[RunResult]) -> CpuReport {
    let cpu_use = |get: fn(&CpuReport) -> &CpuUse| {
        let m = |f: fn(&CpuUse) -> f64| median_of(runs, |r| f(get(&r.cpu))).unwrap_or(0.0);
        CpuUse {
            cpu: runs.first().map_or(0, |r| get(&r.cpu).cpu),
            share: CpuShare {
                user: m(|c| c.share.user),
                system: m(|c| c.share.system),
                softirq: m(|c| c.share.softirq),
                irq: m(|c| c.share.irq),
                idle: m(|c| c.share.idle),
                steal: m(|c| c.share.steal),
            },
            foreign_user: m(|c| c.foreign_user),
        }
    };
    let thread = |get: fn(&CpuReport) -> Option<&ThreadUse>| -> Option<ThreadUse> {
        let all: Vec<&ThreadUse> = runs.iter().filter_map(|r| get(&r.cpu)).collect();
        let first = all.first()?;
        Some(ThreadUse {
            name: first.name.clone(),
            user: median(&all.iter().map(|t| t.user).collect::<Vec<_>>()).unwrap_or(0.0),
            system: median(&all.iter().map(|t| t.system).collect::<Vec<_>>()).unwrap_or(0.0),
        })
    };
    CpuReport {
        generator: cpu_use(|c| &c.generator),
        forwarding: cpu_use(|c| &c.forwarding),
        gen_thread: thread(|c| Some(&c.gen_thread)).unwrap_or_default(),
        napi_thread: thread(|c| c.napi_thread.as_ref()),
        xfwd_worker: thread(|c| c.xfwd_worker.as_ref()),
    }
}

/// `1.234` Mpps from pps.
fn mpps(pps: f64) -> String {
    format!("{:.3}", pps / 1e6)
}

/// `usr/sys/si/idle` in whole percent.
fn cpu_cell(c: &CpuUse) -> String {
    let p = |x: f64| (x * 100.0).round();
    format!(
        "{:>3}/{:>3}/{:>3}/{:>3}",
        p(c.share.user),
        p(c.share.system),
        p(c.share.softirq),
        p(c.share.idle)
    )
}

impl ForwardReport {
    /// The tables for people.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "$ {}", self.command);
        let _ = writeln!(s, "{}  Linux {}  {}", self.date, self.kernel, self.machine);
        let _ = writeln!(
            s,
            "{}-byte frames ({} + 4 FCS), {} flow(s), {} run(s) of {} s after {} s warm-up; \
             generator on CPU {}, forwarding on CPU {}, router rx NAPI: {}",
            self.frame_size,
            self.frame_size.saturating_sub(4),
            self.flows,
            self.runs,
            self.duration_s,
            self.warmup_s,
            self.gen_cpu,
            self.fwd_cpu,
            self.rx_napi,
        );
        if let Some(b) = &self.xfwd_binary {
            let _ = writeln!(s, "xfwd: {b}");
        }
        for r in &self.results {
            if let Some(line) = &r.xfwd_ready {
                let _ = writeln!(s, "{line}");
            }
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<6} {:>3} {:>9} {:>9} {:>9} {:>9} {:>6}  {:<19} {:<19} {:>5} {:>6} {:>9} {:>5}",
            "system",
            "run",
            "offered",
            "ingress",
            "router",
            "delivered",
            "loss",
            "gen CPU",
            "fwd CPU",
            "other",
            "xfwd",
            "xsk rx",
            "xfwd"
        );
        let _ = writeln!(
            s,
            "{:<6} {:>3} {:>9} {:>9} {:>9} {:>9} {:>6}  {:<19} {:<19} {:>5} {:>7} {:>5}",
            "",
            "",
            "Mpps",
            "full Mpps",
            "rx Mpps",
            "Mpps",
            "%",
            "usr/sys/ si/idle %",
            "usr/sys/ si/idle %",
            "usr %",
            "busy %",
            "drops"
        );
        for r in &self.results {
            for run in &r.runs {
                let (busy, xsk_drop, drops) = match &run.xfwd {
                    Some(x) => (
                        format!("{:.0}", x.busy_ratio * 100.0),
                        mpps(x.xsk_rx_drop_pps),
                        x.drops.values().sum::<u64>().to_string(),
                    ),
                    None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
                };
                let foreign = run
                    .cpu
                    .generator
                    .foreign_user
                    .max(run.cpu.forwarding.foreign_user);
                let _ = writeln!(
                    s,
                    "{:<6} {:>3} {:>9} {:>9} {:>9} {:>9} {:>6.1}  {:<19} {:<19} {:>5.0} {:>6} {:>9} {:>5}",
                    r.system,
                    run.run,
                    mpps(run.offered_pps),
                    mpps(run.ingress_ring_full_pps),
                    run.router_rx_pps.map_or("-".to_owned(), mpps),
                    mpps(run.delivered_pps),
                    run.loss_pct,
                    cpu_cell(&run.cpu.generator),
                    cpu_cell(&run.cpu.forwarding),
                    foreign * 100.0,
                    busy,
                    xsk_drop,
                    drops,
                );
            }
            if let Some(e) = &r.error {
                let _ = writeln!(s, "{:<6} FAILED: {e}", r.system);
            }
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "median of runs:");
        for r in &self.results {
            match (r.delivered_pps_median, r.offered_pps_median, &r.cpu) {
                (Some(d), Some(o), Some(cpu)) => {
                    let _ = writeln!(
                        s,
                        "  {:<6} delivered {} Mpps of {} Mpps offered (loss {:.1} %); \
                         usr/sys/si/idle % gen CPU {}, fwd CPU {}",
                        r.system,
                        mpps(d),
                        mpps(o),
                        r.loss_pct_median.unwrap_or(f64::NAN),
                        cpu_cell(&cpu.generator).replace(' ', ""),
                        cpu_cell(&cpu.forwarding).replace(' ', ""),
                    );
                }
                _ => {
                    let _ = writeln!(s, "  {:<6} not measured", r.system);
                }
            }
        }
        match self.ratio_xfwd_linux {
            Some(ratio) => {
                let _ = writeln!(s, "  xfwd / linux = {ratio:.2}");
            }
            None => {
                let _ = writeln!(s, "  xfwd / linux: n/a (both must be measured)");
            }
        }
        let contended = self.results.iter().flat_map(|r| &r.runs).any(|run| {
            run.cpu.generator.foreign_user > 0.05 || run.cpu.forwarding.foreign_user > 0.05
        });
        if contended {
            let _ = writeln!(
                s,
                "note: other processes used more than 5 % of a measured CPU in some run \
                 (column `other`): those numbers understate both systems."
            );
        }
        if self.interrupted {
            let _ = writeln!(s, "interrupted: the results above are incomplete");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: u32, delivered: f64, fwd_softirq: f64) -> RunResult {
        RunResult {
            run: n,
            window_s: 10.0,
            offered_pps: 5e6,
            generator_busy: 1.0,
            router_rx_pps: Some(2e6),
            ingress_ring_full_pps: 3e6,
            delivered_pps: delivered,
            delivered_bps: delivered * 512.0,
            loss_pct: 100.0 * (1.0 - delivered / 5e6),
            cpu: CpuReport {
                forwarding: CpuUse {
                    cpu: 1,
                    share: CpuShare {
                        softirq: fwd_softirq,
                        ..CpuShare::default()
                    },
                    foreign_user: 0.0,
                },
                ..CpuReport::default()
            },
            xfwd: None,
        }
    }

    #[test]
    fn medians_per_system_and_rendering() {
        let r = SystemResult::new(
            "linux",
            vec![run(1, 1e6, 0.5), run(2, 3e6, 0.1), run(3, 2e6, 0.3)],
            None,
            None,
        );
        assert_eq!(r.delivered_pps_median, Some(2e6));
        assert_eq!(r.offered_pps_median, Some(5e6));
        let cpu = r.cpu.as_ref().unwrap();
        assert!((cpu.forwarding.share.softirq - 0.3).abs() < 1e-12);
        assert_eq!(cpu.forwarding.cpu, 1);
        let failed = SystemResult::new("xfwd", vec![], Some("did not start".into()), None);
        assert_eq!(failed.delivered_pps_median, None);
        assert!(failed.cpu.is_none());
        let report = ForwardReport {
            command: "xfwd-bench forward".into(),
            date: "2026-01-01T00:00:00Z".into(),
            kernel: "6.18".into(),
            machine: "test".into(),
            frame_size: 64,
            duration_s: 10.0,
            warmup_s: 1.0,
            runs: 3,
            flows: 1,
            gen_cpu: 0,
            fwd_cpu: 1,
            rx_napi: "threaded".into(),
            xfwd_binary: None,
            results: vec![failed, r],
            ratio_xfwd_linux: None,
            interrupted: false,
        };
        let text = report.render();
        assert!(text.contains("xfwd   FAILED: did not start"), "{text}");
        assert!(
            text.contains("linux  delivered 2.000 Mpps of 5.000 Mpps"),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["results"][1]["delivered_pps_median"], 2e6);
        assert_eq!(json["results"][0]["error"], "did not start");
        assert!(json["ratio_xfwd_linux"].is_null());
        assert_eq!(
            json["results"][1]["runs"][0]["cpu"]["forwarding"]["softirq"],
            0.5
        );
    }
}

//! `xfwd-bench`: xfwd's benchmark harness.
//!
//! - `forward`: forwarding throughput on the netns topology, xfwd against Linux in the same run
//!   ([`forward`]).
//! - `lpm`: IPv4 longest-prefix match on a full table, xfwd against `prefix-trie`,
//!   `ip_network_table` and DPDK's `rte_lpm`/`rte_fib` in the same run ([`lpm`]).
//!
//! Modules:
//! - [`forward`]: the `forward` subcommand.
//! - [`lpm`]: the `lpm` subcommand.
//! - [`napi`]: threaded NAPI, to run a veth's receive path on a chosen CPU.
//! - [`procfs`]: CPU time from `/proc/stat` and `/proc/PID/task/TID/stat`.
//! - [`report`]: results, medians, tables and JSON.
//! - [`summary`]: median and UTC timestamps.
//! - [`traffic`]: running the live-frames generator flat out.

mod dpdk;
mod e2e;
mod forward;
mod lpm;
mod napi;
mod pipeline;
mod procfs;
mod report;
mod rfc2544;
mod summary;
mod svg;
mod traffic;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "xfwd-bench",
    version,
    about = "Benchmarks for xfwd on network-namespace topologies (needs root)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Forwarding throughput h1 → router → h2 over veth: xfwd and Linux, same invocation.
    Forward(forward::ForwardArgs),
    /// IPv4 longest-prefix match on a full table: xfwd, prefix-trie, ip_network_table, DPDK.
    Lpm(lpm::LpmArgs),
    /// RFC 2544 throughput, latency and loss of xfwd, Linux, DPDK l3fwd and dpdk-testpmd on
    /// the same topology, with a Markdown report and SVG plots.
    E2e(e2e::E2eArgs),
    /// The forwarding pipeline on frames in memory: Mpps per core and ns per packet per stage.
    Pipeline(pipeline::PipelineArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xfwd-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cmd: Cmd) -> Result<ExitCode> {
    match cmd {
        Cmd::Lpm(args) => {
            let report = lpm::run(&args)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Pipeline(args) => {
            let results = pipeline::run(&args)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&results)?);
            } else {
                print!("{}", pipeline::render(&results));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::E2e(args) => {
            require_root()?;
            let stop = install_signal_handlers()?;
            let json = args.json;
            let a = args.clone();
            let report = e2e::run(args, command_line(), &stop)?;
            let dir = e2e::out_dir(&a, &report.date);
            let files = report.write(&dir)?;
            if json {
                println!("{:#}", report.json());
            } else {
                print!("{}", report.render());
            }
            eprintln!(
                "xfwd-bench: wrote {}",
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let failed = report
                .scenarios
                .iter()
                .flat_map(|s| &s.results)
                .any(|r| r.status.starts_with("failed"));
            Ok(if report.interrupted {
                ExitCode::from(130)
            } else if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Forward(args) => {
            require_root()?;
            let stop = install_signal_handlers()?;
            let json = args.json;
            let save = args.save_json.clone();
            let report = forward::run(args, command_line(), &stop)?;
            let text = serde_json::to_string_pretty(&report)?;
            if let Some(path) = save {
                std::fs::write(&path, format!("{text}\n"))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if json {
                println!("{text}");
            } else {
                print!("{}", report.render());
            }
            Ok(if report.interrupted {
                ExitCode::from(130)
            } else if report.results.iter().any(|r| r.error.is_some()) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

/// Benchmarks create namespaces, load BPF programs and run xfwd: root only.
fn require_root() -> Result<()> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .context("no effective uid in /proc/self/status")?;
    if euid != "0" {
        bail!(
            "xfwd-bench must run as root (it creates network namespaces, loads XDP programs and \
             runs xfwd); try `sudo {}`",
            command_line()
        );
    }
    Ok(())
}

/// The first Ctrl-C (SIGINT) or SIGTERM asks the benchmark to stop and clean up (namespaces
/// removed, xfwd stopped); a second one exits at once.
fn install_signal_handlers() -> Result<forward::Stop> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&flag)))
            .context("installing signal handlers")?;
    }
    Ok(forward::Stop(flag))
}

/// This process's command line, quoted for a POSIX shell where needed.
fn command_line() -> String {
    let mut args = std::env::args();
    let prog = args
        .next()
        .map(|p| {
            std::path::Path::new(&p)
                .file_name()
                .map_or(p.clone(), |f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "xfwd-bench".to_owned());
    std::iter::once(prog)
        .chain(args)
        .map(|a| shell_quote(&a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `a` as one POSIX shell word.
fn shell_quote(a: &str) -> String {
    let plain = !a.is_empty()
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=.,/:+@%".contains(&b));
    if plain {
        a.to_owned()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cli_defaults_and_lists() {
        let cli = Cli::try_parse_from(["xfwd-bench", "forward"]).unwrap();
        let Cmd::Forward(a) = cli.cmd else {
            panic!("not forward")
        };
        assert_eq!(
            a.systems,
            vec![forward::System::Xfwd, forward::System::Linux]
        );
        assert_eq!(
            (a.duration, a.runs, a.frame_size, a.flows),
            (10.0, 3, 64, 1)
        );
        assert_eq!((a.gen_cpu, a.fwd_cpu), (0, 1));
        let cli = Cli::try_parse_from([
            "xfwd-bench",
            "forward",
            "--systems",
            "linux",
            "--xfwd-arg",
            "--busy-poll",
            "--json",
        ])
        .unwrap();
        let Cmd::Forward(a) = cli.cmd else {
            panic!("not forward")
        };
        assert_eq!(a.systems, vec![forward::System::Linux]);
        assert_eq!(a.xfwd_arg, vec!["--busy-poll".to_owned()]);
        assert!(a.json);
        assert!(Cli::try_parse_from(["xfwd-bench", "forward", "--systems", "dpdk"]).is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("--flows"), "--flows");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}

//! `cargo xtask bench <what>`: the benchmarks, built in release mode and run with the project's
//! test data.
//!
//! - `lpm`: IPv4 longest-prefix match on the full table (`xfwd-bench lpm`): xfwd against
//!   `prefix-trie`, `ip_network_table` and DPDK's `rte_lpm`/`rte_fib` (when `dpdk-test-fib` is
//!   installed).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::exec::{cargo, exec, workspace_root};

/// Options of `cargo xtask bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// IPv4 longest-prefix match on the 1 M-route table (`xfwd-bench lpm`).
    Lpm(LpmArgs),
}

/// Options of `cargo xtask bench lpm`.
#[derive(Args, Debug)]
struct LpmArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Route file (default: `routes-v4-1m.txt.gz` from the shared test data, found through
    /// `XFWD_DATA_DIR` or `../shared/data` next to the workspace).
    #[arg(long)]
    table: Option<PathBuf>,
    /// More `xfwd-bench lpm` options (`--runs`, `--lookups`, `--dpdk-lpm`, ...), after `--`.
    #[arg(last = true)]
    rest: Vec<String>,
}

/// Runs `cargo xtask bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    match args.what {
        What::Lpm(a) => lpm(a),
    }
}

/// The shared test-data directory, when there is one.
pub fn data_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("XFWD_DATA_DIR") {
        return Some(d.into());
    }
    let root = workspace_root();
    // A checkout next to `shared/`, or a git worktree one level further down.
    [root.join("../shared/data"), root.join("../../shared/data")]
        .into_iter()
        .find(|d| d.is_dir())
}

fn lpm(a: LpmArgs) -> Result<()> {
    exec(cargo().args(["build", "--release", "-p", "xfwd-bench"]))?;
    let bin = workspace_root().join("target/release/xfwd-bench");
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("lpm");
    match a
        .table
        .or_else(|| data_dir().map(|d| d.join("routes-v4-1m.txt.gz")))
    {
        Some(t) => {
            cmd.arg("--table").arg(t);
        }
        None => eprintln!(
            "xtask: no shared test data (set XFWD_DATA_DIR): benchmarking a generated table"
        ),
    }
    if a.json {
        cmd.arg("--json");
    }
    cmd.args(a.rest);
    exec(&mut cmd)
}

//! `cargo xtask bench <what> [ARGS...]`: builds xfwd and `xfwd-bench` in release mode and runs
//! `xfwd-bench <what> ARGS...` (e.g. `e2e --quick --json`, `pipeline`, `forward`).
//! `lpm` defaults to the shared 1 M-route table (`--table`).
//! `e2e` also installs the DPDK packages its peers need (`dpdk`, `libdpdk-dev`, `dpdk-doc`).

use anyhow::{Result, bail};
use clap::Args;

use crate::deps;
use crate::exec::{cargo, exec, output, workspace_root};

/// Options of `cargo xtask bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The `xfwd-bench` subcommand: e2e, pipeline, forward, ...
    what: String,
    /// Its arguments, passed through.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Debian packages of the e2e benchmark's DPDK peers (a system whose packages are missing is
/// reported as not run).
pub const DPDK: &[&str] = &[
    "dpdk",
    "libdpdk-dev",
    "dpdk-doc",
    "pkg-config",
    "make",
    "gcc",
];

/// Builds and runs the benchmark.
///
/// # Errors
///
/// When the build or the benchmark fails.
pub fn run(a: BenchArgs) -> Result<()> {
    let mut pkgs = deps::BUILD.to_vec();
    pkgs.extend(deps::DEMO);
    pkgs.push("bpftool");
    if a.what == "e2e" {
        pkgs.extend(DPDK);
    }
    deps::ensure(&pkgs)?;
    eprintln!("==> cargo build --release -p xfwd -p xfwd-bench");
    exec(cargo().args(["build", "--release", "-p", "xfwd", "-p", "xfwd-bench"]))?;
    let bin = workspace_root().join("target/release/xfwd-bench");
    if !bin.is_file() {
        bail!("{} was not built", bin.display());
    }
    let mut cmd = std::process::Command::new(bin);
    cmd.arg(&a.what).args(&a.args);
    // `lpm` benchmarks the shared 1 M-route table unless told otherwise.
    if a.what == "lpm" && !a.args.iter().any(|x| x.starts_with("--table")) {
        match data_dir().map(|d| d.join("routes-v4-1m.txt.gz")) {
            Some(t) => {
                cmd.arg("--table").arg(t);
            }
            None => eprintln!(
                "xtask: no shared test data (set XFWD_DATA_DIR): benchmarking a generated table"
            ),
        }
    }
    exec(&mut cmd)
}

/// The shared test-data directory (`XFWD_DATA_DIR`, else `../shared/data` next to the
/// workspace or, from a git worktree, one level further up), when there is one.
pub fn data_dir() -> Option<std::path::PathBuf> {
    if let Some(d) = std::env::var_os("XFWD_DATA_DIR") {
        return Some(d.into());
    }
    let root = workspace_root();
    [root.join("../shared/data"), root.join("../../shared/data")]
        .into_iter()
        .find(|d| d.is_dir())
}

/// CI smoke test of `xfwd-bench e2e`: xfwd (debug build) and Linux, 64-byte frames, tiny
/// trials. Asserts nothing about speed: only that it runs and that its JSON has the promised
/// shape, every system measured.
///
/// # Errors
///
/// When the run fails or its output is not the documented JSON.
pub fn smoke() -> Result<()> {
    eprintln!("==> xfwd-bench e2e smoke test (xfwd, linux; tiny trials)");
    exec(cargo().args(["build", "-p", "xfwd", "-p", "xfwd-bench"]))?;
    let root = workspace_root();
    let out_dir = root.join("target/xfwd-bench/ci-smoke");
    let text = output(
        std::process::Command::new(root.join("target/debug/xfwd-bench"))
            .args([
                "e2e",
                "--quick",
                "--systems",
                "xfwd,linux",
                "--trial",
                "0.2",
            ])
            .args(["--max-trials", "3", "--json", "--xfwd"])
            .arg(root.join("target/debug/xfwd"))
            .arg("--out")
            .arg(&out_dir),
    )?;
    check_e2e_json(&text, &["xfwd", "linux"])?;
    if !out_dir.join("report.md").is_file() || !out_dir.join("throughput-routes-1.svg").is_file() {
        bail!(
            "xfwd-bench e2e wrote no report.md or plot in {}",
            out_dir.display()
        );
    }
    eprintln!("==> xfwd-bench e2e smoke test passed");
    Ok(())
}

/// Checks `text` is the e2e JSON array with a measured result for each of `systems`.
fn check_e2e_json(text: &str, systems: &[&str]) -> Result<()> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| anyhow::anyhow!("xfwd-bench e2e --json printed invalid JSON: {e}"))?;
    let Some(scenarios) = v.as_array().filter(|a| !a.is_empty()) else {
        bail!("xfwd-bench e2e --json: not a non-empty array");
    };
    for sc in scenarios {
        if !sc["frame_size"].is_u64() {
            bail!("scenario without frame_size: {sc}");
        }
        for sys in systems {
            let Some(r) = sc["results"]
                .as_array()
                .and_then(|rs| rs.iter().find(|r| r["system"] == *sys))
            else {
                bail!("no result for {sys} in {sc}");
            };
            if r["status"] != "ok"
                || !r["zero_loss_pps"].is_number()
                || !r["max_pps"].is_number()
                || !r["cpu"].is_object()
            {
                bail!("{sys} was not measured: {r}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e2e_json_shape_is_checked() {
        let ok = r#"[{"frame_size":64,"results":[{"system":"linux","status":"ok",
            "zero_loss_pps":1.0,"max_pps":2.0,"cpu":{},"latency_ns":null}]}]"#;
        assert!(check_e2e_json(ok, &["linux"]).is_ok());
        assert!(check_e2e_json(ok, &["xfwd"]).is_err());
        assert!(check_e2e_json("[]", &["linux"]).is_err());
        assert!(check_e2e_json("{", &["linux"]).is_err());
        let failed = ok.replace(r#""status":"ok""#, r#""status":"failed: x""#);
        assert!(check_e2e_json(&failed, &["linux"]).is_err());
    }
}

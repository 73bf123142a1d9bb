//! `cargo xtask test`: everything that must pass before a change lands.

use anyhow::Result;
use clap::Args;

use crate::deps;
use crate::exec::{cargo, exec, is_root};

/// Options of `cargo xtask test`.
#[derive(Args, Debug)]
pub struct TestArgs {
    /// Skip `cargo fmt --check` and clippy (tests only).
    #[arg(long)]
    no_lint: bool,
    /// Extra arguments for `cargo test` (e.g. a test name filter), after `--`.
    #[arg(last = true)]
    cargo_args: Vec<String>,
}

/// Runs the suite.
///
/// # Errors
///
/// When a step fails; the error names it.
pub fn run(args: TestArgs) -> Result<()> {
    let mut pkgs = deps::BUILD.to_vec();
    pkgs.extend(deps::DEMO);
    pkgs.extend(deps::TEST);
    deps::ensure(&pkgs)?;
    if !is_root() {
        eprintln!(
            "==> Not root: privileged tests (network namespaces, XDP, AF_XDP) will be SKIPPED. \
             Run as root for the whole suite."
        );
    }
    if !args.no_lint {
        eprintln!("==> cargo fmt --check");
        exec(cargo().args(["fmt", "--all", "--", "--check"]))?;
        eprintln!("==> cargo clippy");
        exec(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    eprintln!("==> cargo test (unit, property, BPF and end-to-end tests)");
    exec(
        cargo()
            .args(["test", "--workspace", "--all-targets"])
            .args(&args.cargo_args),
    )?;
    eprintln!("==> cargo test --doc");
    exec(cargo().args(["test", "--workspace", "--doc"]))?;
    eprintln!("==> Debian package: build, unpack into a throwaway root, run the installed binary");
    crate::deb::ci_check()?;
    if is_root() {
        crate::bench::smoke()?;
    }
    eprintln!("==> all tests passed");
    Ok(())
}

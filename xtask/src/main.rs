//! `cargo xtask`: the project's own commands.
//!
//! - `cargo xtask demo`: build xfwd and show it forwarding in a network-namespace topology.
//! - `cargo xtask bench <what> [ARGS]`: build in release mode and run `xfwd-bench <what>`
//!   (`e2e`, `pipeline`, `forward`).
//! - `cargo xtask deb`: build the Debian package.
//! - `cargo xtask test`: the whole test suite (formatting, lints, unit, property and privileged
//!   end-to-end tests).
//!
//! Each installs the Debian packages it needs first, when missing.

mod bench;
mod deb;
mod demo;
mod deps;
mod exec;
mod test;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "cargo xtask", about = "xfwd's project commands")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Build in release mode and run a benchmark: `bench e2e [--quick] [--json]`, `bench pipeline`.
    Bench(bench::BenchArgs),
    /// Build xfwd and show it forwarding between network namespaces (needs root).
    Demo(demo::DemoArgs),
    /// Build the Debian package (target/deb/xfwd_VERSION_ARCH.deb).
    Deb(deb::DebArgs),
    /// Run the whole test suite (privileged tests need root; XFWD_PRIV_TESTS=1 makes skipping fail).
    Test(test::TestArgs),
}

fn main() {
    let cli = Cli::parse();
    let result: Result<()> = match cli.cmd {
        Cmd::Bench(a) => bench::run(a),
        Cmd::Demo(a) => demo::run(a),
        Cmd::Deb(a) if a.check => deb::check(&a),
        Cmd::Deb(a) => deb::run(&a).map(|_| ()),
        Cmd::Test(a) => test::run(a),
    };
    if let Err(e) = result {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

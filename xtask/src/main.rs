//! `cargo xtask`: the project's own commands.
//!
//! - `cargo xtask demo`: build xfwd and show it forwarding in a network-namespace topology.
//! - `cargo xtask bench <what>`: a benchmark in release mode (`lpm`: longest-prefix match).
//! - `cargo xtask deb`: build the Debian package.
//! - `cargo xtask test`: the whole test suite (formatting, lints, unit, property and privileged
//!   end-to-end tests).
//!
//! Both install the Debian packages they need first, when missing.

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
    /// Build xfwd and show it forwarding between network namespaces (needs root).
    Demo(demo::DemoArgs),
    /// Run a benchmark (`lpm`: longest-prefix match on the full table).
    Bench(bench::BenchArgs),
    /// Build the Debian package (target/deb/xfwd_VERSION_ARCH.deb).
    Deb(deb::DebArgs),
    /// Run the whole test suite (privileged tests need root; XFWD_PRIV_TESTS=1 makes skipping fail).
    Test(test::TestArgs),
}

fn main() {
    let cli = Cli::parse();
    let result: Result<()> = match cli.cmd {
        Cmd::Demo(a) => demo::run(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Deb(a) if a.check => deb::check(&a),
        Cmd::Deb(a) => deb::run(&a).map(|_| ()),
        Cmd::Test(a) => test::run(a),
    };
    if let Err(e) = result {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

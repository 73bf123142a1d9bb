//! Debian packages the demo and the tests need, installed when missing.

use std::process::Command;

use anyhow::{Result, bail};

use crate::exec::{exec, is_root};

/// Build: clang compiles the XDP programs against libbpf's headers.
pub const BUILD: &[&str] = &["clang", "llvm", "libbpf-dev"];
/// Running the demo topology.
pub const DEMO: &[&str] = &["iproute2", "ethtool", "iputils-ping"];
/// The test suite's extra tools.
pub const TEST: &[&str] = &["tcpdump", "bpftool", "python3-scapy", "bird2"];

/// Installs whichever of `pkgs` are not installed yet (one `apt-get install`).
///
/// # Errors
///
/// When packages are missing and we are not root, or apt fails.
pub fn ensure(pkgs: &[&str]) -> Result<()> {
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing Debian packages: {} (run as root, or apt-get install them)",
            missing.join(" ")
        );
    }
    eprintln!("==> Installing missing packages: {}", missing.join(" "));
    let apt = |args: &[&str]| {
        let mut c = Command::new("apt-get");
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        exec(&mut c)
    };
    // A fresh machine may have no package lists yet; an install failure retries after update.
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(&missing);
    if apt(&args).is_err() {
        apt(&["update", "-q"])?;
        apt(&args)?;
    }
    Ok(())
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

//! `cargo xtask deb`: a Debian package of xfwd, built with `dpkg-deb`.
//!
//! ```text
//!   /usr/bin/xfwd                         the binary (the XDP program is embedded in it)
//!   /lib/systemd/system/xfwd.service      deploy/xfwd.service
//!   /etc/xfwd/xfwd.toml                   deploy/xfwd.toml, a conffile (kept on upgrade)
//!   /usr/share/man/man1/xfwd*.1.gz        generated from the CLI definition (`xfwd man`)
//!   /usr/share/doc/xfwd/                  README, CHANGELOG, docs/*.md, copyright
//! ```
//!
//! The package does not start or enable the service: the default configuration names example
//! interfaces that must be edited first (`systemctl enable --now xfwd` afterwards).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::exec::{cargo, exec, output, workspace_root};

/// Options of `cargo xtask deb`.
#[derive(Args, Debug)]
pub struct DebArgs {
    /// Directory for the .deb.
    #[arg(long, value_name = "DIR", default_value = "target/deb")]
    out: PathBuf,
    /// Package the debug build instead of the release build (quick, for CI's install check).
    #[arg(long)]
    dev: bool,
    /// Then unpack it into a throwaway root and run the installed binary (what CI does).
    #[arg(long)]
    pub check: bool,
}

/// Builds the package; returns its path.
///
/// # Errors
///
/// When the build, a copy or `dpkg-deb` fails.
pub fn run(args: &DebArgs) -> Result<PathBuf> {
    let root = workspace_root();
    let profile = if args.dev { "debug" } else { "release" };
    eprintln!("==> cargo build -p xfwd ({profile})");
    let mut build = cargo();
    build.args(["build", "-p", "xfwd", "--bin", "xfwd"]);
    if !args.dev {
        build.arg("--release");
    }
    exec(&mut build)?;
    let bin = root.join("target").join(profile).join("xfwd");

    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        root.join(&args.out)
    };
    let stage = out.join("stage");
    if stage.exists() {
        std::fs::remove_dir_all(&stage).with_context(|| format!("clearing {}", stage.display()))?;
    }
    let put = |src: &Path, dst: &str, mode: u32| -> Result<()> {
        let dst = stage.join(dst);
        std::fs::create_dir_all(dst.parent().expect("staged paths have a parent"))?;
        std::fs::copy(src, &dst)
            .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    };
    put(&bin, "usr/bin/xfwd", 0o755)?;
    // Debug info stays in target/; the package ships a stripped binary.
    exec(
        Command::new("strip")
            .args(["--strip-debug"])
            .arg(stage.join("usr/bin/xfwd")),
    )?;
    put(
        &root.join("deploy/xfwd.service"),
        "lib/systemd/system/xfwd.service",
        0o644,
    )?;
    put(&root.join("deploy/xfwd.toml"), "etc/xfwd/xfwd.toml", 0o644)?;
    let doc = "usr/share/doc/xfwd";
    put(&root.join("README.md"), &format!("{doc}/README.md"), 0o644)?;
    put(
        &root.join("CHANGELOG.md"),
        &format!("{doc}/CHANGELOG.md"),
        0o644,
    )?;
    for entry in std::fs::read_dir(root.join("docs"))? {
        let p = entry?.path();
        if p.extension().is_some_and(|e| e == "md") {
            let name = p
                .file_name()
                .expect("read_dir entries have names")
                .to_string_lossy();
            put(&p, &format!("{doc}/{name}"), 0o644)?;
        }
    }
    std::fs::write(
        stage.join(doc).join("copyright"),
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: xfwd\nSource: https://github.com/xfwd/xfwd\n\n\
         Files: *\nLicense: MIT or Apache-2.0\n",
    )?;
    let man = stage.join("usr/share/man/man1");
    exec(Command::new(&bin).arg("man").arg("--out").arg(&man))?;
    for entry in std::fs::read_dir(&man)? {
        exec(Command::new("gzip").args(["-9", "-n"]).arg(entry?.path()))?;
    }

    let version = env!("CARGO_PKG_VERSION");
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?
        .trim()
        .to_owned();
    let size_kib = du_kib(&stage)?;
    let debian = stage.join("DEBIAN");
    std::fs::create_dir_all(&debian)?;
    std::fs::write(
        debian.join("control"),
        format!(
            "Package: xfwd\nVersion: {version}\nArchitecture: {arch}\nSection: net\n\
             Priority: optional\nMaintainer: xfwd developers <xfwd@users.noreply.github.com>\n\
             Depends: libc6 (>= 2.36)\nRecommends: ethtool, iproute2\nSuggests: bird2 | frr\n\
             Installed-Size: {size_kib}\nHomepage: https://github.com/xfwd/xfwd\n\
             Description: AF_XDP kernel-bypass IPv4 forwarding dataplane\n \
             xfwd forwards IPv4 between network interfaces through AF_XDP sockets, one pinned\n \
             worker per core, following the routes, addresses and neighbours of the Linux\n \
             kernel (set by ip, FRR or BIRD). Traffic it does not handle, and all traffic\n \
             while it is stopped, goes to the kernel.\n"
        ),
    )?;
    std::fs::write(debian.join("conffiles"), "/etc/xfwd/xfwd.toml\n")?;
    let script = |name: &str, body: &str| -> Result<()> {
        let p = debian.join(name);
        std::fs::write(&p, format!("#!/bin/sh\nset -e\n{body}"))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        Ok(())
    };
    script(
        "postinst",
        "if [ \"$1\" = configure ] && [ -d /run/systemd/system ]; then\n  \
         systemctl daemon-reload || true\n  \
         # Upgrades restart a running instance (traffic falls back to the kernel meanwhile).\n  \
         if systemctl is-active --quiet xfwd; then systemctl restart xfwd || true; fi\nfi\n",
    )?;
    script(
        "prerm",
        "if [ \"$1\" = remove ] && [ -d /run/systemd/system ]; then\n  \
         systemctl stop xfwd || true\nfi\n",
    )?;
    script(
        "postrm",
        "if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n",
    )?;

    let deb = out.join(format!("xfwd_{version}_{arch}.deb"));
    exec(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            // The CI check needs a quick build, not the smallest file.
            .args(if args.dev {
                ["-Zgzip", "-z1"]
            } else {
                ["-Zxz", "-z6"]
            })
            .arg(&stage)
            .arg(&deb),
    )?;
    eprintln!("==> {}", deb.display());
    Ok(deb)
}

fn du_kib(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            du_kib(&entry.path())? * 1024
        } else {
            meta.len()
        };
    }
    Ok(total.div_ceil(1024))
}

/// CI's package check: build the package (debug build), unpack it into a throwaway root with
/// `dpkg -x`, and run the installed binary on the installed default configuration.
///
/// # Errors
///
/// When any step fails or the installed files are missing.
pub fn ci_check() -> Result<()> {
    check(&DebArgs {
        out: workspace_root().join("target/deb-ci"),
        dev: true,
        check: true,
    })
}

/// Builds the package as `args` say, then checks it as [`ci_check`] does.
///
/// # Errors
///
/// As [`ci_check`].
pub fn check(args: &DebArgs) -> Result<()> {
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        workspace_root().join(&args.out)
    };
    let deb = run(args)?;
    let root = out.join("root");
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    exec(Command::new("dpkg").arg("-x").arg(&deb).arg(&root))?;
    let bin = root.join("usr/bin/xfwd");
    let version = output(Command::new(&bin).arg("--version"))?;
    if !version.contains(env!("CARGO_PKG_VERSION")) {
        bail!("installed xfwd --version says {version:?}");
    }
    let conf = root.join("etc/xfwd/xfwd.toml");
    let check = output(Command::new(&bin).arg("check").arg("-c").arg(&conf))?;
    for f in [
        "lib/systemd/system/xfwd.service",
        "usr/share/man/man1/xfwd.1.gz",
        "usr/share/man/man1/xfwd-run.1.gz",
        "usr/share/doc/xfwd/operations.md",
        "usr/share/doc/xfwd/configuration.md",
    ] {
        if !root.join(f).exists() {
            bail!("the package lacks /{f}");
        }
    }
    let conffiles = output(
        Command::new("dpkg-deb")
            .arg("-I")
            .arg(&deb)
            .arg("conffiles"),
    )?;
    if conffiles.trim() != "/etc/xfwd/xfwd.toml" {
        bail!("conffiles: {conffiles:?}");
    }
    eprintln!(
        "==> package installs: {} ; {}",
        version.trim(),
        check.trim()
    );
    Ok(())
}

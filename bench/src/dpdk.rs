//! The DPDK peers of the e2e benchmark, over the `net_af_xdp` PMD on the router's veths:
//!
//! - `dpdk-l3fwd`: DPDK's `l3fwd` example, built at bench time from Debian's `dpdk-doc`
//!   source (`/usr/share/dpdk/examples/l3fwd`) against `libdpdk-dev`, in a temporary
//!   directory, with the three changes it needs to route over AF_XDP (see [`L3FWD_CHANGES`]).
//!   No DPDK code lives in this repository: only the edits below, applied to a copy.
//! - `dpdk-testpmd`: Debian's `dpdk-testpmd` in `io` forward mode (no lookup, no header
//!   rewrite): an L2 upper bound for any forwarder on this path.
//!
//! Both run in the router namespace with `--no-huge` on the forwarding CPU, one port per veth
//! (`--vdev net_af_xdp0,iface=p0 --vdev net_af_xdp1,iface=p1`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use xfwd_testbed::{Daemon, Signal, Topology};

/// Where Debian's `dpdk-doc` puts the examples.
const EXAMPLES: &str = "/usr/share/dpdk/examples";
/// How long a DPDK process may take to start forwarding (1 M routes into rte_lpm: seconds).
const READY: Duration = Duration::from_secs(300);

/// `(file, from, to, why)`: the edits applied to the copy of l3fwd's source. The first three
/// are what routing over AF_XDP with a full table needs (DESIGN.md); the fourth only keeps a
/// million "Adding route" lines out of the log (no behaviour change).
pub const L3FWD_CHANGES: [(&str, &str, &str, &str); 4] = [
    (
        "main.c",
        ".offloads = RTE_ETH_RX_OFFLOAD_CHECKSUM,",
        ".offloads = 0, /* xfwd-bench: net_af_xdp has no RX checksum offload */",
        "net_af_xdp offers no RX checksum offload: port configuration fails with it",
    ),
    (
        "l3fwd_lpm.c",
        "#define IPV4_L3FWD_LPM_MAX_RULES         1024",
        "#define IPV4_L3FWD_LPM_MAX_RULES         (2 << 20) /* xfwd-bench: 1 M table */",
        "the 1 M route table does not fit in 1024 rules",
    ),
    (
        "l3fwd_lpm.c",
        "#define IPV4_L3FWD_LPM_NUMBER_TBL8S (1 << 8)",
        "#define IPV4_L3FWD_LPM_NUMBER_TBL8S (1 << 16) /* xfwd-bench: 1 M table */",
        "prefixes longer than /24 need a tbl8 group per /24: 256 are far too few",
    ),
    (
        "l3fwd_lpm.c",
        "\t\tin.s_addr = htonl(route_base_v4[i].ip);\n\t\tprintf(",
        "\t\tin.s_addr = htonl(route_base_v4[i].ip);\n\t\tif (route_num_v4 <= 64) printf(",
        "one log line per route of a 1 M table takes minutes through a pipe",
    ),
];

/// Applies [`L3FWD_CHANGES`] to the l3fwd source in `dir`.
///
/// # Errors
///
/// When a file cannot be read or written, or an edit does not apply (another DPDK version).
pub fn patch_l3fwd(dir: &Path) -> Result<()> {
    for (file, from, to, why) in L3FWD_CHANGES {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        ensure!(
            text.matches(from).count() == 1,
            "l3fwd source {} does not contain {from:?} exactly once (DPDK version?); needed \
             because {why}",
            path.display()
        );
        std::fs::write(&path, text.replace(from, to))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Builds the patched l3fwd (once per source version: cached under the temp directory) and
/// returns its path.
///
/// # Errors
///
/// When `dpdk-doc`/`libdpdk-dev` are missing or the build fails (with its log).
pub fn build_l3fwd() -> Result<PathBuf> {
    let src = Path::new(EXAMPLES).join("l3fwd");
    ensure!(
        src.join("main.c").is_file(),
        "no l3fwd source at {} (Debian package dpdk-doc)",
        src.display()
    );
    let pkg = Command::new("pkg-config")
        .args(["--modversion", "libdpdk"])
        .output()
        .context("pkg-config (Debian package pkg-config)")?;
    ensure!(
        pkg.status.success(),
        "pkg-config finds no libdpdk (Debian package libdpdk-dev)"
    );
    let version = String::from_utf8_lossy(&pkg.stdout).trim().to_owned();
    let dir = std::env::temp_dir().join(format!("xfwd-bench-l3fwd-{version}-v2"));
    let bin = dir.join("l3fwd/build/l3fwd");
    if bin.is_file() {
        return Ok(bin);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let cp = Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(dir.join("l3fwd"))
        .status()
        .context("cp")?;
    ensure!(cp.success(), "copying {} failed", src.display());
    patch_l3fwd(&dir.join("l3fwd"))?;
    let out = Command::new("make")
        .current_dir(dir.join("l3fwd"))
        .env("CFLAGS", format!("-I{EXAMPLES}/common"))
        .args(["-j2", "shared"])
        .output()
        .context("make (Debian packages make, gcc)")?;
    if !out.status.success() || !bin.is_file() {
        bail!(
            "building l3fwd failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(bin)
}

/// Writes l3fwd's route files (`R<prefix>/<len> <port>` lines) for `routes` (all via port 1,
/// towards h2) plus the topology's own links, and returns `(ipv4, ipv6)` paths.
///
/// # Errors
///
/// When the files cannot be written.
pub fn write_l3fwd_rules(
    dir: &Path,
    topo: &Topology,
    routes: &[(u32, u8)],
) -> Result<(PathBuf, PathBuf)> {
    use xfwd_testbed::End;
    let v4 = dir.join("routes-v4.cfg");
    let v6 = dir.join("routes-v6.cfg");
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&v4).with_context(|| format!("creating {}", v4.display()))?,
    );
    let link0 = topo.iface(End::P0);
    let link1 = topo.iface(End::P1);
    writeln!(
        f,
        "R{}/{} 0",
        link0.subnet.addr(),
        link0.subnet.prefix_len()
    )?;
    writeln!(
        f,
        "R{}/{} 1",
        link1.subnet.addr(),
        link1.subnet.prefix_len()
    )?;
    for p in topo.behind_h2() {
        writeln!(f, "R{}/{} 1", p.addr(), p.prefix_len())?;
    }
    for &(addr, len) in routes {
        writeln!(f, "R{}/{len} 1", std::net::Ipv4Addr::from(addr))?;
    }
    f.flush()?;
    std::fs::write(&v6, "R2001:db8::/32 1\n")
        .with_context(|| format!("writing {}", v6.display()))?;
    Ok((v4, v6))
}

/// The EAL's two `net_af_xdp` ports (0 = p0 towards h1, 1 = p1 towards h2) and the end of the
/// EAL's arguments, for both DPDK programs.
const AF_XDP_PORTS: [&str; 5] = [
    "--vdev",
    "net_af_xdp0,iface=p0",
    "--vdev",
    "net_af_xdp1,iface=p1",
    "--",
];

/// A DPDK process in the router namespace; SIGTERM (then SIGKILL) on drop.
pub struct DpdkProc {
    daemon: Daemon,
}

impl std::fmt::Debug for DpdkProc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpdkProc")
            .field("pid", &self.daemon.pid())
            .finish()
    }
}

impl DpdkProc {
    fn start(topo: &Topology, argv: &[&str], ready: &str) -> Result<DpdkProc> {
        // Line-buffered stdout: DPDK prints with stdio, and a pipe would hold its lines back.
        let mut full = vec!["stdbuf", "-oL", "-eL"];
        full.extend_from_slice(argv);
        let mut daemon = Daemon::spawn(topo.router(), &full)?;
        let deadline = Instant::now() + READY;
        loop {
            match daemon.wait_for_line(ready, Duration::from_millis(500)) {
                Ok(_) => break,
                Err(e) => {
                    if let Ok(status) = daemon.wait_exit(Duration::ZERO) {
                        bail!("{} exited ({status}) before forwarding: {e:#}", argv[0]);
                    }
                    if Instant::now() >= deadline {
                        bail!("{} not forwarding after {READY:?}: {e:#}", argv[0]);
                    }
                }
            }
        }
        Ok(DpdkProc { daemon })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// The last `n` lines of its output.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.daemon.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// l3fwd (LPM) on `cpu`, ports 0 = p0 (towards h1) and 1 = p1 (towards h2), destination
    /// MACs h1's and h2's.
    ///
    /// # Errors
    ///
    /// When it does not start forwarding (its log is in the error).
    pub fn l3fwd(
        bin: &Path,
        topo: &Topology,
        cpu: usize,
        rules: &(PathBuf, PathBuf),
        queue_size: Option<u16>,
    ) -> Result<DpdkProc> {
        use xfwd_testbed::End;
        let mac = |e: End| {
            let m = topo.iface(e).mac;
            format!(
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            )
        };
        let bin_s = bin.to_string_lossy().into_owned();
        let cpu_s = cpu.to_string();
        let config = format!("(0,0,{cpu}),(1,0,{cpu})");
        let dest0 = format!("--eth-dest=0,{}", mac(End::H1));
        let dest1 = format!("--eth-dest=1,{}", mac(End::H2));
        let r4 = format!("--rule_ipv4={}", rules.0.display());
        let r6 = format!("--rule_ipv6={}", rules.1.display());
        let file_prefix = format!("--file-prefix={}", topo.router().name());
        let sizes = queue_size.map(|n| {
            [
                format!("--rx-queue-size={n}"),
                format!("--tx-queue-size={n}"),
            ]
        });
        let mut argv = vec![
            bin_s.as_str(),
            "--no-huge",
            "-m",
            "1024",
            "-l",
            &cpu_s,
            "--no-pci",
            &file_prefix,
        ];
        argv.extend(AF_XDP_PORTS);
        argv.extend([
            "-p",
            "0x3",
            "--lookup=lpm",
            "--parse-ptype",
            "--config",
            &config,
            &dest0,
            &dest1,
            &r4,
            &r6,
        ]);
        argv.extend(sizes.iter().flatten().map(String::as_str));
        DpdkProc::start(topo, &argv, "entering main loop on lcore")
    }

    /// `dpdk-testpmd` io forwarding (port 0 ⇄ port 1, no header change) on `cpu`.
    ///
    /// # Errors
    ///
    /// When it does not start forwarding (its log is in the error).
    pub fn testpmd(
        topo: &Topology,
        main_cpu: usize,
        cpu: usize,
        queue_size: Option<u16>,
    ) -> Result<DpdkProc> {
        let sizes = queue_size.map(|n| [format!("--rxd={n}"), format!("--txd={n}")]);
        let lcores = format!("{main_cpu},{cpu}");
        let main = main_cpu.to_string();
        let file_prefix = format!("--file-prefix={}", topo.router().name());
        let mut argv = vec![
            "dpdk-testpmd",
            "--no-huge",
            "-m",
            "512",
            "-l",
            &lcores,
            "--main-lcore",
            &main,
            "--no-pci",
            &file_prefix,
        ];
        argv.extend(AF_XDP_PORTS);
        argv.extend([
            "--forward-mode=io",
            // The default pool (155 k mbufs) does not fit in --no-huge memory.
            "--total-num-mbufs=32768",
            "--nb-cores=1",
            "--auto-start",
            // Without a terminal, testpmd only keeps running in its statistics loop.
            "--stats-period=3600",
        ]);
        argv.extend(sizes.iter().flatten().map(String::as_str));
        DpdkProc::start(topo, &argv, "packet forwarding - ports=")
    }
}

impl Drop for DpdkProc {
    fn drop(&mut self) {
        if self.daemon.signal(Signal::Term).is_ok()
            && self.daemon.wait_exit(Duration::from_secs(10)).is_err()
        {
            eprintln!("xfwd-bench: a DPDK process did not stop on SIGTERM, killing it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_once_and_fail_loudly_otherwise() {
        let dir = std::env::temp_dir().join(format!("xfwd-bench-patch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("main.c"),
            "x\n\t\t.offloads = RTE_ETH_RX_OFFLOAD_CHECKSUM,\ny\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("l3fwd_lpm.c"),
            "#define IPV4_L3FWD_LPM_MAX_RULES         1024\n\
             #define IPV4_L3FWD_LPM_NUMBER_TBL8S (1 << 8)\n\
             \t\tin.s_addr = htonl(route_base_v4[i].ip);\n\t\tprintf(\"LPM\");\n",
        )
        .unwrap();
        patch_l3fwd(&dir).unwrap();
        let main = std::fs::read_to_string(dir.join("main.c")).unwrap();
        assert!(main.contains(".offloads = 0,") && !main.contains("CHECKSUM,"));
        let lpm = std::fs::read_to_string(dir.join("l3fwd_lpm.c")).unwrap();
        assert!(lpm.contains("(2 << 20)") && lpm.contains("(1 << 16)"));
        // Applied twice: the originals are gone, which is an error, not a silent no-op.
        assert!(patch_l3fwd(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

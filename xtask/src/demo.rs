//! `cargo xtask demo`: xfwd forwarding between two hosts in network namespaces, narrated.

use std::net::{Ipv4Addr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use xfwd_testbed::packet::{IPPROTO_UDP, parse};
use xfwd_testbed::process::{Daemon, Signal};
use xfwd_testbed::{End, RawSocket, Topology};

use crate::deps;
use crate::exec::{cargo, exec, is_root, output, workspace_root};

/// Options of `cargo xtask demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// UDP datagrams to send from h1 to h2.
    #[arg(long, default_value_t = 1000)]
    udp: u32,
    /// Keep the topology and xfwd running until Ctrl-C, to explore it by hand.
    #[arg(long)]
    keep: bool,
    /// Build and run the debug binary instead of the release one.
    #[arg(long)]
    debug: bool,
}

const UDP_PORT: u16 = 9000;

fn step(s: &str) {
    eprintln!("\n==> {s}");
}

fn say(s: &str) {
    for line in s.lines() {
        eprintln!("    {line}");
    }
}

/// Runs the demo.
///
/// # Errors
///
/// When a step fails; everything it created is removed first.
pub fn run(args: DemoArgs) -> Result<()> {
    if !is_root() {
        bail!("the demo creates network namespaces and attaches XDP programs: run it as root");
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, interrupted.clone())?;
    }
    let check = || -> Result<()> {
        if interrupted.load(Ordering::Relaxed) {
            bail!("interrupted; cleaning up");
        }
        Ok(())
    };

    step("Checking packages");
    let mut pkgs = deps::BUILD.to_vec();
    pkgs.extend(deps::DEMO);
    deps::ensure(&pkgs)?;
    say("clang, libbpf-dev, iproute2, ethtool, ping: present");

    step(if args.debug {
        "Building xfwd (debug)"
    } else {
        "Building xfwd (release)"
    });
    let mut build = cargo();
    build.args(["build", "-p", "xfwd", "--bin", "xfwd"]);
    if !args.debug {
        build.arg("--release");
    }
    exec(&mut build)?;
    let xfwd: PathBuf = workspace_root()
        .join("target")
        .join(if args.debug { "debug" } else { "release" })
        .join("xfwd");
    check()?;

    step("Creating the topology in three network namespaces");
    let topo = Topology::builder("xd").build()?;
    let (h1, p0, p1, h2) = (
        topo.iface(End::H1).clone(),
        topo.iface(End::P0).clone(),
        topo.iface(End::P1).clone(),
        topo.iface(End::H2).clone(),
    );
    let behind: Vec<String> = topo.behind_h2().iter().map(|p| p.to_string()).collect();
    say(&format!(
        "h1 {h1a} ──veth── p0 {p0a} [router: xfwd; kernel forwarding OFF] p1 {p1a} ──veth── h2 {h2a}\n\
         the router routes {behind} via h2 ({h2a}); h1 and h2 use the router as default gateway\n\
         namespaces: {n1}, {nr}, {n2}",
        h1a = h1.addr,
        p0a = p0.addr,
        p1a = p1.addr,
        h2a = h2.addr,
        behind = behind.join(", "),
        n1 = topo.h1().name(),
        nr = topo.router().name(),
        n2 = topo.h2().name(),
    ));
    let fwd = topo
        .router()
        .exec(&["sysctl", "-n", "net.ipv4.ip_forward"])?;
    say(&format!(
        "router net.ipv4.ip_forward = {} (the kernel will not forward; only xfwd can)",
        String::from_utf8_lossy(&fwd.stdout).trim()
    ));
    check()?;

    step("Without xfwd: h1 cannot reach h2");
    let before = xfwd_testbed::process::ping(topo.h1(), h2.addr, 1, None)?;
    say(&format!(
        "ping {}: {}/{} replies",
        h2.addr, before.received, before.transmitted
    ));

    let control = std::env::temp_dir().join(format!("xfwd-demo-{}.sock", std::process::id()));
    let control_s = control.to_string_lossy().into_owned();
    let cpu = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
    let cpu_s = cpu.to_string();
    let xfwd_s = xfwd.to_string_lossy().into_owned();
    let argv = [
        xfwd_s.as_str(),
        "run",
        "--iface",
        p0.name,
        "--iface",
        p1.name,
        "--cpus",
        &cpu_s,
        "--control",
        &control_s,
    ];
    step(&format!(
        "Starting xfwd in the router namespace:\n    {}",
        argv.join(" ")
    ));
    let mut daemon = Daemon::spawn(topo.router(), &argv)?;
    let ready = daemon
        .wait_for_line("ready", Duration::from_secs(30))
        .with_context(|| daemon.log())?;
    say(ready.trim());
    check()?;

    step("ping from h1 to h2 and to an address behind h2, through xfwd");
    for dst in [
        h2.addr,
        topo.behind_h2()[0].host(1).context("prefix has no .1")?,
    ] {
        let out = topo
            .h1()
            .exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", &dst.to_string()]);
        match out {
            Ok(o) => say(String::from_utf8_lossy(&o.stdout).trim()),
            Err(e) => bail!("ping {dst} through xfwd failed: {e:#}\n{}", daemon.log()),
        }
    }
    say("ttl=63: the replies left h2 with TTL 64 and xfwd decremented it once.");
    check()?;

    step(&format!(
        "{} UDP datagrams from h1 to h2:{UDP_PORT}, sent with TTL 64",
        args.udp
    ));
    let capture = RawSocket::open(topo.h2(), h2.name)?;
    capture.drain()?;
    let receiver = topo.h2().run(|| -> Result<UdpSocket> {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, UDP_PORT))?;
        s.set_read_timeout(Some(Duration::from_millis(300)))?;
        Ok(s)
    })??;
    let count = args.udp;
    let sent_at = Instant::now();
    let (sent, received) = std::thread::scope(|s| -> Result<(u32, u32)> {
        let rx = s.spawn(|| {
            let mut buf = [0u8; 2048];
            let mut n = 0;
            while receiver.recv(&mut buf).is_ok() {
                n += 1;
            }
            n
        });
        let h2_addr = h2.addr;
        let sent = topo.h1().run(move || -> Result<u32> {
            let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
            s.set_ttl(64)?;
            let payload = [0x5a; 64];
            for i in 0..count {
                s.send_to(&payload, (h2_addr, UDP_PORT))?;
                if i % 32 == 31 {
                    // Let h2's socket buffer drain: the demo counts delivery, it does not
                    // stress the receiver (the benchmark does that, with an XDP sink).
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            Ok(count)
        })??;
        Ok((sent, rx.join().unwrap_or(0)))
    })?;
    let mut seen = 0;
    let mut ttl_ok = 0;
    let mut csum_ok = 0;
    while let Some(frame) = capture.recv_timeout(Duration::from_millis(100))? {
        let Ok(p) = parse(&frame) else { continue };
        let Some(ip) = p.ipv4.as_ref() else { continue };
        let Some(udp) = ip.udp.as_ref() else { continue };
        if ip.protocol != IPPROTO_UDP || udp.dst_port != UDP_PORT {
            continue;
        }
        seen += 1;
        ttl_ok += u32::from(ip.ttl == 63);
        csum_ok += u32::from(ip.header_checksum_ok && udp.checksum_ok);
    }
    say(&format!(
        "h1 sent {sent}; h2's UDP socket received {received} ({:.0} ms)\n\
         on h2's wire: {seen} frames, {ttl_ok} with TTL 63, {csum_ok} with valid IPv4 and UDP checksums",
        sent_at.elapsed().as_secs_f64() * 1e3
    ));
    if received != sent || ttl_ok != seen || csum_ok != seen {
        bail!("not every datagram arrived intact\n{}", daemon.log());
    }
    check()?;

    step("xfwd's counters (xfwd show stats)");
    let stats =
        output(std::process::Command::new(&xfwd).args(["show", "stats", "--control", &control_s]))?;
    say(stats.trim_end());

    if args.keep {
        step("Keeping everything up until Ctrl-C. Try, in another shell:");
        say(&format!(
            "ip netns exec {} ping {}\n{} show stats --control {}\n{} show errors --control {}",
            topo.h1().name(),
            h2.addr,
            xfwd_s,
            control_s,
            xfwd_s,
            control_s
        ));
        while !interrupted.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    step("Stopping xfwd (SIGTERM)");
    daemon.signal(Signal::Term)?;
    let status = daemon.wait_exit(Duration::from_secs(10))?;
    let last = daemon.log();
    if let Some(line) = last.lines().rev().find(|l| l.contains("stopped")) {
        say(line.trim());
    }
    let link = topo.router().exec(&["ip", "link", "show", p0.name])?;
    let attached = String::from_utf8_lossy(&link.stdout).contains("xdp");
    say(&format!(
        "xfwd {status}; XDP on {}: {}",
        p0.name,
        if attached {
            "STILL ATTACHED"
        } else {
            "detached (traffic falls back to the kernel)"
        }
    ));
    if !status.success() || attached {
        bail!("xfwd did not stop cleanly\n{last}");
    }

    step("Removing the namespaces");
    drop(topo);
    say("done. That was xfwd forwarding IPv4 over AF_XDP with the kernel as its control plane.");
    Ok(())
}

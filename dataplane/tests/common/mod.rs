//! Shared harness for end-to-end tests: the demo topology with `xfwd run` in the router.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use xfwd_testbed::packet::parse;
use xfwd_testbed::process::{Daemon, Signal};
use xfwd_testbed::{End, ParsedFrame, RawSocket, Topology, TopologyBuilder};

/// Path of the `xfwd` binary cargo built for these tests.
pub fn xfwd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_xfwd")
}

/// The CPU workers pin to in tests: the last one.
pub fn worker_cpu() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) - 1
}

/// A topology with xfwd forwarding in the router namespace (kernel forwarding off).
pub struct XfwdTopo {
    /// The namespaces.
    pub topo: Topology,
    /// The running `xfwd run`.
    pub xfwd: Daemon,
    /// Its control socket.
    pub control: PathBuf,
}

impl XfwdTopo {
    /// Builds the default topology and starts xfwd on p0 and p1 with `extra` flags.
    pub fn start(prefix: &str, extra: &[&str]) -> Result<Self> {
        Self::start_with(Topology::builder(prefix), extra)
    }

    /// Like [`Self::start`] with a customised topology.
    pub fn start_with(builder: TopologyBuilder, extra: &[&str]) -> Result<Self> {
        let topo = builder.router_forwarding(false).build()?;
        let control = std::env::temp_dir().join(format!("{}.sock", topo.router().name()));
        let cpu = worker_cpu().to_string();
        let control_s = control.to_string_lossy().into_owned();
        let mut argv = run_argv(&control_s, None);
        argv.extend(["--log-level", "debug"]);
        if !extra.contains(&"--cpus") {
            argv.extend(["--cpus", &cpu]);
        }
        argv.extend_from_slice(extra);
        let xfwd = Daemon::spawn(topo.router(), &argv)?;
        xfwd.wait_for_line("ready", Duration::from_secs(20))
            .with_context(|| format!("xfwd did not become ready:\n{}", xfwd.log()))?;
        Ok(XfwdTopo {
            topo,
            xfwd,
            control,
        })
    }

    /// Makes sure the path h1 → h2 works before a test measures anything on it: hosts know the
    /// router's MAC, the router knows h2's, and a ping crosses xfwd.
    pub fn warm_up(&self) {
        self.topo
            .resolve_neighbours()
            .expect("hosts resolve the router");
        let h2 = self.topo.iface(End::H2).addr;
        let r = xfwd_testbed::ping(self.topo.h1(), h2, 1, None).expect("ping");
        assert!(
            r.all_replied(),
            "ping h1 -> h2 through xfwd: {r:?}\n{}",
            self.xfwd.log()
        );
    }

    /// `xfwd show stats --json`.
    pub fn stats(&self) -> Result<Value> {
        let out = Command::new(xfwd_bin())
            .args(["show", "stats", "--json", "--control"])
            .arg(&self.control)
            .output()?;
        if !out.status.success() {
            bail!(
                "xfwd show stats failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// What xfwd's FIB does with `addr` (`xfwd show routes ADDR`: its `fib_entry`).
    pub fn fib_entry(&self, addr: Ipv4Addr) -> String {
        let out = Command::new(xfwd_bin())
            .args(["show", "routes", &addr.to_string(), "--json", "--control"])
            .arg(&self.control)
            .output()
            .expect("xfwd show routes");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        v["fib_entry"].as_str().unwrap_or("").to_owned()
    }

    /// Waits until `pred(fib_entry(addr))` holds; returns the last entry either way.
    pub fn wait_fib_entry(
        &self,
        addr: Ipv4Addr,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let e = self.fib_entry(addr);
            if pred(&e) || Instant::now() >= deadline {
                return e;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Packets dropped for `reason` so far.
    pub fn drops(&self, reason: &str) -> u64 {
        self.stats()
            .ok()
            .and_then(|s| s["drops"][reason].as_u64())
            .unwrap_or_else(|| panic!("no drop reason {reason} in stats"))
    }

    /// Waits until `pred(stats)` holds, up to `timeout`; returns the last stats either way.
    pub fn wait_stats(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.stats().unwrap_or(Value::Null);
            if pred(&s) || Instant::now() >= deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A raw socket on h1's interface (sends toward the router's p0).
    pub fn h1_socket(&self) -> RawSocket {
        RawSocket::open(self.topo.h1(), self.topo.iface(End::H1).name).expect("raw socket on h1")
    }

    /// A raw socket on h2's interface (captures what the router's p1 sends).
    pub fn h2_socket(&self) -> RawSocket {
        let s = RawSocket::open(self.topo.h2(), self.topo.iface(End::H2).name)
            .expect("raw socket on h2");
        s.drain().expect("drain");
        s
    }

    /// Stops xfwd with `sig` and returns its exit status.
    pub fn stop(&mut self, sig: Signal) -> Result<ExitStatus> {
        self.xfwd.signal(sig)?;
        self.xfwd.wait_exit(Duration::from_secs(10))
    }

    /// Whether an XDP program is attached to router interface `name`.
    pub fn xdp_attached(&self, name: &str) -> bool {
        let out = self
            .topo
            .router()
            .exec(&["ip", "link", "show", name])
            .expect("ip link show");
        String::from_utf8_lossy(&out.stdout).contains("xdp")
    }
}

/// `xfwd run --iface p0 --iface p1 --control CONTROL [--cpus CPUS]`: the command every test
/// topology starts xfwd with.
pub fn run_argv<'a>(control: &'a str, cpus: Option<&'a str>) -> Vec<&'a str> {
    let mut argv = vec![
        xfwd_bin(),
        "run",
        "--iface",
        "p0",
        "--iface",
        "p1",
        "--control",
        control,
    ];
    if let Some(c) = cpus {
        argv.extend(["--cpus", c]);
    }
    argv
}

/// Sends `frame` on `tx`, `per_ms` frames a millisecond, for as long as `churn` runs on another
/// thread, while `rx` counts the frames `is_stream` accepts concurrently (so a slow churn cannot
/// overflow its socket buffer). Returns `(sent, received)` once every frame arrived or 3 s after
/// the last was sent.
pub fn stream_during(
    tx: &RawSocket,
    rx: &RawSocket,
    frame: &[u8],
    per_ms: usize,
    is_stream: impl Fn(&[u8]) -> bool + Sync,
    churn: impl FnOnce() + Send,
) -> (usize, usize) {
    let total = AtomicUsize::new(usize::MAX);
    std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            let mut got = 0usize;
            let mut deadline = None;
            loop {
                let want = total.load(Ordering::Acquire);
                if want != usize::MAX {
                    if got >= want {
                        break;
                    }
                    let end =
                        *deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(3));
                    if Instant::now() >= end {
                        break;
                    }
                }
                if let Ok(Some(f)) = rx.recv_timeout(Duration::from_millis(50))
                    && is_stream(&f)
                {
                    got += 1;
                }
            }
            got
        });
        let churn = s.spawn(churn);
        let mut sent = 0;
        while !churn.is_finished() {
            for _ in 0..per_ms {
                tx.send(frame).unwrap();
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Err(panic) = churn.join() {
            std::panic::resume_unwind(panic);
        }
        total.store(sent, Ordering::Release);
        (sent, receiver.join().unwrap())
    })
}

/// Receives frames on `sock` until `timeout` passes with nothing matching, returning the UDP
/// frames to `port`.
pub fn collect_udp(
    sock: &RawSocket,
    port: u16,
    want: usize,
    timeout: Duration,
) -> Vec<ParsedFrame> {
    let mut got = Vec::new();
    let deadline = Instant::now() + timeout;
    while got.len() < want && Instant::now() < deadline {
        let Ok(Some(frame)) = sock.recv_timeout(Duration::from_millis(50)) else {
            continue;
        };
        let Ok(p) = parse(&frame) else { continue };
        if p.udp().is_some_and(|u| u.dst_port == port) {
            got.push(p);
        }
    }
    got
}

/// Address `n` of the first prefix routed behind h2.
pub fn behind_h2(t: &Topology, n: u32) -> Ipv4Addr {
    t.behind_h2()[0].host(n).expect("host in prefix")
}

/// Writes `lines` to a file in the temp directory for `ip -batch` (named after `name` and this
/// process) and returns its path.
pub fn batch_file(name: &str, lines: impl Iterator<Item = String>) -> PathBuf {
    use std::fmt::Write as _;
    let path = std::env::temp_dir().join(format!("xfwd-{name}-{}.batch", std::process::id()));
    let mut text = String::new();
    for l in lines {
        writeln!(text, "{l}").unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

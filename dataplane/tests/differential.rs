//! The differential test suite (issue 3): the same crafted packets through a Linux
//! kernel-forwarding router and through xfwd, built the same way, compared field by field.
//!
//! See `docs/differential.md`. Run it with
//! `XFWD_PRIV_TESTS=1 cargo test -p xfwd --test differential -- --nocapture`, one case with
//! `DIFF_CASE=ttl_1` (a substring of case names).

mod common;

#[path = "differential/allowed.rs"]
mod allowed;
#[path = "differential/cases.rs"]
mod cases;
#[path = "differential/observe.rs"]
mod observe;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use xfwd_testbed::process::{Daemon, Signal};
use xfwd_testbed::{End, NetNs, RawSocket, Topology, require_privileges};

use allowed::{ALLOWED, INTENTIONAL, KNOWN_GAPS};
use cases::{CASES, Case, Ctx, Expect, H1, H2, P0, P1, P1_MTU};
use observe::{Observation, capture};

/// First IP identification; case `i` uses `ID_BASE + i`.
const ID_BASE: u16 = 0x4400;
/// How long silence must last, while a case's expected frames are not all in, before the
/// case is taken to have produced no more (for cases not listed as known gaps).
const PATIENCE: Duration = Duration::from_secs(2);
/// IP identification of the warm-up probes (never a case's).
const WARM_UP_ID: u16 = ID_BASE - 1;

/// The two routers compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Router {
    /// `ip_forward=1`, no xfwd.
    Linux,
    /// Kernel forwarding off, `xfwd run --iface p0 --iface p1`.
    Xfwd,
}

/// One router's test bed: the topology, xfwd when it is the xfwd one, and h1's and h2's raw
/// sockets. Dropping it stops xfwd and deletes the namespaces.
struct Bed {
    // Field order is drop order: sockets and xfwd go before the namespaces.
    h1: RawSocket,
    h2: RawSocket,
    xfwd: Option<Xfwd>,
    /// `xfwd run --help`, to tell which flags this xfwd knows.
    help: String,
    /// The namespaces; deleted on drop, after the sockets and xfwd.
    topo: Topology,
}

impl Bed {
    /// Builds the bed for `router`: topology, [`configure`], xfwd (for the xfwd bed), sockets.
    fn build(router: Router) -> Result<Bed> {
        let prefix = match router {
            Router::Linux => "dfk",
            Router::Xfwd => "dfx",
        };
        let topo = Topology::builder(prefix)
            .router_forwarding(router == Router::Linux)
            .build()?;
        configure(&topo)?;
        let help = match router {
            Router::Linux => String::new(),
            Router::Xfwd => {
                let out = std::process::Command::new(xfwd_bin())
                    .args(["run", "--help"])
                    .output()?;
                String::from_utf8_lossy(&out.stdout).into_owned()
            }
        };
        let xfwd = match router {
            Router::Linux => None,
            Router::Xfwd => Some(start_xfwd(&topo, &xfwd_args(&[], &help).0)?),
        };
        let h1 = RawSocket::open(topo.h1(), End::H1.ifname())?;
        let h2 = RawSocket::open(topo.h2(), End::H2.ifname())?;
        h1.drain()?;
        h2.drain()?;
        Ok(Bed {
            h1,
            h2,
            xfwd,
            help,
            topo,
        })
    }

    /// Sends a probe datagram h1 → h2 every 50 ms until one arrives (at most 5 s): the cases
    /// measure forwarding behaviour, not how soon after `ready` the first packet gets through.
    fn warm_up(&self) -> Result<()> {
        let mut f = xfwd_testbed::Ipv4Frame::new(End::H1.mac(), End::P0.mac(), H1, H2);
        f.identification = WARM_UP_ID;
        let probe = f.udp(40000, 9, b"warm-up")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            self.h1.send(&probe)?;
            let arrived = self.h2.recv_matching(
                |b| {
                    xfwd_testbed::parse(b)
                        .is_ok_and(|p| p.ipv4.is_some_and(|ip| ip.identification == WARM_UP_ID))
                },
                Duration::from_millis(50),
            )?;
            if arrived.is_some() {
                // Let stragglers of earlier probes arrive, then start clean.
                std::thread::sleep(Duration::from_millis(100));
                self.h1.drain()?;
                self.h2.drain()?;
                return Ok(());
            }
        }
        anyhow::bail!("no probe crossed h1 -> h2 within 5 s")
    }

    fn router(&self) -> &NetNs {
        self.topo.router()
    }
}

/// What both routers get on top of the default topology: a smaller MTU on p1, a route with an
/// MTU metric, blackhole/unreachable/prohibit routes, a next hop that never answers, permanent
/// neighbours, no ICMP rate limiting in the router, and an h2 that answers nothing.
fn configure(t: &Topology) -> Result<()> {
    let r = t.router();
    let mac = |e: End| {
        let m = e.mac();
        format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    };
    let (h1, h2, p0, p1) = (
        H1.to_string(),
        H2.to_string(),
        P0.to_string(),
        P1.to_string(),
    );
    r.ip(&["link", "set", "dev", "p1", "mtu", &P1_MTU.to_string()])?;
    r.ip(&[
        "route",
        "replace",
        "198.18.1.0/24",
        "via",
        &h2,
        "mtu",
        "1000",
    ])?;
    r.ip(&["route", "add", "blackhole", "203.0.113.0/26"])?;
    r.ip(&["route", "add", "unreachable", "203.0.113.64/26"])?;
    r.ip(&["route", "add", "prohibit", "203.0.113.128/26"])?;
    r.ip(&["route", "add", "198.51.100.0/24", "via", "10.0.2.99"])?;
    r.ip(&["route", "add", "198.51.100.128/25", "via", "10.0.2.3"])?;
    t.h2().ip(&["addr", "add", "10.0.2.3/24", "dev", "eth0"])?;
    for (addr, end, dev) in [(&h1, End::H1, "p0"), (&h2, End::H2, "p1")] {
        r.ip(&[
            "neigh",
            "replace",
            addr,
            "lladdr",
            &mac(end),
            "dev",
            dev,
            "nud",
            "permanent",
        ])?;
    }
    // One ARP probe, 300 ms apart: the unresolved case fails in well under a second.
    r.sysctl("net.ipv4.neigh.p1.mcast_solicit", "1")?;
    r.sysctl("net.ipv4.neigh.p1.retrans_time_ms", "300")?;
    // No ICMP rate limiting: every case's error must come out, whatever came before it.
    r.sysctl("net.ipv4.icmp_ratemask", "0")?;
    // Each case sends from its own address in h1's subnet (see `Ctx::src`), resolved to h1's
    // MAC: ICMP errors go to a fresh destination per case, so per-destination limits (the
    // icmp_ratelimit bucket, and ip_error()'s own route-error limiter, burst 5 and one a second,
    // whose net.ipv4.route.error_cost is not per namespace) never carry over between cases.
    for i in 0..CASES.len() {
        let src = cases::case_src(i).to_string();
        r.ip(&[
            "neigh",
            "replace",
            &src,
            "lladdr",
            &mac(End::H1),
            "dev",
            "p0",
            "nud",
            "permanent",
        ])?;
    }
    t.h1().ip(&[
        "neigh",
        "replace",
        &p0,
        "lladdr",
        &mac(End::P0),
        "dev",
        "eth0",
        "nud",
        "permanent",
    ])?;
    let h2n = t.h2();
    h2n.ip(&[
        "neigh",
        "replace",
        &p1,
        "lladdr",
        &mac(End::P1),
        "dev",
        "eth0",
        "nud",
        "permanent",
    ])?;
    // h2 must not answer (port unreachable, echo replies, reassembly timeouts): what reaches h1
    // is then only what the router sent.
    h2n.sysctl("net.ipv4.icmp_echo_ignore_all", "1")?;
    h2n.sysctl("net.ipv4.icmp_ratemask", "0x1818")?;
    h2n.sysctl("net.ipv4.icmp_msgs_per_sec", "0")?;
    h2n.sysctl("net.ipv4.icmp_msgs_burst", "0")?;
    Ok(())
}

/// The xfwd binary under test: this build's, or `DIFF_XFWD_BIN` to hold another build (e.g. a
/// branch's) against Linux without rebuilding the suite.
fn xfwd_bin() -> String {
    std::env::var("DIFF_XFWD_BIN").unwrap_or_else(|_| common::xfwd_bin().to_owned())
}

/// `xfwd run` in the router namespace, and its control socket.
struct Xfwd {
    daemon: Daemon,
    control: String,
    /// The flags it runs with beyond the fixed ones.
    args: Vec<String>,
}

impl Xfwd {
    /// Stops it with SIGTERM and checks that it exits 0.
    fn stop(&mut self) -> Result<()> {
        self.daemon.signal(Signal::Term)?;
        let status = self.daemon.wait_exit(Duration::from_secs(10))?;
        ensure!(
            status.success(),
            "xfwd {:?} exited with {status}:\n{}",
            self.args,
            self.daemon.log()
        );
        Ok(())
    }

    /// Drop counters by reason (`xfwd show stats --json`, `drops`), zero ones left out.
    fn drops(&self) -> Result<BTreeMap<String, u64>> {
        let out = std::process::Command::new(xfwd_bin())
            .args(["show", "stats", "--json", "--control", &self.control])
            .output()?;
        ensure!(
            out.status.success(),
            "xfwd show stats: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        Ok(v["drops"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_u64().filter(|n| *n > 0)?)))
                    .collect()
            })
            .unwrap_or_default())
    }
}

fn start_xfwd(t: &Topology, args: &[String]) -> Result<Xfwd> {
    let control = std::env::temp_dir().join(format!("{}.sock", t.router().name()));
    let control = control.to_string_lossy().into_owned();
    let cpu = common::worker_cpu().to_string();
    let bin = xfwd_bin();
    let mut argv = common::run_argv(&control, Some(&cpu));
    argv[0] = bin.as_str(); // DIFF_XFWD_BIN may name another build
    argv.extend(["--resolve-timeout-ms", "1000"]);
    argv.extend(args.iter().map(String::as_str));
    let xfwd = Daemon::spawn(t.router(), &argv)?;
    xfwd.wait_for_line("ready", Duration::from_secs(20))
        .context("xfwd did not become ready")?;
    Ok(Xfwd {
        daemon: xfwd,
        control,
        args: args.to_vec(),
    })
}

impl Drop for Xfwd {
    /// xfwd removes its control socket when it exits cleanly; not when killed (a failed test
    /// drops a running daemon, which SIGKILLs it), so remove it here either way.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.control);
    }
}

/// xfwd's equivalent of the router sysctls `configure` sets for Linux: no ICMP rate limiting.
const XFWD_BASE_ARGS: &[(&str, &str)] = &[("--icmp-ratemask", "0")];

/// The flags xfwd runs a case with: `XFWD_BASE_ARGS` overridden by the case's, minus those
/// `help` (`xfwd run --help`) does not list, which are returned apart.
fn xfwd_args<'a>(case: &[(&'a str, &'a str)], help: &str) -> (Vec<String>, Vec<&'a str>) {
    let mut merged: Vec<(&'a str, &'a str)> = XFWD_BASE_ARGS
        .iter()
        .filter(|(f, _)| !case.iter().any(|(g, _)| g == f))
        .copied()
        .collect();
    merged.extend_from_slice(case);
    let known = |flag: &str| {
        help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .any(|w| w == flag)
    };
    let mut args = Vec::new();
    let mut unknown = Vec::new();
    for (flag, value) in merged {
        if known(flag) {
            args.push(flag.to_owned());
            if !value.is_empty() {
                args.push(value.to_owned());
            }
        } else if case.iter().any(|(g, _)| *g == flag) {
            unknown.push(flag);
        }
    }
    (args, unknown)
}

/// Runs the selected cases through one router.
fn run(router: Router, selected: &[(usize, &Case)]) -> Result<Vec<Observation>> {
    let mut bed = Bed::build(router).with_context(|| format!("building the {router:?} bed"))?;
    bed.warm_up()
        .with_context(|| format!("{router:?} router does not forward"))?;
    let mut out = Vec::new();
    let mut skipped: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut drops = match &bed.xfwd {
        Some(x) => x.drops()?,
        None => BTreeMap::new(),
    };
    for &(i, case) in selected {
        let id = ID_BASE + i as u16;
        let frames = (case.build)(&Ctx {
            id,
            src: cases::case_src(i),
        })
        .with_context(|| format!("building {}", case.name))?;
        if bed.xfwd.is_some() {
            let (args, unknown) = xfwd_args(case.xfwd_args, &bed.help);
            for flag in unknown {
                skipped.entry(flag).or_default().push(case.name);
            }
            if bed.xfwd.as_ref().is_some_and(|x| x.args != args) {
                // The old one goes (and its control socket with it) before the new one binds.
                if let Some(mut old) = bed.xfwd.take() {
                    old.stop()?;
                }
                bed.xfwd = Some(start_xfwd(&bed.topo, &args)?);
                bed.warm_up()
                    .with_context(|| format!("xfwd {args:?} does not forward"))?;
                if let Some(x) = &bed.xfwd {
                    drops = x.drops()?;
                }
            }
        }
        let restore = set_sysctls(bed.router(), case.router_sysctls)?;
        bed.h1.drain()?;
        bed.h2.drain()?;
        for f in &frames {
            bed.h1
                .send(f)
                .with_context(|| format!("{}: sending {} bytes", case.name, f.len()))?;
        }
        // What this router should produce: Linux's documented outcome, or xfwd's intentional one.
        let expect = match (router, INTENTIONAL.iter().find(|(c, _, _)| *c == case.name)) {
            (Router::Xfwd, Some((_, e, _))) => *e,
            _ => case.expect,
        };
        // Until the expected frames are in, a router that should produce them gets a generous
        // silence window (a starved xfwd worker must not fail a case); a known gap, which is
        // not expected to produce them, gets the short one, so the gaps do not slow the suite.
        let known_gap = router == Router::Xfwd && KNOWN_GAPS.iter().any(|(c, _)| *c == case.name);
        let mut listen = case.listen;
        if !known_gap {
            listen.quiet_waiting = listen.quiet_waiting.max(PATIENCE);
            listen.max = listen.max.max(PATIENCE + Duration::from_secs(1));
        }
        let mut obs = capture(&bed.h1, &bed.h2, id, listen, expect.frames())?;
        if let Some(x) = &bed.xfwd {
            let now = x.drops()?;
            obs.drops = now
                .iter()
                .filter_map(|(k, v)| {
                    let d = v - drops.get(k).copied().unwrap_or(0);
                    (d > 0).then(|| {
                        if d == 1 {
                            k.clone()
                        } else {
                            format!("{k}×{d}")
                        }
                    })
                })
                .collect();
            drops = now;
        }
        out.push(obs);
        set_sysctls(bed.router(), &restore)?;
    }
    if let Some(x) = &mut bed.xfwd {
        // For the record (a frame lost without a drop reason shows up in these counters).
        if let Ok(out) = std::process::Command::new(xfwd_bin())
            .args(["show", "stats", "--json", "--control", &x.control])
            .output()
        {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            println!(
                "xfwd counters at the end: forwarded {} interfaces {}",
                v["forwarded"], v["interfaces"]
            );
        }
        // xfwd survived every case and stops cleanly.
        x.stop()?;
    }
    for (flag, cases) in &skipped {
        println!(
            "note: this xfwd has no {flag}; ran without it: {}",
            cases.join(", ")
        );
    }
    Ok(out)
}

/// Sets `sysctls` in `ns` and returns their previous values.
fn set_sysctls<K: AsRef<str>, V: AsRef<str>>(
    ns: &NetNs,
    sysctls: &[(K, V)],
) -> Result<Vec<(String, String)>> {
    let mut old = Vec::new();
    for (k, v) in sysctls {
        let path = format!("/proc/sys/{}", k.as_ref().replace('.', "/"));
        let prev = ns
            .run(|| std::fs::read_to_string(&path))?
            .with_context(|| format!("reading {}", k.as_ref()))?;
        old.push((k.as_ref().to_owned(), prev.trim().to_owned()));
        ns.sysctl(k.as_ref(), v.as_ref())?;
    }
    Ok(old)
}

/// The value of a field the other side has and this one lacks.
const ABSENT: &str = "<absent>";

/// `linux` → `xfwd` and back.
fn other(who: &str) -> &'static str {
    if who == "linux" { "xfwd" } else { "linux" }
}

/// A differing field, and the allowance covering it if any.
struct Diff {
    key: String,
    linux: String,
    xfwd: String,
    allowed: Option<&'static str>,
}

fn compare(case: &str, linux: &Observation, xfwd: &Observation) -> Vec<Diff> {
    let l: BTreeMap<String, String> = linux.flatten().into_iter().collect();
    let x: BTreeMap<String, String> = xfwd.flatten().into_iter().collect();
    let mut keys: Vec<&String> = l.keys().chain(x.keys()).collect();
    keys.sort();
    keys.dedup();
    let none = ABSENT.to_owned();
    keys.into_iter()
        .filter_map(|k| {
            let (lv, xv) = (l.get(k).unwrap_or(&none), x.get(k).unwrap_or(&none));
            (lv != xv).then(|| Diff {
                key: k.clone(),
                linux: lv.clone(),
                xfwd: xv.clone(),
                allowed: allowance(case, k),
            })
        })
        .collect()
}

/// The justification covering field `key` (e.g. `h1[0].ip.id`) of `case`, if any. Counts are
/// never allowed to differ: the frame lists must line up.
fn allowance(case: &str, key: &str) -> Option<&'static str> {
    // `h1.err[0].ip.id` → `h1.err.ip.id` (this side) and `err.ip.id` (either side).
    let (head, rest) = key.split_once('[')?;
    let generic = format!("{head}{}", &rest[rest.find(']')? + 1..]);
    let any_side = generic.split_once('.')?.1;
    ALLOWED
        .iter()
        .find(|(c, f, _)| (*c == "*" || *c == case) && (*f == generic || *f == any_side))
        .map(|(_, _, why)| *why)
}

fn expect_holds(e: Expect, o: &Observation) -> bool {
    match e {
        Expect::Forward(n) => o.h2.len() == n && o.h1.is_empty(),
        Expect::Silent => o.h2.is_empty() && o.h1.is_empty(),
        Expect::Icmp(t, c) => errors(&o.h1, t, c, 1) && o.h2.is_empty(),
        Expect::Icmps(t, c, n) => errors(&o.h1, t, c, n) && o.h2.is_empty(),
        Expect::IcmpAtH2(t, c) => errors(&o.h2, t, c, 1) && o.h1.is_empty(),
    }
}

/// `frames` are exactly `n` ICMP errors of type `t`, code `c`.
fn errors(frames: &[observe::Frame], t: u8, c: u8, n: usize) -> bool {
    frames.len() == n
        && frames.iter().all(|f| {
            f.get("icmp.type") == Some(&t.to_string()) && f.get("icmp.code") == Some(&c.to_string())
        })
}

#[test]
fn linux_and_xfwd_agree() -> Result<()> {
    require_privileges!();
    let started = Instant::now();
    check_tables()?;
    let filter = std::env::var("DIFF_CASE").unwrap_or_default();
    let verbose = std::env::var("DIFF_VERBOSE").is_ok_and(|v| v == "1");
    let mut selected: Vec<(usize, &Case)> = CASES
        .iter()
        .enumerate()
        .filter(|(_, c)| c.name.contains(filter.as_str()))
        .collect();
    // Cases needing the same xfwd flags run together (default ones first), so that xfwd is
    // restarted once per set of flags; both routers run the cases in this same order.
    selected.sort_by_key(|(_, c)| (!c.xfwd_args.is_empty(), c.xfwd_args));
    ensure!(!selected.is_empty(), "no case matches DIFF_CASE={filter:?}");

    // The two routers run at the same time, each in its own namespaces: nothing is shared but
    // the CPU, and no outcome depends on timing beyond the bounded listening windows.
    let timed = |router| {
        let t = Instant::now();
        run(router, &selected).map(|o| (o, t.elapsed()))
    };
    let (linux, xfwd) = std::thread::scope(|s| {
        let l = s.spawn(|| timed(Router::Linux));
        let x = timed(Router::Xfwd);
        let l = l.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (l, x)
    });
    let ((linux, t_linux), (xfwd, t_xfwd)) = (linux?, xfwd?);

    let mut table = String::new();
    let mut failures = Vec::new();
    let mut details = String::new();
    let (mut matched, mut gaps) = (0, 0);
    for (((_, case), l), x) in selected.iter().zip(&linux).zip(&xfwd) {
        let diffs = compare(case.name, l, x);
        let unjustified: Vec<&Diff> = diffs.iter().filter(|d| d.allowed.is_none()).collect();
        let gap = KNOWN_GAPS.iter().find(|(c, _)| *c == case.name);
        let intended = INTENTIONAL.iter().find(|(c, _, _)| *c == case.name);
        // The target: what xfwd must do. Linux's outcome, field by field, unless the case is an
        // intentional difference, where it is the outcome INTENTIONAL names.
        let (on_target, what) = match intended {
            Some((_, e, _)) => (expect_holds(*e, x), format!("RFC: {e:?}")),
            None if unjustified.is_empty() && diffs.is_empty() => (true, "same".to_owned()),
            None if unjustified.is_empty() => (true, format!("same ({} allowed)", diffs.len())),
            None => (false, "differs".to_owned()),
        };
        let verdict = match (on_target, gap) {
            (true, None) => {
                matched += 1;
                what
            }
            (false, Some(_)) => {
                gaps += 1;
                format!("KNOWN GAP ({what})")
            }
            (true, Some(_)) => {
                failures.push(format!(
                    "{}: listed in KNOWN_GAPS but xfwd now meets its target: remove it",
                    case.name
                ));
                "GAP FIXED".to_owned()
            }
            (false, None) => {
                failures.push(format!("{}: xfwd misses its target ({what})", case.name));
                format!("MISMATCH ({what})")
            }
        };
        if !expect_holds(case.expect, l) {
            failures.push(format!(
                "{}: Linux did not do what the case table says ({:?}; measured on 6.18, a \
                 different kernel may differ): {}",
                case.name,
                case.expect,
                l.summary()
            ));
        }
        let _ = writeln!(
            table,
            "{:<28} | {:<44} | {:<44} | {verdict}",
            case.name,
            l.summary(),
            x.summary()
        );
        // Field-level differences: always for a case that fails, for known gaps with
        // DIFF_VERBOSE=1. A frame one side lacks is one line, not one per field.
        let failed = verdict.starts_with("MISMATCH");
        if !unjustified.is_empty() && intended.is_none() && (failed || verbose) {
            let _ = writeln!(details, "\n{} ({}):", case.name, case.rule);
            let mut lines = 0;
            for d in &unjustified {
                let frame = d.key.find(']').map_or(d.key.as_str(), |i| &d.key[..=i]);
                if d.linux == ABSENT || d.xfwd == ABSENT {
                    if d.key.ends_with(".eth.dst") {
                        let who = if d.linux == ABSENT { "linux" } else { "xfwd" };
                        let _ = writeln!(details, "  {frame:<22} only in {}", other(who));
                    }
                    continue;
                }
                lines += 1;
                if lines <= 16 {
                    let _ = writeln!(
                        details,
                        "  {:<22} linux={} xfwd={}",
                        d.key,
                        clip(&d.linux),
                        clip(&d.xfwd)
                    );
                }
            }
            if lines > 16 {
                let _ = writeln!(details, "  ... {} more", lines - 16);
            }
        }
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("\nLinux {} vs xfwd {}", kernel.trim(), xfwd_bin());
    println!(
        "\n{:<28} | {:<44} | {:<44} | verdict\n{}",
        "case",
        "linux",
        "xfwd",
        "-".repeat(140)
    );
    print!("{table}");
    println!(
        "\n{} cases: {matched} on target, {gaps} known gaps; linux run {:.1}s, xfwd run {:.1}s \
         (in parallel), total {:.1}s",
        selected.len(),
        t_linux.as_secs_f64(),
        t_xfwd.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    if !details.is_empty() {
        println!("\nDifferences (linux vs xfwd):{details}");
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// Every name in ALLOWED and KNOWN_GAPS is a case; case names are unique; at least 40 cases.
fn check_tables() -> Result<()> {
    let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    ensure!(sorted.len() == names.len(), "duplicate case names");
    ensure!(names.len() >= 40, "only {} cases", names.len());
    for (c, _, _) in ALLOWED {
        ensure!(
            *c == "*" || names.contains(c),
            "ALLOWED names unknown case {c}"
        );
    }
    for (c, e, _) in INTENTIONAL {
        let case = CASES.iter().find(|k| k.name == *c);
        ensure!(case.is_some(), "INTENTIONAL names unknown case {c}");
        ensure!(
            case.is_some_and(|k| k.expect != *e),
            "INTENTIONAL {c}: xfwd's outcome is the same as Linux's, so not a difference"
        );
    }
    for (c, _) in KNOWN_GAPS {
        ensure!(names.contains(c), "KNOWN_GAPS names unknown case {c}");
    }
    Ok(())
}

fn clip(s: &str) -> String {
    if s.len() > 96 {
        format!("{}..({} chars)", &s[..96], s.len())
    } else {
        s.to_owned()
    }
}

#[test]
fn tables_are_consistent() -> Result<()> {
    check_tables()
}

#[test]
fn allowances_match_fields_by_side_kind_and_name_only() {
    assert!(allowance("ttl_1", "h1.err[0].ip.id").is_some());
    assert!(
        allowance("ttl_1", "h2.err[3].ip.csum").is_some(),
        "either side"
    );
    assert!(
        allowance("ttl_1", "h2.fwd[0].ip.id").is_none(),
        "forwarded IDs must match"
    );
    assert!(
        allowance("ttl_1", "h1.err").is_none(),
        "counts never differ"
    );
    assert!(allowance("ttl_1", "h1.err[0].ip.csum_ok").is_none());
    assert!(allowance("opt_timestamp", "h2.fwd[0].ip.opts.ts").is_some());
    assert!(allowance("opt_timestamp", "h1.fwd[0].ip.opts.ts").is_none());
    assert!(allowance("opt_record_route", "h2.fwd[0].ip.opts.ts").is_none());
}

#[test]
fn a_changed_field_is_a_difference() {
    let f = |ttl: &str| observe::Frame {
        kind: observe::Kind::Fwd,
        fields: vec![("ip.ttl", ttl.to_owned()), ("ip.id", "4401".to_owned())],
    };
    let obs = |h2: Vec<observe::Frame>| Observation {
        h2,
        ..Observation::default()
    };
    assert!(compare("x", &obs(vec![f("63")]), &obs(vec![f("63")])).is_empty());
    let d = compare("x", &obs(vec![f("63")]), &obs(vec![f("64")]));
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].key.as_str(), d[0].linux.as_str()),
        ("h2.fwd[0].ip.ttl", "63")
    );
    assert!(d[0].allowed.is_none());
    let d = compare("x", &obs(vec![f("63")]), &obs(vec![]));
    assert!(d.iter().any(|d| d.key == "h2.fwd" && d.allowed.is_none()));
    assert!(expect_holds(Expect::Forward(1), &obs(vec![f("63")])));
    assert!(!expect_holds(Expect::Silent, &obs(vec![f("63")])));
}

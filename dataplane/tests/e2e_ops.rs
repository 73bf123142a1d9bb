//! End to end: xfwd as a service. Configuration file, systemd notification and watchdog,
//! Prometheus scrape, the control CLI, clear counters, reload (SIGHUP and `xfwd reload`),
//! capabilities after setup, `xfwd check`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{run_argv, worker_cpu, xfwd_bin};
use serde_json::Value;
use xfwd_testbed::process::{Daemon, Signal, ping};
use xfwd_testbed::{End, NetNs, Topology, require_privileges};

fn config(control: &Path, metrics: &str, log: &str, ring: u32) -> String {
    format!(
        "[service]\nlog_level = \"{log}\"\ncontrol_socket = \"{}\"\nmetrics = \"{metrics}\"\n\
         [dataplane]\ninterfaces = [\"p0\", \"p1\"]\ncpus = \"{}\"\nring_size = {ring}\n\
         [neighbour]\nunres_qlen = {}\n",
        control.display(),
        worker_cpu(),
        ring / 64
    )
}

/// The CPUs of a `Cpus_allowed_list` ("0-2,5").
fn cpu_list(s: &str) -> Vec<usize> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .flat_map(|p| match p.split_once('-') {
            Some((a, b)) => a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap(),
            None => {
                let c = p.parse::<usize>().unwrap();
                c..=c
            }
        })
        .collect()
}

fn scrape(ns: &NetNs, addr: &str) -> Result<String, String> {
    let addr = addr.to_owned();
    ns.run(move || {
        let mut c = TcpStream::connect(&addr).map_err(|e| e.to_string())?;
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut out = String::new();
        c.read_to_string(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    })
    .unwrap()
}

/// The value of the sample `name_and_labels` (the text before the space).
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name_and_labels} in\n{text}"))
        .parse()
        .unwrap()
}

fn cli(control: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(xfwd_bin())
        .args(args)
        .arg("--control")
        .arg(control)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(control: &Path, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let (ok, out, err) = cli(control, &a);
    assert!(ok, "xfwd {args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

/// Datagrams received on the fake `$NOTIFY_SOCKET` until one contains `want`.
fn wait_notify(sock: &UnixDatagram, want: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            if got.last().unwrap().contains(want) {
                return got;
            }
        }
    }
    panic!("no {want:?} on NOTIFY_SOCKET within {timeout:?}; got {got:?}");
}

#[test]
fn service_config_metrics_cli_reload_and_capabilities() {
    require_privileges!();
    let t = Topology::builder("opsa")
        .router_forwarding(false)
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("xfwd-ops-{}", t.router().name()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let control = dir.join("xfwd.sock");
    let file = dir.join("xfwd.toml");
    std::fs::write(&file, config(&control, "127.0.0.1:9469", "debug", 2048)).unwrap();
    let notify_path = dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();

    let mut cmd = t.router().command(xfwd_bin());
    cmd.args(["run", "-c"])
        .arg(&file)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("XFWD_LOG");
    let mut xfwd = Daemon::spawn_command("xfwd run -c (opsa)", cmd).unwrap();
    let got = wait_notify(&notify, "READY=1", Duration::from_secs(20));
    assert!(
        control.exists(),
        "READY=1 after the control socket: {got:?}"
    );
    // The watchdog pings at half of WATCHDOG_USEC from the control loop.
    wait_notify(&notify, "WATCHDOG=1", Duration::from_secs(3));
    // stderr is read by another thread: wait for the lines rather than race it.
    for line in [
        "configuration:",
        "privileges: keeping CAP_NET_ADMIN, CAP_BPF",
        "ready",
    ] {
        xfwd.wait_for_line(line, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    // Every thread runs with CAP_NET_ADMIN and CAP_BPF only.
    let keep = (1u64 << 12) | (1u64 << 39);
    let tasks = std::fs::read_dir(format!("/proc/{}/task", xfwd.pid())).unwrap();
    let mut n = 0;
    for task in tasks {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        for field in ["CapEff:", "CapPrm:"] {
            let v = status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
                .unwrap();
            let name = status.lines().next().unwrap_or_default();
            assert_eq!(v, keep, "{name}: {field} {v:#x}");
        }
        n += 1;
    }
    assert!(n >= 3, "main, worker and control-socket threads: {n}");

    // The worker owns its CPU; every other thread runs elsewhere when there is elsewhere.
    let worker = worker_cpu();
    let others = core_affinity::get_core_ids()
        .unwrap_or_default()
        .iter()
        .any(|c| c.id != worker);
    for task in std::fs::read_dir(format!("/proc/{}/task", xfwd.pid())).unwrap() {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        let field = |f: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(f))
                .unwrap()
                .trim()
                .to_owned()
        };
        let (name, cpus) = (field("Name:"), field("Cpus_allowed_list:"));
        if name.starts_with("xfwd-w") {
            assert_eq!(cpus, worker.to_string(), "{name} pinned to its CPU");
        } else if others {
            assert!(
                !cpu_list(&cpus).contains(&worker),
                "{name} kept off the worker's CPU {worker}: {cpus}"
            );
        }
    }

    // Traffic, so that there is something to count.
    t.resolve_neighbours().unwrap();
    let h2 = t.iface(End::H2).addr;
    let r = ping(t.h1(), h2, 5, None).unwrap();
    assert!(r.all_replied(), "{r:?}\n{}", xfwd.log());

    let m = scrape(t.router(), "127.0.0.1:9469").unwrap();
    assert!(m.starts_with("HTTP/1.1 200 OK"), "{m}");
    assert!(sample(&m, "xfwd_forwarded_packets_total") >= 10.0, "{m}");
    assert!(sample(&m, "xfwd_interface_rx_packets_total{interface=\"p0\"}") >= 5.0);
    assert!(sample(&m, "xfwd_interface_tx_packets_total{interface=\"p1\"}") >= 5.0);
    assert!(
        sample(
            &m,
            "xfwd_queue_rx_packets_total{interface=\"p0\",queue=\"0\"}"
        ) >= 5.0
    );
    assert_eq!(sample(&m, "xfwd_drops_total{reason=\"no_route\"}"), 0.0);
    assert!(sample(&m, "xfwd_fib_prefixes") >= 2.0);
    assert!(
        m.contains(
            "xfwd_xsk_statistics_total{interface=\"p0\",queue=\"0\",counter=\"rx_dropped\"}"
        ),
        "{m}"
    );
    assert!(m.contains("xfwd_build_info{version=\""), "{m}");
    assert!(m.contains("xfwd_neighbours{state=\""), "{m}");
    assert!(m.contains("xfwd_worker_busy_ratio{worker=\"0\""), "{m}");

    // The control CLI.
    let rt = json(&control, &["show", "runtime"]);
    let w = &rt["workers"][0];
    assert!(w["packets"].as_u64().unwrap() >= 10, "{rt}");
    assert!(w["batches"].as_u64().unwrap() >= 1, "{rt}");
    assert!(w["ns_per_packet"].as_f64().unwrap() > 0.0, "{rt}");
    assert!(w["busy_ratio"].as_f64().unwrap() > 0.0, "{rt}");
    let (ok, text, _) = cli(&control, &["show", "runtime"]);
    assert!(ok && text.contains("ns/pkt"), "{text}");
    let (ok, text, _) = cli(&control, &["show", "interfaces"]);
    assert!(
        ok && text.contains("p0 (ifindex") && text.contains("af_xdp:"),
        "{text}"
    );
    let routes = json(&control, &["show", "routes", &h2.to_string()]);
    assert_eq!(routes["lookup"], h2.to_string(), "{routes}");
    assert!(
        routes["fib_entry"].as_str().unwrap().contains("Attached"),
        "{routes}"
    );
    let subnet = t.iface(End::H2).subnet;
    let want = format!("{}/{}", subnet.addr(), subnet.prefix_len());
    assert_eq!(routes["routes"][0]["prefix"], want, "{routes}");
    let all = json(&control, &["show", "routes"]);
    assert!(all["routes"].as_array().unwrap().len() >= 2, "{all}");
    let neigh = json(&control, &["show", "neighbours"]);
    assert!(
        neigh["neighbours"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["ip"] == h2.to_string() && n["interface"] == "p1"),
        "{neigh}"
    );
    let (ok, _, err) = cli(&control, &["show", "routes", "300.1.2.3"]);
    assert!(!ok && err.contains("not an IPv4 address"), "{err}");

    // clear counters: `show` restarts from zero, metrics keep counting.
    let (ok, text, _) = cli(&control, &["clear", "counters"]);
    assert!(ok && text.contains("cleared"), "{text}");
    let s = json(&control, &["show", "stats"]);
    assert_eq!(s["forwarded"], 0, "{s}");
    assert_eq!(s["workers"][0]["packets"], 0, "{s}");
    let m = scrape(t.router(), "127.0.0.1:9469").unwrap();
    assert!(sample(&m, "xfwd_forwarded_packets_total") >= 10.0);

    // Reload: log level and metrics address apply live, ring_size needs a restart.
    std::fs::write(&file, config(&control, "127.0.0.1:9470", "info", 1024)).unwrap();
    let out = json(&control, &["reload"]);
    assert_eq!(
        out["applied"],
        serde_json::json!([
            "service.log_level",
            "service.metrics",
            "neighbour.unres_qlen"
        ]),
        "{out}"
    );
    assert_eq!(
        out["needs_restart"],
        serde_json::json!(["dataplane.ring_size"]),
        "{out}"
    );
    assert!(
        scrape(t.router(), "127.0.0.1:9470")
            .unwrap()
            .contains("xfwd_build_info")
    );
    assert!(
        scrape(t.router(), "127.0.0.1:9469").is_err(),
        "old endpoint closed"
    );
    // A broken file on SIGHUP is refused; the instance keeps running as it was.
    std::fs::write(&file, "[dataplane]\nring_sise = 1\n").unwrap();
    xfwd.signal(Signal::Hup).unwrap();
    xfwd.wait_for_line("reload failed", Duration::from_secs(5))
        .unwrap();
    assert!(xfwd.log().contains("did you mean dataplane.ring_size"));
    assert!(ping(t.h1(), h2, 2, None).unwrap().all_replied());
    assert!(scrape(t.router(), "127.0.0.1:9470").is_ok());

    xfwd.signal(Signal::Term).unwrap();
    let status = xfwd.wait_exit(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{}", xfwd.log());
    wait_notify(&notify, "STOPPING=1", Duration::from_secs(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_validates_and_names_file_line_key() {
    let dir = std::env::temp_dir().join(format!("xfwd-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/xfwd.toml");
    let out = Command::new(xfwd_bin())
        .args(["check", "-c"])
        .arg(&good)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("OK (2 interface(s): eth1, eth2"),
        "{stdout}"
    );

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[service]\nmetrics = \"localhost\"\n[dataplane]\ninterfaces = [\"a\"]\nbusy_pol = true\n",
    )
    .unwrap();
    let out = Command::new(xfwd_bin())
        .args(["check", "-c"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bad.toml:2:11: service.metrics: \"localhost\": not an ADDRESS:PORT"),
        "{err}"
    );
    assert!(
        err.contains(
            "bad.toml:5:1: dataplane.busy_pol: unknown key (did you mean dataplane.busy_poll?)"
        ),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The restart contract: with `ip_forward=1`, a `kill -9` hands forwarding back to the kernel
/// (the bpf_link dies with the process, so the XDP program detaches), and a restarted xfwd takes
/// over again. A steady ping (one every 2 ms) runs across the whole sequence; the packets it
/// lost are printed (that is the figure: it depends on what sat in the dead process's rings and
/// on how fast the kernel reaps the link).
#[test]
fn kill_9_and_restart_falls_back_to_the_kernel_and_takes_over_again() {
    require_privileges!();
    let t = Topology::builder("opsk")
        .router_forwarding(true)
        .build()
        .unwrap();
    let control = std::env::temp_dir().join(format!("{}.sock", t.router().name()));
    let cpu = worker_cpu().to_string();
    let ctl = control.to_string_lossy().into_owned();
    let argv = run_argv(&ctl, Some(&cpu));
    let start = || {
        let d = Daemon::spawn(t.router(), &argv).unwrap();
        d.wait_for_line("ready", Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{e:#}\n{}", d.log()));
        d
    };
    let forwarded = || {
        json(&control, &["show", "stats"])["forwarded"]
            .as_u64()
            .unwrap()
    };
    let xdp_on_p0 = || {
        let out = t.router().exec(&["ip", "link", "show", "p0"]).unwrap();
        String::from_utf8_lossy(&out.stdout).contains("xdp")
    };
    let mut xfwd = start();
    t.resolve_neighbours().unwrap();
    let h2 = t.iface(End::H2).addr;
    assert!(ping(t.h1(), h2, 2, None).unwrap().all_replied());
    assert!(forwarded() >= 4, "xfwd forwards, not the kernel");

    // A steady stream across kill and restart: 2 ms apart for 4 s, waiting 1 s for late replies.
    let pinger = t
        .h1()
        .command("ping")
        .args([
            "-n", "-q", "-i", "0.002", "-w", "5", "-W", "1", "-c", "2000",
        ])
        .arg(h2.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let killed_at = Instant::now();
    xfwd.signal(Signal::Kill).unwrap();
    xfwd.wait_exit(Duration::from_secs(5)).unwrap();
    let mut detached_after = None;
    while killed_at.elapsed() < Duration::from_secs(2) {
        if !xdp_on_p0() {
            detached_after = Some(killed_at.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let detached_after = detached_after.expect("XDP detached after kill -9");
    // The kernel forwards while xfwd is dead.
    let dead = ping(t.h1(), h2, 5, None).unwrap();
    assert!(
        dead.all_replied(),
        "kernel forwarding while xfwd is dead: {dead:?}"
    );

    let _ = std::fs::remove_file(&control);
    let restart_at = Instant::now();
    let mut xfwd = start();
    let took_over = restart_at.elapsed();
    let before = forwarded();
    let out = pinger.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("ping summary:\n{text}"))
        .to_owned();
    let num = |what: &str| -> u64 {
        summary
            .split(',')
            .find(|p| p.contains(what))
            .and_then(|p| p.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap()
    };
    let (sent, received) = (num("transmitted"), num("received"));
    assert!(
        forwarded() > before,
        "the restarted xfwd forwards the stream"
    );
    assert!(ping(t.h1(), h2, 3, None).unwrap().all_replied());
    println!(
        "restart without blackholing: {sent} echo requests 2 ms apart across kill -9 + restart, \
         {received} replies, {} lost; XDP detached {detached_after:?} after SIGKILL; new \
         instance ready {took_over:?} after start",
        sent - received
    );
    assert!(
        received * 10 >= sent * 9,
        "more than 10 % lost across the restart: {summary}"
    );
    xfwd.signal(Signal::Term).unwrap();
    assert!(xfwd.wait_exit(Duration::from_secs(10)).unwrap().success());
}

/// `xfwd tune` on veth: what veth supports (RX/TX queue counts, GRO) is proposed, applied, and
/// then reported as done; what it does not (zero-copy, RSS table, IRQs) is said.
#[test]
fn tune_proposes_applies_and_then_finds_nothing_to_change_on_veth() {
    require_privileges!();
    let t = Topology::builder("opst").queues(2).build().unwrap();
    let r = t.router();
    r.exec(&["ethtool", "-K", "p0", "gro", "on"]).unwrap();
    let cpu = worker_cpu().to_string();
    let tune = |extra: &[&str]| {
        let mut args = vec!["tune", "--iface", "p0", "--iface", "p1", "--cpus", &cpu];
        args.extend_from_slice(extra);
        let out = r.command(xfwd_bin()).args(&args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, text, err) = tune(&[]);
    assert!(ok, "{err}");
    assert!(text.contains("ethtool -L p0 rx 1 tx 1"), "{text}");
    assert!(text.contains("ethtool -L p1 rx 1 tx 1"), "{text}");
    assert!(text.contains("ethtool -K p0 gro off"), "{text}");
    assert!(
        !text.contains("ethtool -K p1"),
        "GRO is already off on p1:\n{text}"
    );
    assert!(
        text.contains("driver veth: native XDP but no AF_XDP zero-copy"),
        "{text}"
    );
    assert!(text.contains("no RSS indirection table"), "{text}");
    // Printing changes nothing.
    let gro = |dev: &str| {
        let out = r.exec(&["ethtool", "-k", dev]).unwrap();
        String::from_utf8_lossy(&out.stdout).contains("generic-receive-offload: on")
    };
    assert!(gro("p0"));

    let (ok, text, err) = tune(&["--apply"]);
    assert!(ok, "{text}{err}");
    assert!(
        text.contains("applied; 0 change(s) still suggested"),
        "{text}"
    );
    assert!(!gro("p0"));
    let ch = r.exec(&["ethtool", "-l", "p0"]).unwrap();
    let ch = String::from_utf8_lossy(&ch.stdout).into_owned();
    let current = ch.split("Current hardware settings:").nth(1).unwrap();
    assert!(current.contains("RX:\t\t1"), "{ch}");

    let (ok, json, _) = tune(&["--json"]);
    assert!(ok);
    let steps: Value = serde_json::from_str(&json).unwrap();
    assert!(
        steps
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["kind"] != "change"),
        "{json}"
    );
    // And xfwd runs on the tuned interfaces.
    let control = std::env::temp_dir().join(format!("{}.sock", r.name()));
    let ctl = control.to_string_lossy().into_owned();
    let mut x = Daemon::spawn(r, &run_argv(&ctl, Some(&cpu))).unwrap();
    x.wait_for_line("ready", Duration::from_secs(20)).unwrap();
    t.resolve_neighbours().unwrap();
    assert!(
        ping(t.h1(), t.iface(End::H2).addr, 2, None)
            .unwrap()
            .all_replied()
    );
    x.signal(Signal::Term).unwrap();
    assert!(x.wait_exit(Duration::from_secs(10)).unwrap().success());
}

/// `xfwd trace`: the next packets as received and as sent, with the verdict, in a pcapng file
/// that tcpdump reads; `--drop-reason` keeps only packets dropped for that reason.
#[test]
fn trace_writes_pcapng_that_tcpdump_reads() {
    require_privileges!();
    let x = common::XfwdTopo::start("opsr", &[]).unwrap();
    x.warm_up();
    let t = &x.topo;
    let h2 = t.iface(End::H2).addr;
    let dir = std::env::temp_dir().join(format!("xfwd-trace-{}", t.router().name()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = |args: &[&str], file: &Path| {
        let mut cmd = Command::new(xfwd_bin());
        cmd.arg("trace").args(args).arg("-w").arg(file);
        cmd.arg("--control").arg(&x.control);
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let tcpdump = |file: &Path| {
        let out = Command::new("tcpdump")
            .args(["-nn", "-v", "-r"])
            .arg(file)
            .output()
            .expect("tcpdump");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // Two echo requests and their replies: 4 packets, each in and out.
    let file = dir.join("fwd.pcap");
    let mut child = trace(&["--count", "4", "--timeout", "10"], &file);
    // Ping until the capture is complete (the trace arms at some point during the first pings).
    for _ in 0..50 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(ping(t.h1(), h2, 1, None).unwrap().all_replied());
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("4 packet(s) written"), "{stdout}");
    // `forwarded` or `forwarded_stale` (the kernel is asked to confirm a STALE neighbour).
    assert!(stdout.contains(" p0 98B: forwarded"), "{stdout}");
    assert!(stdout.contains(" p1 98B: forwarded"), "{stdout}");
    assert!(
        stdout.contains(" to p1\n") && stdout.contains(" to p0\n"),
        "{stdout}"
    );
    let text = tcpdump(&file);
    let requests_in = text.matches("ttl 64").count();
    let requests_out = text.matches("ttl 63").count();
    assert_eq!(text.matches("ICMP echo request").count(), 4, "{text}");
    assert_eq!(text.matches("ICMP echo reply").count(), 4, "{text}");
    assert_eq!(
        (requests_in, requests_out),
        (4, 4),
        "before and after TTL:\n{text}"
    );
    let bytes = std::fs::read(&file).unwrap();
    let comment = b": in on p0 (worker 0): forwarded";
    assert!(bytes.windows(comment.len()).any(|w| w == comment));

    // Only TTL-expired drops, while normal traffic also flows.
    let file = dir.join("ttl.pcap");
    let mut child = trace(
        &[
            "--count",
            "1",
            "--drop-reason",
            "ttl_expired",
            "--timeout",
            "10",
        ],
        &file,
    );
    for _ in 0..50 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(ping(t.h1(), h2, 1, None).unwrap().all_replied());
        let _ = ping(t.h1(), h2, 1, Some(1)).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    // The packet as received, then as sent: the ICMP time exceeded xfwd built in its place,
    // quoting it.
    let text = tcpdump(&file);
    assert!(text.contains("ttl 1,"), "{text}");
    assert_eq!(
        text.matches("ICMP time exceeded in-transit").count(),
        1,
        "{text}"
    );
    assert_eq!(text.matches("ICMP echo request").count(), 2, "{text}");
    let bytes = std::fs::read(&file).unwrap();
    let comment = b"dropped: ttl_expired";
    assert!(bytes.windows(comment.len()).any(|w| w == comment));

    let (ok, _, err) = cli(
        &x.control,
        &["trace", "--drop-reason", "bogus", "-w", "/dev/null"],
    );
    assert!(!ok && err.contains("unknown drop reason"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stale xfwd steering program attached without a bpf_link (as an older kernel, or a person
/// with `ip link set ... xdp obj`, leaves it) is removed at start; a live instance's is not.
#[test]
fn start_takes_over_a_stale_steering_program_but_not_a_live_one() {
    require_privileges!();
    let t = Topology::builder("opso").build().unwrap();
    let obj = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/debug/build"
    ))
    .unwrap()
    .filter_map(|e| {
        let p = e.ok()?.path().join("out/steer.bpf.o");
        p.exists().then_some(p)
    })
    .next()
    .expect("the build's steer.bpf.o");
    let out = t
        .router()
        .exec(&[
            "ip",
            "link",
            "set",
            "dev",
            "p0",
            "xdpgeneric",
            "obj",
            obj.to_str().unwrap(),
            "sec",
            "xdp",
        ])
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let control = std::env::temp_dir().join(format!("{}.sock", t.router().name()));
    let ctl = control.to_string_lossy().into_owned();
    let cpu = worker_cpu().to_string();
    let argv = |ctl: &str| {
        vec![
            xfwd_bin().to_owned(),
            "run".into(),
            "--iface".into(),
            "p0".into(),
            "--iface".into(),
            "p1".into(),
            "--cpus".into(),
            cpu.clone(),
            "--control".into(),
            ctl.to_owned(),
        ]
    };
    let a = argv(&ctl);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut x = Daemon::spawn(t.router(), &a).unwrap();
    x.wait_for_line("ready", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e:#}\n{}", x.log()));
    assert!(
        x.log().contains("removed a stale xfwd XDP program"),
        "{}",
        x.log()
    );
    t.resolve_neighbours().unwrap();
    assert!(
        ping(t.h1(), t.iface(End::H2).addr, 2, None)
            .unwrap()
            .all_replied()
    );

    // A second instance (other control socket) must not take over the live one's program.
    let ctl2 = format!("{ctl}.2");
    let b = argv(&ctl2);
    let b: Vec<&str> = b.iter().map(String::as_str).collect();
    let out = t.router().command(b[0]).args(&b[1..]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("another XDP program is already attached"),
        "{err}"
    );
    assert!(
        ping(t.h1(), t.iface(End::H2).addr, 2, None)
            .unwrap()
            .all_replied()
    );
    x.signal(Signal::Term).unwrap();
    assert!(x.wait_exit(Duration::from_secs(10)).unwrap().success());
}

//! Generator throughput on a veth pair: `xfwd_gen` sends live frames out of `a0` (netns A),
//! `xfwd_sink` counts and drops them on `b0` (netns B, native XDP).
//!
//! ```text
//! sudo taskset -c 0 cargo run --release -p xfwd-ebpf --example gen_rate -- \
//!     [--frames N] [--batch B] [--len L] [--flows F] [--runs R] [--timestamp-every T] [--no-sink]
//! ```
//!
//! Everything runs on the calling CPU: the generator in BPF_PROG_RUN, and the peer's NAPI
//! (the sink) in the softirq that follows each batch. `--no-sink` leaves b0 without an XDP
//! program, so veth refuses the frames at transmit (counted as xdp_xmit_errors): the cost
//! of the generator and the redirect alone.

use std::net::Ipv4Addr;
use std::time::Instant;

use xfwd_ebpf::{AttachMode, Generator, Sink, SinkAction, SinkConfig, UdpTemplate};
use xfwd_testbed::NetNs;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Args {
    frames: u32,
    batch: u32,
    len: u16,
    flows: u16,
    runs: u32,
    timestamp_every: u32,
    sink: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        frames: 10_000_000,
        batch: 64,
        len: 60,
        flows: 1,
        runs: 5,
        timestamp_every: 1,
        sink: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--no-sink" {
            args.sink = false;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--frames" => args.frames = value.parse()?,
            "--batch" => args.batch = value.parse()?,
            "--len" => args.len = value.parse()?,
            "--flows" => args.flows = value.parse()?,
            "--runs" => args.runs = value.parse()?,
            "--timestamp-every" => args.timestamp_every = value.parse()?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    Ok(args)
}

fn ifindex(ns: &NetNs, dev: &str) -> Result<u32> {
    let out = ns.exec(&["cat", &format!("/sys/class/net/{dev}/ifindex")])?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

fn xmit_errors(ns: &NetNs, dev: &str) -> Result<u64> {
    let out = ns.exec(&["ethtool", "-S", dev])?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().split_once(": "))
        .filter(|(k, _)| k.ends_with("_xdp_xmit_errors"))
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .sum())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let a = NetNs::new("xgr")?;
    let b = NetNs::new("xgr")?;
    a.exec(&[
        "ip",
        "link",
        "add",
        "a0",
        "address",
        "02:00:00:00:00:0a",
        "type",
        "veth",
        "peer",
        "name",
        "b0",
        "address",
        "02:00:00:00:00:0b",
        "netns",
        b.name(),
    ])?;
    a.exec(&["ip", "link", "set", "a0", "up"])?;
    b.exec(&["ip", "link", "set", "b0", "up"])?;
    let (a0, b0) = (ifindex(&a, "a0")?, ifindex(&b, "b0")?);

    let mut sink = Sink::load(&SinkConfig {
        udp_port: Some(9),
        action: SinkAction::Drop,
    })?;
    if args.sink {
        let mode = b.run(|| sink.attach(b0, AttachMode::Native))??;
        println!("sink on b0 ({mode})");
    }
    let mut generator = Generator::load()?;
    let template = UdpTemplate {
        frame_len: args.len,
        flows: args.flows,
        ..UdpTemplate::new(
            [2, 0, 0, 0, 0, 0x0a],
            [2, 0, 0, 0, 0, 0x0b],
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
        )
    };
    generator.configure(&template)?;
    generator.set_timestamp_every(args.timestamp_every)?;
    println!(
        "{} runs of {} frames of {} bytes, {} flows, batch {}",
        args.runs, args.frames, args.len, args.flows, args.batch
    );

    let mut rates = Vec::new();
    for run in 0..args.runs {
        let (p0, _) = sink.counters()?;
        let e0 = xmit_errors(&a, "a0")?;
        let start = Instant::now();
        let sent = a.run(|| generator.run(a0, args.batch, args.frames))??;
        let secs = start.elapsed().as_secs_f64();
        let (p1, _) = sink.counters()?;
        let lost = xmit_errors(&a, "a0")? - e0;
        let mpps = sent as f64 / secs / 1e6;
        println!(
            "run {run}: sent {sent} in {secs:.3} s = {mpps:.2} Mpps; sink counted {} ({:.2} Mpps), veth xmit errors {lost}",
            p1 - p0,
            (p1 - p0) as f64 / secs / 1e6
        );
        rates.push(mpps);
    }
    for (ns, dev) in [(&a, "a0"), (&b, "b0")] {
        let stats = ns.exec(&["ip", "-s", "-s", "link", "show", "dev", dev])?;
        let xdp = ns.exec(&["ethtool", "-S", dev])?;
        println!("{dev}:\n{}", String::from_utf8_lossy(&stats.stdout));
        for line in String::from_utf8_lossy(&xdp.stdout)
            .lines()
            .filter(|l| l.contains("xdp") && !l.ends_with(": 0"))
        {
            println!("{line}");
        }
    }
    rates.sort_by(f64::total_cmp);
    println!("median {:.2} Mpps", rates[rates.len() / 2]);
    Ok(())
}

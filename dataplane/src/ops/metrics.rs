//! The Prometheus endpoint: a minimal HTTP/1.1 server on one thread (`GET /metrics`), rendering
//! the text exposition format from a [`StatsReport`] assembled at scrape time from the
//! per-worker counters (no shared atomic is touched per packet).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::control::report::StatsReport;

/// What the server calls on each scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// A running metrics endpoint; stops on drop.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves on a thread.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound (in use, not local, port below 1024 without
    /// `CAP_NET_BIND_SERVICE`).
    pub fn start(addr: SocketAddr, render: Render) -> Result<MetricsServer> {
        Self::serve(Self::bind(addr)?, render)
    }

    /// Binds `addr`, to [`Self::serve`] later (binding may need privileges that serving does not).
    ///
    /// # Errors
    ///
    /// As [`Self::start`].
    pub fn bind(addr: SocketAddr) -> Result<TcpListener> {
        TcpListener::bind(addr).with_context(|| format!("binding the metrics endpoint {addr}"))
    }

    /// Serves on a listener from [`Self::bind`], on a new thread.
    ///
    /// # Errors
    ///
    /// When the thread cannot be started.
    pub fn serve(listener: TcpListener, render: Render) -> Result<MetricsServer> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("xfwd-metrics".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        if let Ok(conn) = conn
                            && let Err(e) = serve(conn, &render)
                        {
                            tracing::debug!("metrics client: {e}");
                        }
                    }
                })?
        };
        tracing::info!("metrics: serving Prometheus text on http://{addr}/metrics");
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address (the real port when `addr` asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut conn: TcpStream, render: &Render) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    // Read the request head (bounded); the body of a GET is empty.
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 16 * 1024 {
            return respond(
                &mut conn,
                "431 Request Header Fields Too Large",
                "text/plain",
                "",
            );
        }
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let body = render();
            let body = if method == "HEAD" { "" } else { &body };
            respond(
                &mut conn,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                body,
            )
        }
        ("GET", "/") => respond(
            &mut conn,
            "200 OK",
            "text/html",
            "<html><body><a href=\"/metrics\">xfwd metrics</a></body></html>\n",
        ),
        ("GET" | "HEAD", _) => respond(&mut conn, "404 Not Found", "text/plain", "not found\n"),
        _ => respond(&mut conn, "405 Method Not Allowed", "text/plain", ""),
    }
}

fn respond(conn: &mut TcpStream, status: &str, ctype: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())?;
    conn.flush()
}

/// Escapes a label value (`\`, `"`, newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, ty: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {ty}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", esc(val));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {v}");
    }
}

/// The Prometheus text exposition (format 0.0.4) of `s`.
pub fn render(s: &StatsReport) -> String {
    let mut o = Out(String::with_capacity(8192));
    o.family("xfwd_build_info", "gauge", "Version of the running xfwd.");
    o.sample("xfwd_build_info", &[("version", &s.version)], 1);
    o.family(
        "xfwd_uptime_seconds",
        "gauge",
        "Seconds since xfwd became ready.",
    );
    o.sample("xfwd_uptime_seconds", &[], format!("{:.3}", s.uptime_s));
    o.family(
        "xfwd_forwarded_packets_total",
        "counter",
        "Packets forwarded (placed on an egress TX ring).",
    );
    o.sample("xfwd_forwarded_packets_total", &[], s.forwarded);

    for (name, help, idx) in [
        (
            "xfwd_interface_rx_packets_total",
            "Frames received by xfwd.",
            0,
        ),
        (
            "xfwd_interface_rx_bytes_total",
            "Bytes received by xfwd.",
            1,
        ),
        (
            "xfwd_interface_tx_packets_total",
            "Frames transmitted by xfwd.",
            2,
        ),
        (
            "xfwd_interface_tx_bytes_total",
            "Bytes transmitted by xfwd.",
            3,
        ),
    ] {
        o.family(name, "counter", help);
        for i in &s.interfaces {
            let v = [i.rx_packets, i.rx_bytes, i.tx_packets, i.tx_bytes][idx];
            o.sample(name, &[("interface", &i.name)], v);
        }
    }
    for (name, help, idx) in [
        (
            "xfwd_queue_rx_packets_total",
            "Frames received per interface queue.",
            0,
        ),
        (
            "xfwd_queue_rx_bytes_total",
            "Bytes received per interface queue.",
            1,
        ),
        (
            "xfwd_queue_tx_packets_total",
            "Frames transmitted per interface queue.",
            2,
        ),
        (
            "xfwd_queue_tx_bytes_total",
            "Bytes transmitted per interface queue.",
            3,
        ),
    ] {
        o.family(name, "counter", help);
        for w in &s.workers {
            let q = w.id.to_string();
            for (p, c) in w.ports.iter().enumerate() {
                let iface = s.interfaces.get(p).map_or("?", |i| i.name.as_str());
                let v = [c.rx_packets, c.rx_bytes, c.tx_packets, c.tx_bytes][idx];
                o.sample(name, &[("interface", iface), ("queue", &q)], v);
            }
        }
    }
    o.family(
        "xfwd_interface_info",
        "gauge",
        "How each interface is driven (XDP attach mode, zero-copy).",
    );
    for i in &s.interfaces {
        o.sample(
            "xfwd_interface_info",
            &[
                ("interface", &i.name),
                ("xdp_mode", &i.xdp_mode),
                ("zero_copy", if i.zero_copy { "true" } else { "false" }),
            ],
            1,
        );
    }
    o.family(
        "xfwd_xsk_statistics_total",
        "counter",
        "AF_XDP socket statistics (XDP_STATISTICS) of each interface queue's socket.",
    );
    for w in &s.workers {
        let q = w.id.to_string();
        for (p, c) in w.ports.iter().enumerate() {
            let iface = s.interfaces.get(p).map_or("?", |i| i.name.as_str());
            for (k, v) in &c.xsk {
                o.sample(
                    "xfwd_xsk_statistics_total",
                    &[("interface", iface), ("queue", &q), ("counter", k)],
                    v,
                );
            }
        }
    }
    o.family("xfwd_drops_total", "counter", "Packets dropped, by reason.");
    for (reason, v) in &s.drops {
        o.sample("xfwd_drops_total", &[("reason", reason)], v);
    }
    o.family(
        "xfwd_events_total",
        "counter",
        "Pipeline events: ICMP errors sent by type, suppressed or rate limited; fragmentation.",
    );
    for (event, v) in &s.events {
        o.sample("xfwd_events_total", &[("event", event)], v);
    }
    o.family(
        "xfwd_xdp_verdicts_total",
        "counter",
        "Verdicts of the XDP steering program, summed over CPUs.",
    );
    for (verdict, v) in &s.xdp {
        o.sample("xfwd_xdp_verdicts_total", &[("verdict", verdict)], v);
    }
    o.family(
        "xfwd_fib_prefixes",
        "gauge",
        "Prefixes in the forwarding table.",
    );
    o.sample("xfwd_fib_prefixes", &[], s.fib.prefixes);
    o.family(
        "xfwd_fib_generation",
        "counter",
        "Forwarding table generation (one per change).",
    );
    o.sample("xfwd_fib_generation", &[], s.fib.generation);
    o.family(
        "xfwd_neighbours",
        "gauge",
        "Kernel neighbour entries on xfwd's interfaces, by state.",
    );
    for (state, v) in &s.fib.neighbour_states {
        o.sample("xfwd_neighbours", &[("state", state)], v);
    }
    for (name, ty, help) in [
        (
            "xfwd_worker_busy_ratio",
            "gauge",
            "Share of time the worker spent on batches with work.",
        ),
        (
            "xfwd_worker_packets_total",
            "counter",
            "Packets the worker received.",
        ),
        (
            "xfwd_worker_batches_total",
            "counter",
            "RX batches that carried packets.",
        ),
        (
            "xfwd_worker_busy_seconds_total",
            "counter",
            "Time spent on batches with work.",
        ),
        (
            "xfwd_worker_pending_packets",
            "gauge",
            "Packets parked awaiting neighbour resolution.",
        ),
        (
            "xfwd_worker_tx_kicks_total",
            "counter",
            "TX wake-ups (sendto) issued.",
        ),
        (
            "xfwd_worker_stalls_total",
            "counter",
            "Loop gaps of 1 ms or more not spent asleep on purpose (the CPU was taken away).",
        ),
        (
            "xfwd_worker_stall_seconds_total",
            "counter",
            "Time in those gaps.",
        ),
        (
            "xfwd_worker_longest_stall_seconds",
            "gauge",
            "The longest such gap since the worker started.",
        ),
    ] {
        o.family(name, ty, help);
        for w in &s.workers {
            let id = w.id.to_string();
            let cpu = w.cpu.map_or_else(String::new, |c| c.to_string());
            let labels = [("worker", id.as_str()), ("cpu", cpu.as_str())];
            match name {
                "xfwd_worker_busy_ratio" => o.sample(name, &labels, format!("{:.6}", w.busy_ratio)),
                "xfwd_worker_packets_total" => o.sample(name, &labels, w.packets),
                "xfwd_worker_batches_total" => o.sample(name, &labels, w.batches),
                "xfwd_worker_busy_seconds_total" => {
                    o.sample(name, &labels, format!("{:.9}", w.busy_ns as f64 / 1e9))
                }
                "xfwd_worker_pending_packets" => o.sample(name, &labels, w.pending),
                "xfwd_worker_stalls_total" => o.sample(name, &labels, w.stalls),
                "xfwd_worker_stall_seconds_total" => {
                    o.sample(name, &labels, format!("{:.9}", w.stall_ns as f64 / 1e9))
                }
                "xfwd_worker_longest_stall_seconds" => o.sample(
                    name,
                    &labels,
                    format!("{:.9}", w.longest_stall_ns as f64 / 1e9),
                ),
                _ => o.sample(name, &labels, w.tx_kicks),
            }
        }
    }
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::report::{InterfaceReport, PortCounts, WorkerReport};

    #[test]
    fn renders_valid_exposition_and_serves_it() {
        let mut s = StatsReport {
            version: "9.9.9".into(),
            forwarded: 42,
            ..StatsReport::default()
        };
        s.drops.insert("no_route".into(), 3);
        s.events.insert("icmp_tx_net_unreachable".into(), 2);
        s.interfaces.push(InterfaceReport {
            name: "p\"0".into(),
            rx_packets: 5,
            ..InterfaceReport::default()
        });
        s.workers.push(WorkerReport {
            id: 0,
            cpu: Some(1),
            ports: vec![PortCounts {
                rx_packets: 5,
                ..PortCounts::default()
            }],
            ..WorkerReport::default()
        });
        let text = render(&s);
        assert!(
            text.contains("xfwd_build_info{version=\"9.9.9\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("xfwd_drops_total{reason=\"no_route\"} 3\n")
                && text.contains("xfwd_events_total{event=\"icmp_tx_net_unreachable\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("xfwd_interface_rx_packets_total{interface=\"p\\\"0\"} 5\n"));
        assert!(text.contains("xfwd_queue_rx_packets_total{interface=\"p\\\"0\",queue=\"0\"} 5\n"));
        // Every sample line belongs to a family declared just before with # TYPE.
        let mut declared = Vec::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_owned());
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                assert_eq!(declared.last().map(String::as_str), Some(name), "{l}");
                let v = l.rsplit(' ').next().unwrap();
                assert!(v.parse::<f64>().is_ok(), "{l}");
            }
        }

        let server =
            MetricsServer::start("127.0.0.1:0".parse().unwrap(), Arc::new(move || render(&s)))
                .unwrap();
        let get = |req: &str| {
            let mut c = TcpStream::connect(server.addr()).unwrap();
            c.write_all(req.as_bytes()).unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).unwrap();
            out
        };
        let r = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("xfwd_forwarded_packets_total 42\n"), "{r}");
        assert!(get("GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get("POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    }
}

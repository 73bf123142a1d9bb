//! Processes inside namespaces: a [`Daemon`] with a captured log, and [`ping`].

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::NetNs;

/// Lines of output a [`Daemon`] keeps (older ones are counted, then forgotten).
const LOG_LINES: usize = 10_000;
/// Longest line kept whole; longer output is split into lines of this size.
const LOG_LINE_BYTES: usize = 4096;

/// A signal to send to a [`Daemon`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: ask for a clean shutdown.
    Term,
    /// SIGINT: what Ctrl-C sends.
    Int,
    /// SIGHUP: conventionally, reload configuration.
    Hup,
    /// SIGKILL: end it now.
    Kill,
    /// SIGSTOP: freeze every thread (e.g. to take a CPU away from a worker).
    Stop,
    /// SIGCONT: resume after [`Signal::Stop`].
    Cont,
}

impl Signal {
    fn number(self) -> libc::c_int {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Int => libc::SIGINT,
            Signal::Hup => libc::SIGHUP,
            Signal::Kill => libc::SIGKILL,
            Signal::Stop => libc::SIGSTOP,
            Signal::Cont => libc::SIGCONT,
        }
    }
}

/// A long-running process (e.g. `xfwd run`) whose stdout and stderr are captured line by line.
///
/// It runs in its own process group, so signals reach whatever it started too. Dropping a
/// `Daemon` that still runs kills its process group with SIGKILL and reaps it, so nothing is left
/// behind; if the drop happens while a test panics, or the process had failed on its own without
/// anyone collecting its status, its log is printed to stderr.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Child,
    log: Arc<Log>,
    status: Option<ExitStatus>,
    status_seen: bool,
}

#[derive(Debug, Default)]
struct Log {
    state: Mutex<LogState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct LogState {
    lines: VecDeque<String>,
    forgotten: u64,
    open_streams: u8,
}

impl Log {
    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A reader thread cannot panic while holding the lock, but stay usable if one did.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, line: String) {
        let mut st = self.lock();
        if st.lines.len() == LOG_LINES {
            st.lines.pop_front();
            st.forgotten += 1;
        }
        st.lines.push_back(line);
        drop(st);
        self.changed.notify_all();
    }

    fn close_stream(&self) {
        self.lock().open_streams -= 1;
        self.changed.notify_all();
    }

    fn render(&self) -> String {
        let st = self.lock();
        let mut out = String::new();
        if st.forgotten > 0 {
            out.push_str(&format!("[{} earlier lines not kept]\n", st.forgotten));
        }
        for l in &st.lines {
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}

impl Daemon {
    /// Spawns `argv` inside namespace `ns` (through `ip netns exec`, which then becomes the
    /// program itself).
    ///
    /// # Errors
    ///
    /// When `argv` is empty or the process cannot be started.
    pub fn spawn(ns: &NetNs, argv: &[&str]) -> Result<Daemon> {
        let (prog, args) = argv.split_first().context("empty command")?;
        let mut cmd = ns.command(prog);
        cmd.args(args);
        Daemon::spawn_command(&format!("{} (netns {})", argv.join(" "), ns.name()), cmd)
    }

    /// Spawns a prepared [`Command`] (e.g. from [`NetNs::command`] with environment variables
    /// set); `name` labels its log. Stdin is null; stdout and stderr are captured.
    ///
    /// # Errors
    ///
    /// When the process cannot be started.
    pub fn spawn_command(name: &str, mut cmd: Command) -> Result<Daemon> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().with_context(|| format!("spawning {name}"))?;
        let log = Arc::new(Log::default());
        log.lock().open_streams = 2;
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        for stream in [stdout, stderr] {
            let Some(stream) = stream else {
                log.close_stream();
                continue;
            };
            let log = Arc::clone(&log);
            // Detached: a grandchild that inherited the pipe may outlive the daemon, and the
            // thread ends at EOF whenever that comes.
            std::thread::Builder::new()
                .name("daemon-log".into())
                .spawn(move || read_lines(stream, &log))
                .context("starting a log reader thread")?;
        }
        Ok(Daemon {
            name: name.to_owned(),
            child,
            log,
            status: None,
            status_seen: false,
        })
    }

    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until a line of output containing `needle` appears (counting every line since the
    /// start that is still kept) and returns that line.
    ///
    /// # Errors
    ///
    /// When `timeout` passes first, or the process closes its output (usually: exits) without
    /// printing it; the error carries the log.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut st = self.log.lock();
        loop {
            if let Some(l) = st.lines.iter().find(|l| l.contains(needle)) {
                return Ok(l.clone());
            }
            if st.open_streams == 0 {
                drop(st);
                bail!(
                    "{} closed its output without printing {needle:?}; log:\n{}",
                    self.name,
                    self.log.render()
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                drop(st);
                bail!(
                    "{} did not print {needle:?} within {timeout:?}; log:\n{}",
                    self.name,
                    self.log.render()
                );
            }
            st = self
                .log
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Everything captured so far (stdout and stderr interleaved by arrival), one line each.
    pub fn log(&self) -> String {
        self.log.render()
    }

    /// Sends `sig` to the daemon's process group.
    ///
    /// # Errors
    ///
    /// When the process has already been reaped, or `kill(2)` fails.
    pub fn signal(&self, sig: Signal) -> Result<()> {
        if self.status.is_some() {
            bail!("{} has already exited ({:?})", self.name, self.status);
        }
        let pgid = libc::pid_t::try_from(self.child.id()).context("pid out of range")?;
        // SAFETY: killpg takes no pointers. The group id is that of our own child, which has not
        // been reaped (status is None), so the id cannot have been reused.
        let rc = unsafe { libc::killpg(pgid, sig.number()) };
        if rc != 0 {
            bail!(
                "signal {sig:?} to {}: {}",
                self.name,
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit and returns its status (also on later
    /// calls).
    ///
    /// # Errors
    ///
    /// When it is still running after `timeout` (it is left running; the error carries the log).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status()? {
                self.status_seen = true;
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} still running after {timeout:?}; log:\n{}",
                    self.name,
                    self.log.render()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn try_status(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .with_context(|| format!("waiting for {}", self.name))?;
        }
        Ok(self.status)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let exited_on_its_own = matches!(self.try_status(), Ok(Some(_)));
        if !exited_on_its_own {
            let _ = self.signal(Signal::Kill);
            self.status = self.child.wait().ok();
        }
        let failed_unseen =
            exited_on_its_own && !self.status_seen && self.status.is_some_and(|s| !s.success());
        if std::thread::panicking() || failed_unseen {
            eprintln!(
                "----- log of {} (exit: {}) -----\n{}----- end of log -----",
                self.name,
                self.status.map_or("?".into(), describe_status),
                self.log.render()
            );
        }
    }
}

/// "exit code 1" or "signal 15".
fn describe_status(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => format!("{s}"),
    }
}

/// Reads `stream` into `log` line by line until EOF; lines longer than `LOG_LINE_BYTES` are
/// split, invalid UTF-8 is replaced.
fn read_lines(stream: Box<dyn Read + Send>, log: &Log) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match (&mut reader)
            .take(LOG_LINE_BYTES as u64)
            .read_until(b'\n', &mut buf)
        {
            Ok(0) => break,
            Ok(_) => {
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                log.push(String::from_utf8_lossy(&buf).into_owned());
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                log.push(format!("[log reader: {e}]"));
                break;
            }
        }
    }
    log.close_stream();
}

/// What `ping` reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PingResult {
    /// Echo requests sent.
    pub transmitted: u32,
    /// Echo replies received.
    pub received: u32,
    /// ICMP errors received instead of replies (the `+N errors` count).
    pub errors: u32,
    /// The `From ...` lines describing those errors, e.g.
    /// `From 10.0.1.1 icmp_seq=1 Time to live exceeded`.
    pub error_lines: Vec<String>,
    /// Average round-trip time, when any reply came.
    pub rtt_avg: Option<Duration>,
}

impl PingResult {
    /// Whether every request got its reply.
    pub fn all_replied(&self) -> bool {
        self.transmitted > 0 && self.received == self.transmitted
    }
}

/// Pings `dst` from namespace `ns`: `count` requests 100 ms apart, waiting up to 1 s for each
/// reply, with IP TTL `ttl` when given (iputils `ping`).
///
/// Losing replies is a result, not an error.
///
/// # Errors
///
/// When `ping` cannot run (not installed: Debian package `iputils-ping`), fails for another
/// reason than lost replies (exit status 2), or its summary cannot be parsed.
pub fn ping(ns: &NetNs, dst: Ipv4Addr, count: u32, ttl: Option<u8>) -> Result<PingResult> {
    let mut cmd = ns.command("ping");
    cmd.args(["-n", "-c", &count.to_string(), "-i", "0.1", "-W", "1"]);
    if let Some(ttl) = ttl {
        cmd.args(["-t", &ttl.to_string()]);
    }
    cmd.arg(dst.to_string());
    let out = cmd
        .output()
        .context("running ping (Debian package iputils-ping)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    // iputils: 0 = some reply, 1 = no reply, 2 = other error.
    if !matches!(out.status.code(), Some(0 | 1)) {
        bail!(
            "ping {dst} in netns {} failed ({}): {}{}",
            ns.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            stdout.trim()
        );
    }
    parse_ping(&stdout).with_context(|| format!("parsing ping output:\n{stdout}"))
}

/// Parses iputils `ping` output.
fn parse_ping(out: &str) -> Result<PingResult> {
    let mut r = PingResult::default();
    let summary = out
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .context("no summary line")?;
    for part in summary.split(',').map(str::trim) {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let n = n.trim_start_matches('+');
        match what {
            "packets" => r.transmitted = n.parse().context("transmitted count")?,
            "received" => r.received = n.parse().context("received count")?,
            "errors" => r.errors = n.parse().context("error count")?,
            _ => {}
        }
    }
    r.error_lines = out
        .lines()
        .filter(|l| l.starts_with("From "))
        .map(str::to_owned)
        .collect();
    if let Some(stats) = out
        .lines()
        .find_map(|l| l.strip_prefix("rtt min/avg/max/mdev = "))
    {
        let avg = stats
            .split('/')
            .nth(1)
            .context("rtt line")?
            .parse::<f64>()
            .context("rtt average")?;
        r.rtt_avg = Some(Duration::from_secs_f64(avg / 1000.0));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_replies() {
        let out = "PING 10.0.2.2 (10.0.2.2) 56(84) bytes of data.
64 bytes from 10.0.2.2: icmp_seq=1 ttl=63 time=0.061 ms
64 bytes from 10.0.2.2: icmp_seq=2 ttl=63 time=0.050 ms

--- 10.0.2.2 ping statistics ---
2 packets transmitted, 2 received, 0% packet loss, time 1001ms
rtt min/avg/max/mdev = 0.050/0.055/0.061/0.005 ms
";
        let r = parse_ping(out).unwrap();
        assert_eq!((r.transmitted, r.received, r.errors), (2, 2, 0));
        assert!(r.all_replied() && r.error_lines.is_empty());
        assert_eq!(r.rtt_avg, Some(Duration::from_micros(55)));
    }

    #[test]
    fn parses_errors() {
        let out = "PING 10.0.2.2 (10.0.2.2) 56(84) bytes of data.
From 10.0.1.1 icmp_seq=1 Time to live exceeded
From 10.0.1.1 icmp_seq=2 Time to live exceeded

--- 10.0.2.2 ping statistics ---
2 packets transmitted, 0 received, +2 errors, 100% packet loss, time 1002ms
";
        let r = parse_ping(out).unwrap();
        assert_eq!((r.transmitted, r.received, r.errors), (2, 0, 2));
        assert!(!r.all_replied());
        assert_eq!(r.error_lines.len(), 2);
        assert!(r.error_lines[0].contains("Time to live exceeded"));
        assert_eq!(r.rtt_avg, None);
    }

    #[test]
    fn rejects_output_without_summary() {
        assert!(parse_ping("ping: connect: Network is unreachable\n").is_err());
    }

    #[test]
    fn daemon_outside_namespaces() {
        // The log machinery needs no privileges: run a plain process.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo one; echo two >&2; exit 3"]);
        let mut d = Daemon::spawn_command("sh", cmd).unwrap();
        d.wait_for_line("two", Duration::from_secs(5)).unwrap();
        let status = d.wait_exit(Duration::from_secs(5)).unwrap();
        assert_eq!(status.code(), Some(3));
        // The two streams are read by separate threads: order between them is not kept.
        d.wait_for_line("one", Duration::from_secs(5)).unwrap();
        assert!(d.log().contains("one\n") && d.log().contains("two\n"));
        let err = d
            .wait_for_line("never", Duration::from_secs(5))
            .unwrap_err();
        assert!(err.to_string().contains("closed its output"), "{err}");
        assert!(
            d.signal(Signal::Term).is_err(),
            "reaped processes take no signals"
        );
    }

    #[test]
    fn long_lines_are_split_and_log_is_bounded() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "head -c 10000 /dev/zero | tr '\\0' x; echo; seq 1 10050",
        ]);
        let mut d = Daemon::spawn_command("sh", cmd).unwrap();
        d.wait_exit(Duration::from_secs(10)).unwrap();
        d.wait_for_line("10050", Duration::from_secs(5)).unwrap();
        let st = d.log.lock();
        assert_eq!(st.lines.len(), LOG_LINES);
        // 3 pieces of the long line + 10050 numbers, of which LOG_LINES are kept.
        assert_eq!(st.forgotten, 3 + 10050 - LOG_LINES as u64);
        assert!(st.lines.iter().all(|l| l.len() <= LOG_LINE_BYTES));
    }
}

//! The control socket: a Unix stream socket (root-only) that answers one JSON request per
//! connection with one JSON response, and the client the CLI uses.
//!
//! ```text
//!   client ──► {"cmd":"stats"}\n
//!          ◄── {"ok":true,"data":{...StatsReport...}}\n      or {"ok":false,"error":"..."}
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Default control socket path.
pub const DEFAULT_CONTROL: &str = "/run/xfwd/xfwd.sock";

/// A request on the control socket.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Counters: [`super::report::StatsReport`].
    Stats,
    /// Drop reasons: [`super::report::ErrorsReport`].
    Errors,
    /// Per-worker figures: a [`super::report::StatsReport`], rendered as `show runtime`.
    Runtime,
    /// Per interface and queue: a [`super::report::StatsReport`], rendered as `show interfaces`.
    Interfaces,
    /// The kernel routes xfwd mirrors: [`super::report::RoutesReport`]; `lookup` is a prefix
    /// (exact match) or an address (longest match, plus xfwd's FIB verdict).
    Routes {
        /// `a.b.c.d/len` or `a.b.c.d`.
        #[serde(default)]
        lookup: Option<String>,
    },
    /// Neighbours on xfwd's interfaces: [`super::report::NeighboursReport`].
    Neighbours,
    /// Zero what `show` prints (metrics keep counting).
    ClearCounters,
    /// Re-read the configuration: [`crate::ops::config::ReloadOutcome`].
    Reload,
    /// Capture what the pipeline does to the next `count` packets (only those dropped for
    /// `drop_reason` when given), for at most `timeout_ms`: [`crate::ops::trace::TraceReport`].
    Trace {
        /// Packets to capture.
        count: u32,
        /// Only packets dropped for this reason.
        #[serde(default)]
        drop_reason: Option<String>,
        /// Give up after this long.
        timeout_ms: u64,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Response {
    ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Answers requests; implemented by the running instance.
pub trait Handler: Send + Sync + 'static {
    /// The JSON answer to `req`.
    ///
    /// # Errors
    ///
    /// When the request cannot be answered; the message goes back to the client.
    fn handle(&self, req: &Request) -> Result<serde_json::Value>;
}

/// The listening control socket; removes its path on drop.
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `path` (mode 0600; parent directory created 0750) and serves `handler` on a thread.
    ///
    /// # Errors
    ///
    /// When another instance answers on `path`, or the socket cannot be created.
    pub fn start(path: &Path, handler: Arc<dyn Handler>) -> Result<Server> {
        if let Some(dir) = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !d.exists())
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating control socket directory {}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))?;
        }
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                bail!(
                    "control socket path {} exists and is not a socket",
                    path.display()
                );
            }
            if UnixStream::connect(path).is_ok() {
                bail!(
                    "another xfwd is already running with control socket {} (use --control)",
                    path.display()
                );
            }
            std::fs::remove_file(path)
                .with_context(|| format!("removing stale control socket {}", path.display()))?;
        }
        let listener = UnixListener::bind(path)
            .with_context(|| format!("binding control socket {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("xfwd-control-sock".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        if let Ok(conn) = conn
                            && let Err(e) = serve(conn, handler.as_ref())
                        {
                            tracing::debug!("control socket client: {e:#}");
                        }
                    }
                })?
        };
        Ok(Server {
            path: path.to_owned(),
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept() so the thread sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(conn: UnixStream, handler: &dyn Handler) -> Result<()> {
    // A client that never sends its request must not hold the socket.
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(&conn).take(64 * 1024).read_line(&mut line)?;
    if line.trim().is_empty() {
        return Ok(()); // the shutdown wake-up, or a probe
    }
    let resp = match serde_json::from_str::<Request>(&line) {
        Err(e) => Response {
            ok: false,
            data: None,
            error: Some(format!("bad request: {e}")),
        },
        Ok(req) => match handler.handle(&req) {
            Ok(data) => Response {
                ok: true,
                data: Some(data),
                error: None,
            },
            Err(e) => Response {
                ok: false,
                data: None,
                error: Some(format!("{e:#}")),
            },
        },
    };
    let mut out = serde_json::to_vec(&resp)?;
    out.push(b'\n');
    (&conn).write_all(&out)?;
    Ok(())
}

/// Sends `req` to the instance listening on `path` and returns its answer.
///
/// # Errors
///
/// When nothing listens on `path` (with a hint), or the instance reports an error.
pub fn request(path: &Path, req: &Request) -> Result<serde_json::Value> {
    request_timeout(path, req, Duration::from_secs(10))
}

/// [`request`], waiting up to `timeout` for the answer.
///
/// # Errors
///
/// As [`request`].
pub fn request_timeout(path: &Path, req: &Request, timeout: Duration) -> Result<serde_json::Value> {
    let conn = UnixStream::connect(path).with_context(|| {
        format!(
            "cannot reach xfwd on control socket {} (is `xfwd run` running?)",
            path.display()
        )
    })?;
    conn.set_read_timeout(Some(timeout))?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    (&conn).write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(&conn)
        .read_line(&mut answer)
        .context("reading control socket answer")?;
    let resp: Response =
        serde_json::from_str(&answer).context("malformed control socket answer")?;
    match (resp.ok, resp.data, resp.error) {
        (true, Some(data), _) => Ok(data),
        (_, _, Some(e)) => bail!("xfwd: {e}"),
        _ => bail!("xfwd answered without data"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl Handler for Echo {
        fn handle(&self, req: &Request) -> Result<serde_json::Value> {
            match req {
                Request::Stats => Ok(serde_json::json!({"forwarded": 7})),
                _ => bail!("no errors today"),
            }
        }
    }

    #[test]
    fn round_trip_errors_stale_socket_and_second_instance() {
        let dir = std::env::temp_dir().join(format!("xfwd-ctl-{}", std::process::id()));
        let path = dir.join("sub/ctl.sock");
        let server = Server::start(&path, Arc::new(Echo)).unwrap();
        assert_eq!(request(&path, &Request::Stats).unwrap()["forwarded"], 7);
        let err = request(&path, &Request::Errors).unwrap_err().to_string();
        assert!(err.contains("no errors today"), "{err}");
        let second = Server::start(&path, Arc::new(Echo))
            .unwrap_err()
            .to_string();
        assert!(second.contains("already running"), "{second}");
        drop(server);
        assert!(!path.exists(), "socket removed on drop");
        let err = request(&path, &Request::Stats).unwrap_err().to_string();
        assert!(err.contains("is `xfwd run` running?"), "{err}");
        // A stale socket file (left by a killed instance) is replaced.
        let stale = UnixListener::bind(&path).unwrap();
        drop(stale);
        let server = Server::start(&path, Arc::new(Echo)).unwrap();
        assert_eq!(request(&path, &Request::Stats).unwrap()["forwarded"], 7);
        drop(server);
        let _ = std::fs::remove_dir_all(dir);
    }
}

//! systemd's readiness and watchdog protocol (`sd_notify(3)`), implemented directly: one datagram
//! to the `AF_UNIX` socket named by `$NOTIFY_SOCKET` (a path, or `@name` in the abstract
//! namespace). Without `$NOTIFY_SOCKET` (not started by systemd) every call is a no-op.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// Sends `state` (e.g. `READY=1`, `RELOADING=1`, `STOPPING=1`, `WATCHDOG=1`, `STATUS=...`).
///
/// Returns `Ok(false)` when not started under a notify-aware service manager.
///
/// # Errors
///
/// When `$NOTIFY_SOCKET` is set but the datagram cannot be sent.
pub fn notify(state: &str) -> std::io::Result<bool> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let target = target.to_string_lossy().into_owned();
    let addr = match target.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None => SocketAddr::from_pathname(&target)?,
    };
    let sock = UnixDatagram::unbound()?;
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(true)
}

/// Sends `state`, logging (not failing) when that does not work: notification is best effort.
pub fn notify_or_log(state: &str) {
    if let Err(e) = notify(state) {
        tracing::warn!("sd_notify {state:?}: {e}");
    }
}

/// The watchdog systemd asked for (`WatchdogSec=` → `$WATCHDOG_USEC`, for our pid).
#[derive(Debug)]
pub struct Watchdog {
    every: Duration,
    last: Instant,
}

impl Watchdog {
    /// The watchdog from the environment, pinging at half the timeout; `None` when not asked.
    pub fn from_env() -> Option<Watchdog> {
        if let Ok(pid) = std::env::var("WATCHDOG_PID")
            && pid.parse::<u32>().ok() != Some(std::process::id())
        {
            return None;
        }
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        (usec > 0).then(|| Watchdog {
            every: Duration::from_micros(usec / 2),
            last: Instant::now() - Duration::from_micros(usec),
        })
    }

    /// Sends `WATCHDOG=1` when half the timeout has passed. Call it from the control loop, so a
    /// stuck control thread stops the pings and systemd restarts xfwd.
    pub fn tick(&mut self, now: Instant) {
        if now.duration_since(self.last) >= self.every {
            self.last = now;
            notify_or_log("WATCHDOG=1");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_path_and_abstract_sockets() {
        // The environment is process-wide: one test covers both forms in sequence.
        let dir = std::env::temp_dir().join(format!("xfwd-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        set_env("NOTIFY_SOCKET", path.to_str().unwrap());
        assert!(notify("READY=1").unwrap());
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        let name = format!("xfwd-notify-test-{}", std::process::id());
        let rx = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
            .unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        set_env("NOTIFY_SOCKET", &format!("@{name}"));
        assert!(notify("WATCHDOG=1").unwrap());
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
        remove_env("NOTIFY_SOCKET");
        assert!(!notify("READY=1").unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[expect(unsafe_code, reason = "std::env::set_var is unsafe in edition 2024")]
    fn set_env(k: &str, v: &str) {
        // SAFETY: no other thread of this test binary reads or writes NOTIFY_SOCKET.
        unsafe { std::env::set_var(k, v) }
    }

    #[expect(unsafe_code, reason = "std::env::remove_var is unsafe in edition 2024")]
    fn remove_env(k: &str) {
        // SAFETY: as in set_env.
        unsafe { std::env::remove_var(k) }
    }
}

//! A named network namespace that removes itself.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};

/// A network namespace created with `ip netns add` and deleted with `ip netns del` on drop.
///
/// Names are unique per process (`{prefix}-{pid}-{n}`), so tests can run in parallel.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates a namespace named `{prefix}-{pid}-{n}` and brings its loopback up.
    ///
    /// # Errors
    ///
    /// When `ip netns add` fails (not root, or iproute2 missing).
    pub fn new(prefix: &str) -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // Interface names derived from namespace names must fit IFNAMSIZ, so keep these short.
        let name = format!("{prefix}-{}-{n}", std::process::id());
        sh(&["ip", "netns", "add", &name])?;
        let ns = NetNs { name };
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns exec` takes it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `argv` inside the namespace and returns its output.
    ///
    /// # Errors
    ///
    /// When the command cannot start or exits non-zero; the error carries its stderr.
    pub fn exec(&self, argv: &[&str]) -> Result<Output> {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(argv);
        sh(&full)
    }

    /// Builds a [`Command`] that runs `program` inside the namespace, for callers that need to
    /// manage the child themselves (spawn, pipe stderr, signal it).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` on a fresh thread that has entered this namespace, and returns its result.
    ///
    /// Sockets opened inside `f` stay bound to this namespace after `f` returns, so this is also
    /// how a test opens a raw or netlink socket in the namespace.
    ///
    /// # Errors
    ///
    /// When the namespace cannot be opened or entered.
    ///
    /// # Panics
    ///
    /// Re-raises a panic from `f`.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let file = File::open(format!("/var/run/netns/{}", self.name))
            .with_context(|| format!("opening netns {}", self.name))?;
        std::thread::scope(|s| {
            s.spawn(|| -> Result<T> {
                // SAFETY: setns on a valid namespace fd only changes the calling thread's network
                // namespace; the thread is ours and ends when the scope does.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    bail!("setns({}): {}", self.name, std::io::Error::last_os_error());
                }
                Ok(f())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Killing what still runs inside first lets `netns del` free the namespace at once.
        let _ = Command::new("ip").args(["netns", "pids", &self.name]).output().map(|o| {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        });
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Runs a command, failing with its stderr when it exits non-zero.
///
/// # Errors
///
/// When the command cannot start or exits non-zero.
pub fn sh(argv: &[&str]) -> Result<Output> {
    let (prog, args) = argv.split_first().context("empty command")?;
    let out = Command::new(prog)
        .args(args)
        .output()
        .with_context(|| format!("running `{}`", argv.join(" ")))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

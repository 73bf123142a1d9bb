//! Daemons in namespaces: readiness, signals, exit status, and nothing left behind (privileged).

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use xfwd_testbed::{Daemon, NetNs, Signal};

/// Pids still running in `ns`.
fn pids_in(ns: &NetNs) -> Result<Vec<String>> {
    let out = xfwd_testbed::sh(&["ip", "netns", "pids", ns.name()])?;
    Ok(String::from_utf8(out.stdout)?
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

/// Waits up to 2 s for `ns` to hold no process.
fn wait_empty(ns: &NetNs) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let pids = pids_in(ns)?;
        if pids.is_empty() {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "still running in {}: {pids:?}",
            ns.name()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn ready_then_sigterm() -> Result<()> {
    xfwd_testbed::require_privileges!();
    let ns = NetNs::new("dm")?;
    let mut d = Daemon::spawn(&ns, &["sh", "-c", "echo ready >&2; sleep 100"])?;
    let line = d.wait_for_line("ready", Duration::from_secs(5))?;
    assert_eq!(line, "ready");
    // It runs inside the namespace.
    ensure!(pids_in(&ns)?.contains(&d.pid().to_string()));
    d.signal(Signal::Term)?;
    let status = d.wait_exit(Duration::from_secs(5))?;
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    // The signal went to the whole group: sleep is gone too.
    wait_empty(&ns)?;
    // Later calls return the same status; signals to a reaped process are refused.
    assert_eq!(d.wait_exit(Duration::ZERO)?.signal(), Some(libc::SIGTERM));
    assert!(d.signal(Signal::Term).is_err());
    Ok(())
}

#[test]
fn clean_exit_status_and_missing_line() -> Result<()> {
    xfwd_testbed::require_privileges!();
    let ns = NetNs::new("dx")?;
    let mut d = Daemon::spawn(
        &ns,
        &[
            "sh",
            "-c",
            "echo starting; trap 'exit 0' INT; sleep 100 & wait",
        ],
    )?;
    let err = d
        .wait_for_line("ready", Duration::from_millis(300))
        .expect_err("never prints ready");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("did not print") && msg.contains("starting"),
        "{msg}"
    );
    d.signal(Signal::Int)?;
    assert_eq!(d.wait_exit(Duration::from_secs(5))?.code(), Some(0));
    Ok(())
}

#[test]
fn drop_kills_the_whole_process_group() -> Result<()> {
    xfwd_testbed::require_privileges!();
    let ns = NetNs::new("dk")?;
    let d = Daemon::spawn(&ns, &["sh", "-c", "sleep 100 & echo up; sleep 100"])?;
    d.wait_for_line("up", Duration::from_secs(5))?;
    ensure!(pids_in(&ns)?.len() >= 2);
    drop(d);
    wait_empty(&ns)
}

#[test]
fn missing_program_is_an_error_with_its_log() -> Result<()> {
    xfwd_testbed::require_privileges!();
    let ns = NetNs::new("dn")?;
    let mut d = Daemon::spawn(&ns, &["/nonexistent/xfwd", "run"])?;
    // `ip netns exec` starts, then fails to exec the program and says why.
    let status = d.wait_exit(Duration::from_secs(5))?;
    assert!(!status.success());
    let err = d
        .wait_for_line("ready", Duration::from_secs(5))
        .expect_err("no ready line");
    assert!(format!("{err:#}").contains("No such file"), "{err:#}");
    Ok(())
}

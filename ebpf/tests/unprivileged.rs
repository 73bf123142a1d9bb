//! Without privileges, loading fails with an error that names the missing capabilities.

use std::process::Command;

use xfwd_ebpf::{Generator, Sink, SinkConfig, Steer};

const HELPER: &str = "XFWD_TEST_UNPRIVILEGED_HELPER";

/// Run by `unprivileged_load_names_the_capabilities` as user nobody with no capabilities.
#[test]
#[ignore = "helper process of unprivileged_load_names_the_capabilities"]
fn helper_load_without_privileges() {
    if std::env::var(HELPER).is_err() {
        return;
    }
    for (what, result) in [
        ("steer", Steer::load().map(drop)),
        ("generator", Generator::load().map(drop)),
        ("sink", Sink::load(&SinkConfig::default()).map(drop)),
    ] {
        match result {
            Ok(()) => println!("{what}: LOADED"),
            Err(e) => println!("{what}: ERROR {e}"),
        }
    }
}

#[test]
fn unprivileged_load_names_the_capabilities() {
    xfwd_testbed::require_privileges!();
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(exe)
        .args([
            "--ignored",
            "--exact",
            "helper_load_without_privileges",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    for what in ["steer", "generator", "sink"] {
        let line = stdout
            .lines()
            .find(|l| l.contains(&format!("{what}: ")))
            .unwrap_or_else(|| {
                panic!(
                    "no {what} line in {stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        assert!(
            line.contains("ERROR cannot load the XDP programs of"),
            "{line}"
        );
        assert!(
            line.contains("permission denied (need CAP_BPF and CAP_NET_ADMIN"),
            "{line}"
        );
    }
}

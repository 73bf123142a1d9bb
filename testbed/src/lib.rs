//! Test beds in network namespaces for xfwd's tests, demo and benchmarks.
//!
//! Everything here creates its own namespaces and removes them on drop, and only ever sends
//! traffic to addresses inside them.
//!
//! - [`privileged`] / [`require_privileges!`]: the gate every privileged test passes first.
//! - [`NetNs`]: a named network namespace (`ip netns add`), removed on drop, with
//!   [`NetNs::exec`] to run a command in it and [`NetNs::run`] to run a closure on a thread that
//!   has entered it.

mod netns;

pub use netns::{NetNs, sh};

/// Environment variable that turns a skipped privileged test into a failure (CI sets it to 1).
pub const PRIV_TESTS_ENV: &str = "XFWD_PRIV_TESTS";

/// Whether a privileged test may run here.
///
/// Privileged tests need root (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW, CAP_IPC_LOCK) and `ip`.
/// Without them this prints a loud `SKIPPED` line and returns `false`, unless
/// `XFWD_PRIV_TESTS=1`, in which case it panics so that CI cannot pass by skipping.
///
/// # Panics
///
/// When the test cannot run and `XFWD_PRIV_TESTS=1`.
pub fn privileged(test: &str) -> bool {
    let missing = missing_privileges();
    if missing.is_empty() {
        return true;
    }
    let why = missing.join(", ");
    if std::env::var(PRIV_TESTS_ENV).as_deref() == Ok("1") {
        panic!("privileged test {test} cannot run ({why}) and {PRIV_TESTS_ENV}=1");
    }
    eprintln!(
        "\n*** SKIPPED privileged test {test}: {why}. Run as root (and set {PRIV_TESTS_ENV}=1 to make this a failure). ***\n"
    );
    false
}

/// Returns early from the calling test when privileged tests cannot run here (see [`privileged`]).
#[macro_export]
macro_rules! require_privileges {
    () => {
        if !$crate::privileged(module_path!()) {
            return;
        }
    };
}

fn missing_privileges() -> Vec<String> {
    let mut missing = Vec::new();
    // CapEff bits: NET_ADMIN 12, NET_RAW 13, IPC_LOCK 14, SYS_ADMIN 21, BPF 39.
    let caps = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    for (bit, name) in [(12, "CAP_NET_ADMIN"), (13, "CAP_NET_RAW"), (14, "CAP_IPC_LOCK")] {
        if caps & (1 << bit) == 0 {
            missing.push(format!("missing {name}"));
        }
    }
    if caps & (1 << 39) == 0 && caps & (1 << 21) == 0 {
        missing.push("missing CAP_BPF".to_owned());
    }
    if std::process::Command::new("ip").arg("-V").output().is_err() {
        missing.push("`ip` (iproute2) not installed".to_owned());
    }
    missing
}

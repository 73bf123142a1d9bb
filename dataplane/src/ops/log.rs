//! Logging to stderr (journald picks it up under systemd) with a level `xfwd reload` can change.

use std::io::IsTerminal;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

static HANDLE: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the global subscriber at `level` (a level or a `tracing` filter; `info` if invalid).
pub fn init(level: &str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let (layer, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if tracing_subscriber::registry()
        .with(layer)
        .with(fmt)
        .try_init()
        .is_ok()
    {
        let _ = HANDLE.set(handle);
    }
}

/// Changes the level of the subscriber [`init`] installed.
///
/// # Errors
///
/// When `level` is not a valid filter, or [`init`] did not run.
pub fn set_level(level: &str) -> Result<()> {
    let filter = EnvFilter::try_new(level).with_context(|| format!("log level {level:?}"))?;
    HANDLE
        .get()
        .context("logging was not initialised")?
        .reload(filter)
        .context("changing the log level")
}

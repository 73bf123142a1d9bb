//! Running xfwd as a service: the configuration file, log levels that change live, the
//! Prometheus endpoint, systemd notification and the capabilities kept after setup.

pub mod config;
pub mod log;
pub mod metrics;
pub mod sdnotify;
pub mod takeover;
pub mod trace;
pub mod tune;

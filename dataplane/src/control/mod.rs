//! Control plane: the kernel mirror over netlink, the tables built from it, the control socket,
//! and the runtime that ties them to the workers.

pub mod config;
pub mod mirror;
pub mod netlink;
pub mod report;
pub mod runtime;
pub mod server;
pub mod tables;

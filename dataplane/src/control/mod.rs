//! Control plane: kernel mirror, control socket, runtime.

pub mod mirror;
pub mod netlink;

//! Control plane: the kernel mirror over netlink, the control socket, and the runtime that ties
//! them to the workers.

pub mod report;
pub mod server;

//! The `xfwd` command.
fn main() {}

//! xfwd-bench.
fn main() {}

//! xfwd's XDP programs.

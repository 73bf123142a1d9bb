//! Per-worker counters.

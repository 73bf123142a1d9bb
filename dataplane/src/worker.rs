//! The per-core run-to-completion loop.

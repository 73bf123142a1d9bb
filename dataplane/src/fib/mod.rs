//! Routing tables.

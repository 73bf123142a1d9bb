//! Pipeline stages, named after the Linux path a packet takes.

pub mod eth_input;
pub mod ip4_input;

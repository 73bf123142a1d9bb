//! Pipeline stages, named after the Linux path a packet takes.

//! Control plane: kernel mirror, control socket, runtime.

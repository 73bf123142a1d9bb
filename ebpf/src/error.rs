//! Errors an operator can act on, translated from aya's and the kernel's.

use std::io;

use aya::EbpfError;
use aya::maps::MapError;
use aya::programs::ProgramError;
use aya::programs::xdp::XdpError;

/// Result of this crate's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, worded for the operator who has to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The kernel refused a BPF operation for lack of privileges.
    #[error(
        "cannot {what}: permission denied (need CAP_BPF and CAP_NET_ADMIN, or root; kernels before 5.11 also need RLIMIT_MEMLOCK raised)"
    )]
    PermissionDenied {
        /// What was attempted, e.g. "load XDP program xfwd_steer".
        what: String,
    },

    /// The verifier rejected a program (kernel too old, or a bug in the program).
    #[error(
        "cannot load XDP program {program}: the kernel refused it ({source})\nverifier log:\n{log}"
    )]
    Verifier {
        /// Program name.
        program: &'static str,
        /// The verifier's log.
        log: String,
        /// The errno of BPF_PROG_LOAD.
        #[source]
        source: io::Error,
    },

    /// The embedded object could not be parsed, relocated or its maps created.
    #[error("cannot load BPF object {object}: {source}")]
    Object {
        /// Object name, e.g. "steer.bpf.o".
        object: &'static str,
        /// aya's error.
        #[source]
        source: Box<EbpfError>,
    },

    /// A BPF or network system call failed for a reason other than privileges.
    #[error("cannot {what}: {source}")]
    Kernel {
        /// What was attempted.
        what: String,
        /// The errno.
        #[source]
        source: io::Error,
    },

    /// No interface with this index in the calling thread's network namespace.
    #[error("no network interface with index {ifindex} in this network namespace")]
    NoSuchInterface {
        /// The interface index asked for.
        ifindex: u32,
    },

    /// Another XDP program (or bpf_link) already sits on the interface.
    #[error(
        "cannot attach XDP to {ifname}: another XDP program is already attached (inspect it with `ip link show dev {ifname}` or `bpftool net`; if it is stale, remove it with `ip link set dev {ifname} xdp off`)"
    )]
    XdpBusy {
        /// Interface name.
        ifname: String,
    },

    /// The kernel or driver refused the attachment.
    #[error("cannot attach XDP to {ifname} in {mode} mode: {source}{hint}")]
    Attach {
        /// Interface name.
        ifname: String,
        /// "native" or "generic".
        mode: &'static str,
        /// What native mode said first, when `Auto` fell back to generic and that failed too.
        hint: String,
        /// The errno.
        #[source]
        source: io::Error,
    },

    /// This instance already attached the interface.
    #[error("interface {ifname} is already attached by this xfwd instance")]
    AlreadyAttached {
        /// Interface name.
        ifname: String,
    },

    /// Detach or lookup of an interface this instance did not attach.
    #[error("interface with index {ifindex} is not attached by this xfwd instance")]
    NotAttached {
        /// The interface index.
        ifindex: u32,
    },

    /// Another interface holds the slot.
    #[error("interface slot {slot} is already used by the interface with index {ifindex}")]
    SlotInUse {
        /// The slot asked for.
        slot: u32,
        /// The interface holding it.
        ifindex: u32,
    },

    /// The local-address map cannot take the requested set.
    #[error(
        "cannot install {wanted} local addresses: the XDP local-address map holds at most {max} (addresses plus subnet broadcasts)"
    )]
    LocalAddrsFull {
        /// Size of the requested set.
        wanted: usize,
        /// Capacity.
        max: usize,
    },

    /// An argument outside its documented range.
    #[error("invalid {what}: {why}")]
    InvalidArgument {
        /// The argument.
        what: &'static str,
        /// Why it is refused.
        why: String,
    },
}

fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES))
}

/// `Kernel`, or `PermissionDenied` when the errno says so.
pub(crate) fn kernel(what: impl Into<String>, source: io::Error) -> Error {
    let what = what.into();
    if is_permission(&source) {
        Error::PermissionDenied { what }
    } else {
        Error::Kernel { what, source }
    }
}

/// The errno inside an aya program error (syscall, netlink or plain I/O).
pub(crate) fn program_io_error(e: ProgramError) -> io::Error {
    match e {
        ProgramError::SyscallError(s) => s.io_error,
        ProgramError::IOError(e) => e,
        ProgramError::LoadError { io_error, .. } => io_error,
        ProgramError::XdpError(XdpError::NetlinkError(n)) => match n.raw_os_error() {
            Some(errno) => io::Error::from_raw_os_error(errno),
            None => io::Error::other(n.to_string()),
        },
        ProgramError::NetlinkError(n) => match n.raw_os_error() {
            Some(errno) => io::Error::from_raw_os_error(errno),
            None => io::Error::other(n.to_string()),
        },
        ProgramError::MapError(m) => map_io_error(m),
        other => io::Error::other(other.to_string()),
    }
}

/// The errno inside an aya map error.
pub(crate) fn map_io_error(e: MapError) -> io::Error {
    match e {
        MapError::SyscallError(s) => s.io_error,
        MapError::IoError(e) => e,
        MapError::CreateError { io_error, .. } => io_error,
        other => io::Error::other(other.to_string()),
    }
}

/// An error of `Ebpf::load` on an embedded object.
pub(crate) fn object(object: &'static str, e: EbpfError) -> Error {
    match e {
        EbpfError::MapError(MapError::CreateError { name, io_error }) => kernel(
            format!("load the XDP programs of {object} (creating BPF map {name})"),
            io_error,
        ),
        EbpfError::ProgramError(p) => kernel(format!("prepare {object}"), program_io_error(p)),
        other => Error::Object {
            object,
            source: Box::new(other),
        },
    }
}

/// An error of `Xdp::load`.
pub(crate) fn program_load(program: &'static str, e: ProgramError) -> Error {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } if !is_permission(&io_error) => Error::Verifier {
            program,
            log: verifier_log.to_string(),
            source: io_error,
        },
        other => kernel(
            format!("load XDP program {program}"),
            program_io_error(other),
        ),
    }
}

/// An error of a map operation.
pub(crate) fn map(what: impl Into<String>, e: MapError) -> Error {
    kernel(what, map_io_error(e))
}

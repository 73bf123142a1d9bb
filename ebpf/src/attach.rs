//! Attaching an XDP program to an interface: mode choice, fallback and the errors an
//! operator sees.
//!
//! aya attaches with a bpf_link (`BPF_LINK_CREATE`, kernel >= 5.9) and falls back to the
//! netlink `IFLA_XDP` attribute when the kernel lacks XDP links. A bpf_link lives as long as
//! its file descriptor: when xfwd exits or is killed, the kernel detaches the program, and
//! traffic goes back to the kernel's own path. A netlink attachment (kernel < 5.9) outlives
//! the process; there the steering program's `XDP_PASS` fallback still keeps traffic flowing
//! once the AF_XDP sockets are gone.
//!
//! Detaching closes the link's fd and the kernel detaches at once, unless another process
//! still holds a copy of that fd: a child between `fork` and `exec` does (the fd is
//! close-on-exec), so detachment can lag by the time a concurrent spawn takes.
//!
//! Interface indexes are resolved in the network namespace of the calling thread.

use std::ffi::CStr;
use std::fmt;
use std::io;

use aya::programs::Xdp;
use aya::programs::xdp::{XdpLinkId, XdpMode};

use crate::error::{self, Error, Result};

/// How to attach an XDP program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AttachMode {
    /// Native (driver) mode if the driver supports it, else generic mode.
    #[default]
    Auto,
    /// Native (driver) mode only (`XDP_FLAGS_DRV_MODE`): the program runs in the driver's
    /// receive path, before any skb exists.
    Native,
    /// Generic mode only (`XDP_FLAGS_SKB_MODE`): runs after the skb is built, on any
    /// interface; slower, and AF_XDP works in copy mode only.
    Generic,
}

/// The mode an attachment ended up in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttachedMode {
    /// Native (driver) mode.
    Native,
    /// Generic (skb) mode.
    Generic,
}

impl AttachedMode {
    /// "native" or "generic", as `ip link` calls them ("xdpdrv" / "xdpgeneric").
    pub fn as_str(self) -> &'static str {
        match self {
            AttachedMode::Native => "native",
            AttachedMode::Generic => "generic",
        }
    }
}

impl fmt::Display for AttachedMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One interface's attachment.
#[derive(Debug)]
pub struct Attachment {
    /// Interface name when it was attached.
    pub ifname: String,
    /// The mode in use.
    pub mode: AttachedMode,
    /// With [`AttachMode::Auto`], why native mode was refused before generic mode was used.
    pub native_refused: Option<io::Error>,
    pub(crate) link: XdpLinkId,
}

/// The name of `ifindex` in the calling thread's network namespace.
pub(crate) fn ifname(ifindex: u32) -> Result<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    #[expect(
        unsafe_code,
        reason = "if_indextoname is the libc interface for this lookup"
    )]
    // SAFETY: `buf` holds IF_NAMESIZE bytes as if_indextoname(3) requires; it writes a
    // NUL-terminated name there or returns NULL.
    let found = unsafe { !libc::if_indextoname(ifindex, buf.as_mut_ptr()).is_null() };
    if !found || ifindex == 0 {
        return Err(Error::NoSuchInterface { ifindex });
    }
    #[expect(unsafe_code, reason = "reading the name if_indextoname wrote")]
    // SAFETY: if_indextoname succeeded, so `buf` holds a NUL-terminated string.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Ok(name.to_string_lossy().into_owned())
}

fn is_busy(e: &io::Error) -> bool {
    // EBUSY: a program or link is already attached in this mode; EEXIST: a program sits
    // in the other mode (native and generic cannot be active together).
    matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EEXIST))
}

fn try_attach(
    program: &mut Xdp,
    ifindex: u32,
    mode: XdpMode,
) -> std::result::Result<XdpLinkId, io::Error> {
    program
        .attach_to_if_index(ifindex, mode)
        .map_err(error::program_io_error)
}

fn refused(ifname: &str, mode: &'static str, source: io::Error, hint: String) -> Error {
    if is_busy(&source) {
        Error::XdpBusy {
            ifname: ifname.to_owned(),
        }
    } else if matches!(source.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
        Error::PermissionDenied {
            what: format!("attach XDP to {ifname}"),
        }
    } else {
        let hint = if source.raw_os_error() == Some(libc::ERANGE) && hint.is_empty() {
            // drivers/net/veth.c veth_xdp_set: the peer's MTU exceeds what fits a page.
            " (the MTU is too large for single-buffer XDP: veth caps the peer's MTU at 3506; \
             lower the MTU, or load SteerVariant::MultiBuffer)"
                .to_owned()
        } else {
            hint
        };
        Error::Attach {
            ifname: ifname.to_owned(),
            mode,
            hint,
            source,
        }
    }
}

/// Attaches a loaded program to `ifindex`.
pub(crate) fn attach(program: &mut Xdp, ifindex: u32, mode: AttachMode) -> Result<Attachment> {
    let ifname = ifname(ifindex)?;
    let (link, mode, native_refused) = match mode {
        AttachMode::Native => {
            let link = try_attach(program, ifindex, XdpMode::Driver)
                .map_err(|e| refused(&ifname, "native", e, String::new()))?;
            (link, AttachedMode::Native, None)
        }
        AttachMode::Generic => {
            let link = try_attach(program, ifindex, XdpMode::Skb)
                .map_err(|e| refused(&ifname, "generic", e, String::new()))?;
            (link, AttachedMode::Generic, None)
        }
        AttachMode::Auto => match try_attach(program, ifindex, XdpMode::Driver) {
            Ok(link) => (link, AttachedMode::Native, None),
            Err(native) if is_busy(&native) || native.raw_os_error() == Some(libc::EPERM) => {
                return Err(refused(&ifname, "native", native, String::new()));
            }
            Err(native) => {
                let hint = format!(" (native mode was refused first: {native})");
                let link = try_attach(program, ifindex, XdpMode::Skb)
                    .map_err(|e| refused(&ifname, "generic", e, hint))?;
                (link, AttachedMode::Generic, Some(native))
            }
        },
    };
    Ok(Attachment {
        ifname,
        mode,
        native_refused,
        link,
    })
}

/// Detaches one attachment (closing a bpf_link, or clearing the netlink attachment).
pub(crate) fn detach(program: &mut Xdp, attachment: Attachment) -> Result<()> {
    program.detach(attachment.link).map_err(|e| {
        error::kernel(
            format!("detach XDP from {}", attachment.ifname),
            error::program_io_error(e),
        )
    })
}

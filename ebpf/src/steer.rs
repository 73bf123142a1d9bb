//! The steering program's loader: [`Steer`] owns the loaded `xfwd_steer` program, its maps
//! and its attachments. See `src/steer.bpf.c` for the decision order and `src/xfwd_steer.h`
//! for the ABI.
//!
//! Minimum kernel: 5.10 for the single-buffer program (XSKMAP with the `bpf_redirect_map`
//! fallback action, BPF_PROG_TEST_RUN with an `xdp_md` context needs 5.15), 5.9 for
//! attachments that detach themselves when the process dies (bpf_link), 5.18 for
//! [`SteerVariant::MultiBuffer`]. Verified on 6.18.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;

use aya::Ebpf;
use aya::maps::{HashMap, MapData, MapError, PerCpuArray, XskMap};
use aya::programs::Xdp;

use crate::abi::{self, IfaceValue, MAX_IFACES, MAX_LOCAL_ADDRS, MAX_QUEUES};
use crate::attach::{self, AttachMode, AttachedMode, Attachment};
use crate::error::{self, Error, Result};
use crate::{objects, test_run};

/// Why the steering program returned what it returned (`enum xfwd_verdict`); each has a
/// per-CPU counter.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// Redirected into the AF_XDP socket of (slot, rx queue).
    Redirect = 0,
    /// Transit IPv4 but no socket for (slot, rx queue): the kernel got it (xfwd down,
    /// restarting, or the queue not served).
    PassNoSocket = 1,
    /// The ingress interface is not managed by xfwd.
    PassUnmanaged = 2,
    /// Shorter than an Ethernet header.
    PassRunt = 3,
    /// ARP (the kernel resolves neighbours).
    PassArp = 4,
    /// 802.1Q / 802.1ad tagged.
    PassVlan = 5,
    /// Not IPv4 (IPv6, LLDP, ...).
    PassNotIpv4 = 6,
    /// To one of the router's addresses or subnet broadcasts.
    PassLocal = 7,
    /// To 224.0.0.0/4 or 255.255.255.255.
    PassMcastBcast = 8,
    /// Receive queue (or slot) beyond the 64 the `xsks` map covers.
    PassQueueRange = 9,
    /// Longer than the AF_XDP socket's frame.
    PassTooBig = 10,
    /// A multi-buffer frame (multi-buffer variant only).
    PassFrags = 11,
}

impl Verdict {
    /// Number of verdicts (`XFWD_VERDICT_COUNT`).
    pub const COUNT: usize = 12;
    /// Every verdict, in counter order.
    pub const ALL: [Verdict; Verdict::COUNT] = [
        Verdict::Redirect,
        Verdict::PassNoSocket,
        Verdict::PassUnmanaged,
        Verdict::PassRunt,
        Verdict::PassArp,
        Verdict::PassVlan,
        Verdict::PassNotIpv4,
        Verdict::PassLocal,
        Verdict::PassMcastBcast,
        Verdict::PassQueueRange,
        Verdict::PassTooBig,
        Verdict::PassFrags,
    ];

    /// Metric-style name, e.g. `pass_no_socket`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Redirect => "redirect",
            Verdict::PassNoSocket => "pass_no_socket",
            Verdict::PassUnmanaged => "pass_unmanaged",
            Verdict::PassRunt => "pass_runt",
            Verdict::PassArp => "pass_arp",
            Verdict::PassVlan => "pass_vlan",
            Verdict::PassNotIpv4 => "pass_not_ipv4",
            Verdict::PassLocal => "pass_local",
            Verdict::PassMcastBcast => "pass_mcast_bcast",
            Verdict::PassQueueRange => "pass_queue_range",
            Verdict::PassTooBig => "pass_too_big",
            Verdict::PassFrags => "pass_frags",
        }
    }

    /// One line for `xfwd show xdp`.
    pub fn description(self) -> &'static str {
        match self {
            Verdict::Redirect => "redirected to the xfwd worker's AF_XDP socket",
            Verdict::PassNoSocket => {
                "transit IPv4 passed to the kernel: no AF_XDP socket on that queue"
            }
            Verdict::PassUnmanaged => "interface not managed by xfwd",
            Verdict::PassRunt => "frame shorter than an Ethernet header",
            Verdict::PassArp => "ARP, handled by the kernel",
            Verdict::PassVlan => "VLAN-tagged, handled by the kernel",
            Verdict::PassNotIpv4 => "not IPv4, handled by the kernel",
            Verdict::PassLocal => "IPv4 to a local or subnet-broadcast address",
            Verdict::PassMcastBcast => "IPv4 multicast or limited broadcast",
            Verdict::PassQueueRange => "receive queue beyond the 64 xfwd can serve",
            Verdict::PassTooBig => "frame longer than the AF_XDP frame size",
            Verdict::PassFrags => "multi-buffer frame",
        }
    }

    /// Whether the program returned `XDP_PASS` for this verdict.
    pub fn is_pass(self) -> bool {
        self != Verdict::Redirect
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The steering program's counters, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SteerCounters {
    counts: [u64; Verdict::COUNT],
}

impl SteerCounters {
    /// Frames that got `verdict`.
    pub fn get(&self, verdict: Verdict) -> u64 {
        self.counts[verdict as usize]
    }

    /// `(verdict, frames)` in counter order.
    pub fn iter(&self) -> impl Iterator<Item = (Verdict, u64)> + '_ {
        Verdict::ALL.iter().map(|&v| (v, self.get(v)))
    }

    /// Frames seen.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Counters since `earlier` (for rates and for tests).
    pub fn since(&self, earlier: &SteerCounters) -> SteerCounters {
        let mut counts = [0; Verdict::COUNT];
        for (i, c) in counts.iter_mut().enumerate() {
            *c = self.counts[i].wrapping_sub(earlier.counts[i]);
        }
        SteerCounters { counts }
    }
}

/// Which build of the steering program to load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SteerVariant {
    /// `xfwd_steer` (section `xdp`): every frame is a single buffer. Kernel >= 5.10.
    ///
    /// Drivers then cap the MTU so a frame fits a page (veth: the peer's MTU at 3506; many
    /// NIC drivers refuse XDP above ~3.5 KiB), and veth turns off GSO on the peer so that
    /// every frame arrives MTU-sized and steerable. The right choice for MTU <= 3.5 KiB.
    #[default]
    SingleBuffer,
    /// `xfwd_steer_frags` (section `xdp.frags`, `BPF_F_XDP_HAS_FRAGS`): drivers keep jumbo
    /// MTUs with XDP attached; frames that arrive in several buffers go to the kernel
    /// (counted [`Verdict::PassFrags`]), because the AF_XDP sockets take single-buffer
    /// frames: xfwd then forwards frames up to a page and the kernel the longer ones.
    /// Kernel >= 5.18.
    MultiBuffer,
}

impl SteerVariant {
    fn program(self) -> &'static str {
        match self {
            SteerVariant::SingleBuffer => "xfwd_steer",
            SteerVariant::MultiBuffer => "xfwd_steer_frags",
        }
    }
}

/// The loaded steering program, its maps and its attachments.
///
/// Dropping it detaches every interface (traffic falls back to the kernel) and frees the
/// maps. Interface indexes are those of the calling thread's network namespace.
pub struct Steer {
    ebpf: Ebpf,
    program: &'static str,
    xsks: XskMap<MapData>,
    ifaces: HashMap<MapData, u32, IfaceValue>,
    local_addrs: HashMap<MapData, [u8; 4], u8>,
    stats: PerCpuArray<MapData, u64>,
    /// ifindex -> slot, mirror of the `ifaces` map (this is its only writer).
    registered: BTreeMap<u32, u32>,
    attached: BTreeMap<u32, Attachment>,
    /// Mirror of the `local_addrs` map.
    local: BTreeSet<Ipv4Addr>,
    max_frame_len: u32,
}

impl fmt::Debug for Steer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Steer")
            .field("program", &self.program)
            .field("registered", &self.registered)
            .field("attached", &self.attached)
            .field("local", &self.local.len())
            .field("max_frame_len", &self.max_frame_len)
            .finish_non_exhaustive()
    }
}

fn take_map<T: TryFrom<aya::maps::Map, Error = MapError>>(
    ebpf: &mut Ebpf,
    name: &str,
) -> Result<T> {
    let map = ebpf.take_map(name).ok_or_else(|| Error::InvalidArgument {
        what: "embedded steer.bpf.o",
        why: format!("map {name} is missing (build inconsistency)"),
    })?;
    T::try_from(map).map_err(|e| error::map(format!("open map {name} of steer.bpf.o"), e))
}

fn xsks_index(slot: u32, queue: u32) -> Result<u32> {
    if slot >= MAX_IFACES {
        return Err(Error::InvalidArgument {
            what: "interface slot",
            why: format!("{slot} is not below {MAX_IFACES}"),
        });
    }
    if queue >= MAX_QUEUES {
        return Err(Error::InvalidArgument {
            what: "receive queue",
            why: format!("{queue} is not below {MAX_QUEUES}"),
        });
    }
    Ok(slot * MAX_QUEUES + queue)
}

impl Steer {
    /// Loads the single-buffer steering program ([`SteerVariant::SingleBuffer`]) and
    /// creates its maps. Nothing is attached yet.
    ///
    /// # Errors
    ///
    /// [`Error::PermissionDenied`] without CAP_BPF and CAP_NET_ADMIN; [`Error::Verifier`]
    /// when the kernel refuses the program (older than 5.10).
    pub fn load() -> Result<Steer> {
        Steer::load_variant(SteerVariant::SingleBuffer)
    }

    /// Loads the given build of the steering program.
    ///
    /// # Errors
    ///
    /// As [`Steer::load`]; [`SteerVariant::MultiBuffer`] needs kernel >= 5.18.
    pub fn load_variant(variant: SteerVariant) -> Result<Steer> {
        let mut ebpf = objects::load("steer.bpf.o", objects::steer())?;
        let name = variant.program();
        let program: &mut Xdp = ebpf
            .program_mut(name)
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| Error::InvalidArgument {
                what: "embedded steer.bpf.o",
                why: format!("XDP program {name} is missing (build inconsistency)"),
            })?;
        program.load().map_err(|e| error::program_load(name, e))?;
        let xsks = take_map(&mut ebpf, "xsks")?;
        let ifaces = take_map(&mut ebpf, "ifaces")?;
        let local_addrs = take_map(&mut ebpf, "local_addrs")?;
        let stats: PerCpuArray<MapData, u64> = take_map(&mut ebpf, "stats")?;
        if stats.len() as usize != Verdict::COUNT {
            return Err(Error::InvalidArgument {
                what: "embedded steer.bpf.o",
                why: format!(
                    "stats has {} entries, Verdict has {}",
                    stats.len(),
                    Verdict::COUNT
                ),
            });
        }
        Ok(Steer {
            ebpf,
            program: name,
            xsks,
            ifaces,
            local_addrs,
            stats,
            registered: BTreeMap::new(),
            attached: BTreeMap::new(),
            local: BTreeSet::new(),
            max_frame_len: 0,
        })
    }

    /// The loaded program's name (`xfwd_steer` or `xfwd_steer_frags`).
    pub fn program_name(&self) -> &'static str {
        self.program
    }

    fn program_mut(&mut self) -> &mut Xdp {
        let name = self.program;
        match self.ebpf.program_mut(name).map(TryInto::try_into) {
            Some(Ok(program)) => program,
            // `load_variant` checked both: the program exists and is XDP.
            _ => unreachable!("XDP program {name} vanished after load"),
        }
    }

    fn program(&self) -> &Xdp {
        let name = self.program;
        match self.ebpf.program(name).map(TryInto::try_into) {
            Some(Ok(program)) => program,
            _ => unreachable!("XDP program {name} vanished after load"),
        }
    }

    /// Marks `ifindex` as managed with `slot` in the `ifaces` map, without attaching the
    /// program ([`Steer::attach`] does this itself). Useful to [`Steer::test_run`] a frame
    /// "received" on an interface the program is not attached to.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a slot >= 64, [`Error::SlotInUse`] when another
    /// interface holds the slot, [`Error::Kernel`] when the map update fails (64 interfaces
    /// at most).
    pub fn register_iface(&mut self, ifindex: u32, slot: u32) -> Result<()> {
        xsks_index(slot, 0)?;
        if let Some((&other, _)) = self
            .registered
            .iter()
            .find(|&(&i, &s)| s == slot && i != ifindex)
        {
            return Err(Error::SlotInUse {
                slot,
                ifindex: other,
            });
        }
        let value = IfaceValue {
            slot,
            flags: 0,
            max_frame_len: self.max_frame_len,
        };
        self.ifaces.insert(ifindex, value, 0).map_err(|e| {
            error::map(
                format!("register ifindex {ifindex} in the XDP ifaces map"),
                e,
            )
        })?;
        self.registered.insert(ifindex, slot);
        Ok(())
    }

    /// Removes `ifindex` from the `ifaces` map: its frames are passed as unmanaged.
    ///
    /// # Errors
    ///
    /// [`Error::Kernel`] when the map update fails.
    pub fn unregister_iface(&mut self, ifindex: u32) -> Result<()> {
        if self.registered.remove(&ifindex).is_some() {
            match self.ifaces.remove(&ifindex) {
                Ok(()) | Err(MapError::KeyNotFound | MapError::ElementNotFound) => {}
                Err(e) => {
                    return Err(error::map(
                        format!("remove ifindex {ifindex} from the XDP ifaces map"),
                        e,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Attaches the program to `ifindex` and registers it as interface `slot`: its transit
    /// IPv4 frames on rx queue q go to the socket set with `set_socket(slot, q, ..)`.
    ///
    /// Uses a bpf_link (kernel >= 5.9), so the kernel detaches the program when this
    /// process dies; older kernels fall back to a netlink attachment, which survives it.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchInterface`]; [`Error::XdpBusy`] when another XDP program is attached
    /// to the interface (in either mode); [`Error::Attach`] when the driver refuses the
    /// mode; [`Error::AlreadyAttached`], [`Error::SlotInUse`], [`Error::InvalidArgument`]
    /// (slot >= 64); [`Error::PermissionDenied`].
    pub fn attach(&mut self, ifindex: u32, slot: u32, mode: AttachMode) -> Result<AttachedMode> {
        let ifname = attach::ifname(ifindex)?;
        if self.attached.contains_key(&ifindex) {
            return Err(Error::AlreadyAttached { ifname });
        }
        let was_registered = self.registered.get(&ifindex).copied();
        // Register first, so the first frame after attachment is already steered.
        self.register_iface(ifindex, slot)?;
        match attach::attach(self.program_mut(), ifindex, mode) {
            Ok(attachment) => {
                let mode = attachment.mode;
                self.attached.insert(ifindex, attachment);
                Ok(mode)
            }
            Err(e) => {
                let _ = match was_registered {
                    Some(old) => self.register_iface(ifindex, old),
                    None => self.unregister_iface(ifindex),
                };
                Err(e)
            }
        }
    }

    /// Detaches the program from `ifindex` and unregisters it. The `xsks` entries of its
    /// slot are left to their owner ([`Steer::clear_socket`]).
    ///
    /// # Errors
    ///
    /// [`Error::NotAttached`]; [`Error::Kernel`] when the kernel refuses the detach.
    pub fn detach(&mut self, ifindex: u32) -> Result<()> {
        let attachment = self
            .attached
            .remove(&ifindex)
            .ok_or(Error::NotAttached { ifindex })?;
        let detached = attach::detach(self.program_mut(), attachment);
        self.unregister_iface(ifindex)?;
        detached
    }

    /// The attachment of `ifindex`, if this instance attached it.
    pub fn attachment(&self, ifindex: u32) -> Option<&Attachment> {
        self.attached.get(&ifindex)
    }

    /// `(ifindex, attachment)` of every attached interface.
    pub fn attachments(&self) -> impl Iterator<Item = (u32, &Attachment)> + '_ {
        self.attached.iter().map(|(&i, a)| (i, a))
    }

    /// Sets the longest frame (bytes from the Ethernet header) the AF_XDP sockets accept,
    /// i.e. their rx frame size (UMEM chunk size minus headroom minus XDP_PACKET_HEADROOM in
    /// copy mode); longer frames are passed to the kernel ([`Verdict::PassTooBig`]) instead
    /// of being dropped by the socket. 0 (the default) means no limit. Applies to every
    /// registered interface, present and future.
    ///
    /// # Errors
    ///
    /// [`Error::Kernel`] when a map update fails.
    pub fn set_max_frame_len(&mut self, len: u32) -> Result<()> {
        self.max_frame_len = len;
        let registered: Vec<(u32, u32)> = self.registered.iter().map(|(&i, &s)| (i, s)).collect();
        for (ifindex, slot) in registered {
            self.register_iface(ifindex, slot)?;
        }
        Ok(())
    }

    /// Puts the AF_XDP socket `fd` (bound to queue `queue` of the interface in `slot`) into
    /// the `xsks` map: transit frames received on that queue are redirected to it. The
    /// kernel drops (does not pass) frames redirected to a socket bound to another
    /// device or queue, so the binding must match.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for slot or queue >= 64; [`Error::Kernel`] when the
    /// kernel refuses the fd (`EOPNOTSUPP`: not an AF_XDP socket with an rx ring).
    pub fn set_socket(&mut self, slot: u32, queue: u32, fd: BorrowedFd<'_>) -> Result<()> {
        let index = xsks_index(slot, queue)?;
        self.xsks.set(index, fd, 0).map_err(|e| {
            error::map(
                format!("put the AF_XDP socket of slot {slot} queue {queue} into the XDP xsks map"),
                e,
            )
        })
    }

    /// Removes the socket of (slot, queue): that queue's transit frames go to the kernel
    /// ([`Verdict::PassNoSocket`]). Clearing an empty entry is not an error. (The kernel
    /// also clears the entry when the socket is closed.)
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for slot or queue >= 64; [`Error::Kernel`].
    pub fn clear_socket(&mut self, slot: u32, queue: u32) -> Result<()> {
        let index = xsks_index(slot, queue)?;
        match self.xsks.unset(index) {
            Ok(()) | Err(MapError::KeyNotFound | MapError::ElementNotFound) => Ok(()),
            Err(MapError::SyscallError(s)) if s.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Ok(())
            }
            Err(e) => Err(error::map(
                format!("clear slot {slot} queue {queue} in the XDP xsks map"),
                e,
            )),
        }
    }

    /// Makes the `local_addrs` map hold exactly `addrs` (any iterator of `Ipv4Addr` or
    /// `&Ipv4Addr`, e.g. a `&BTreeSet<Ipv4Addr>`): the router's own addresses and its
    /// subnet-directed broadcast addresses, whose frames go to the kernel. Removals are
    /// applied before additions, so a full map can be replaced.
    ///
    /// # Errors
    ///
    /// [`Error::LocalAddrsFull`] beyond 16384 addresses (nothing changed);
    /// [`Error::Kernel`] when a map update fails (the map then holds what
    /// [`Steer::local_addrs`] reports).
    pub fn set_local_addrs<A: Borrow<Ipv4Addr>>(
        &mut self,
        addrs: impl IntoIterator<Item = A>,
    ) -> Result<()> {
        let wanted: BTreeSet<Ipv4Addr> = addrs.into_iter().map(|a| *a.borrow()).collect();
        if wanted.len() > MAX_LOCAL_ADDRS {
            return Err(Error::LocalAddrsFull {
                wanted: wanted.len(),
                max: MAX_LOCAL_ADDRS,
            });
        }
        let stale: Vec<Ipv4Addr> = self.local.difference(&wanted).copied().collect();
        for addr in stale {
            self.remove_local(addr)?;
        }
        let new: Vec<Ipv4Addr> = wanted.difference(&self.local).copied().collect();
        for addr in new {
            self.add_local(addr)?;
        }
        Ok(())
    }

    /// Adds one local address; returns whether it was new.
    ///
    /// # Errors
    ///
    /// [`Error::LocalAddrsFull`] when the map is full; [`Error::Kernel`].
    pub fn add_local(&mut self, addr: Ipv4Addr) -> Result<bool> {
        if self.local.contains(&addr) {
            return Ok(false);
        }
        if self.local.len() >= MAX_LOCAL_ADDRS {
            return Err(Error::LocalAddrsFull {
                wanted: self.local.len() + 1,
                max: MAX_LOCAL_ADDRS,
            });
        }
        self.local_addrs
            .insert(addr.octets(), 1, 0)
            .map_err(|e| error::map(format!("add {addr} to the XDP local_addrs map"), e))?;
        self.local.insert(addr);
        Ok(true)
    }

    /// Removes one local address; returns whether it was there.
    ///
    /// # Errors
    ///
    /// [`Error::Kernel`].
    pub fn remove_local(&mut self, addr: Ipv4Addr) -> Result<bool> {
        if !self.local.contains(&addr) {
            return Ok(false);
        }
        match self.local_addrs.remove(&addr.octets()) {
            Ok(()) | Err(MapError::KeyNotFound | MapError::ElementNotFound) => {}
            Err(e) => {
                return Err(error::map(
                    format!("remove {addr} from the XDP local_addrs map"),
                    e,
                ));
            }
        }
        self.local.remove(&addr);
        Ok(true)
    }

    /// The local addresses installed.
    pub fn local_addrs(&self) -> &BTreeSet<Ipv4Addr> {
        &self.local
    }

    /// The addresses actually in the kernel's `local_addrs` map (reads the map; for checks
    /// and diagnostics).
    ///
    /// # Errors
    ///
    /// [`Error::Kernel`] when the map cannot be read.
    pub fn local_addrs_in_kernel(&self) -> Result<BTreeSet<Ipv4Addr>> {
        self.local_addrs
            .keys()
            .map(|k| {
                k.map(Ipv4Addr::from)
                    .map_err(|e| error::map("read the XDP local_addrs map", e))
            })
            .collect()
    }

    /// The per-verdict counters, summed over CPUs.
    ///
    /// # Errors
    ///
    /// [`Error::Kernel`] when the map cannot be read.
    pub fn counters(&self) -> Result<SteerCounters> {
        let mut counts = [0u64; Verdict::COUNT];
        for (i, count) in counts.iter_mut().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            let per_cpu = self
                .stats
                .get(&index, 0)
                .map_err(|e| error::map("read the XDP stats map", e))?;
            *count = per_cpu.iter().fold(0u64, |sum, c| sum.wrapping_add(*c));
        }
        Ok(SteerCounters { counts })
    }

    /// Runs the program once on `frame` with BPF_PROG_TEST_RUN, as if received on
    /// `ingress_ifindex` rx queue `rx_queue` (which must exist on that interface, in the
    /// calling thread's network namespace), and returns the XDP action
    /// ([`crate::XDP_PASS`], [`crate::XDP_REDIRECT`], ...). Counters move as for a real
    /// frame. Nothing is redirected: the frame is discarded after the run.
    ///
    /// Frames shorter than 14 bytes are run with the kernel's minimum input padded into a
    /// fragment (see `test_run::run_once`). Kernel >= 5.15.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchInterface`]; [`Error::Kernel`] (`EINVAL`: the queue does not exist).
    pub fn test_run(&self, frame: &[u8], ingress_ifindex: u32, rx_queue: u32) -> Result<u32> {
        test_run::run_once(
            self.program(),
            self.program,
            frame,
            ingress_ifindex,
            rx_queue,
        )
    }
}

impl Drop for Steer {
    fn drop(&mut self) {
        let attached: Vec<u32> = self.attached.keys().copied().collect();
        for ifindex in attached {
            // Best effort: dropping the program closes the links anyway.
            let _ = self.detach(ifindex);
        }
    }
}

const _: () = assert!(abi::XSKS_ENTRIES == MAX_IFACES * MAX_QUEUES);

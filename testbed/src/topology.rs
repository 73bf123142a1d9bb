//! The demo topology: two hosts and a router in three network namespaces, linked by veth pairs.
//!
//! ```text
//!  netns h1                 netns router (xfwd runs here)               netns h2
//!  eth0 10.0.1.2/24 ─veth─ p0 10.0.1.1/24    p1 10.0.2.1/24 ─veth─ eth0 10.0.2.2/24
//!  02:00:00:00:01:02       02:00:00:00:01:01 02:00:00:00:02:01      02:00:00:00:02:02
//!  default via 10.0.1.1    198.18.0.0/24, 198.18.1.0/24,            lo 198.18.0.1/24,
//!                          198.19.0.0/16 via 10.0.2.2               198.18.1.1/24, 198.19.0.1/16
//!                                                                   default via 10.0.2.1
//! ```
//!
//! Every name of a namespace starts with the builder's prefix and ends with the process id and a
//! counter, so topologies of parallel tests (or two in one test, e.g. a kernel-forwarding router
//! next to an xfwd one) never collide; interface names are the same in every topology, since each
//! lives in its own namespace. Dropping the [`Topology`] (also while unwinding from a panic)
//! deletes the three namespaces, and the veth pairs with them.
//!
//! ## Checksum offload on veth (measured on Linux 6.18)
//!
//! A veth advertises `tx-checksum-ip-generic`, so a host's own stack hands it UDP and TCP
//! packets as `CHECKSUM_PARTIAL`: the checksum field holds only the pseudo-header sum, to be
//! finished by "hardware" that does not exist. The partial state travels with the skb (across
//! the veth, and through the router's kernel forwarding too), and every stack on the way accepts
//! it; but the bytes themselves carry the unfinished checksum. An XDP program on the peer sees
//! those bytes, and XDP_TX, XDP_REDIRECT and AF_XDP (copy mode, the only mode on veth) pass them
//! on as they are, so after a byte-copying forwarder the final receiver, now getting a plain
//! frame, drops the datagram as corrupt. The testbed's `checksum_offload` test shows this byte for
//! byte (an XDP_TX reflector on `p0` returns the field equal to the pseudo-header sum); a raw
//! socket on h2 behind the kernel-forwarding router sees the same. Hence
//! [`TopologyBuilder::tx_checksum_offload`] defaults to off (`ethtool -K IFACE tx off` on all
//! four ends): every frame on the wire then carries its real checksum, as from a physical NIC.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};

use crate::packet::Ipv4Frame;
use crate::{NetNs, sh};

/// An IPv4 prefix: a network address (host bits clear) and a length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    addr: Ipv4Addr,
    len: u8,
}

impl Prefix {
    /// The prefix `addr/len`.
    ///
    /// # Errors
    ///
    /// When `len` is above 32 or `addr` has bits set beyond `len`.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Prefix> {
        ensure!(len <= 32, "prefix length {len} is above 32");
        let p = Prefix { addr, len };
        ensure!(
            u32::from(addr) & !p.mask() == 0,
            "{addr}/{len} has host bits set (network is {})",
            Ipv4Addr::from(u32::from(addr) & p.mask())
        );
        Ok(p)
    }

    /// The network address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The `n`th address of the prefix (`0` is the network address itself), or `None` when the
    /// prefix has no such address.
    pub fn host(&self, n: u32) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - u32::from(self.len));
        (u64::from(n) < size).then(|| Ipv4Addr::from(u32::from(self.addr) + n))
    }

    /// Whether `a` lies in the prefix.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.addr)
    }

    /// Whether the two prefixes share an address.
    pub fn overlaps(&self, other: &Prefix) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    fn mask(&self) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = anyhow::Error;

    /// Parses `a.b.c.d/len`.
    fn from_str(s: &str) -> Result<Prefix> {
        let (a, l) = s
            .split_once('/')
            .with_context(|| format!("{s:?} is not a.b.c.d/len"))?;
        let addr = a.parse().with_context(|| format!("address in {s:?}"))?;
        let len = l.parse().with_context(|| format!("length in {s:?}"))?;
        Prefix::new(addr, len)
    }
}

/// One of the four veth ends of the topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum End {
    /// Host h1's interface `eth0`.
    H1,
    /// The router's interface `p0`, towards h1.
    P0,
    /// The router's interface `p1`, towards h2.
    P1,
    /// Host h2's interface `eth0`.
    H2,
}

impl End {
    /// All four, from h1 to h2.
    pub const ALL: [End; 4] = [End::H1, End::P0, End::P1, End::H2];

    /// The other end of the same veth pair.
    pub fn peer(self) -> End {
        match self {
            End::H1 => End::P0,
            End::P0 => End::H1,
            End::P1 => End::H2,
            End::H2 => End::P1,
        }
    }

    /// The fixed MAC address of this end, the same in every topology (locally administered
    /// `02:00:00:00:LL:HH`, LL the link 1 or 2, HH 01 on the router and 02 on the host):
    /// h1 `02:00:00:00:01:02`, p0 `02:00:00:00:01:01`, p1 `02:00:00:00:02:01`,
    /// h2 `02:00:00:00:02:02`.
    pub const fn mac(self) -> [u8; 6] {
        match self {
            End::H1 => [0x02, 0, 0, 0, 0x01, 0x02],
            End::P0 => [0x02, 0, 0, 0, 0x01, 0x01],
            End::P1 => [0x02, 0, 0, 0, 0x02, 0x01],
            End::H2 => [0x02, 0, 0, 0, 0x02, 0x02],
        }
    }

    /// The interface name of this end inside its namespace: `eth0`, `p0`, `p1`, `eth0`.
    pub const fn ifname(self) -> &'static str {
        match self {
            End::H1 | End::H2 => "eth0",
            End::P0 => "p0",
            End::P1 => "p1",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One veth end as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iface {
    /// Name inside its namespace.
    pub name: &'static str,
    /// MAC address.
    pub mac: [u8; 6],
    /// IPv4 address.
    pub addr: Ipv4Addr,
    /// The link's subnet, which `addr` lies in.
    pub subnet: Prefix,
}

/// Configures and builds a [`Topology`]; start from [`Topology::builder`].
#[derive(Clone, Debug)]
pub struct TopologyBuilder {
    prefix: String,
    link0: Prefix,
    link1: Prefix,
    behind_h2: Vec<Prefix>,
    mtu: u32,
    queues: u32,
    router_forwarding: bool,
    tx_checksum_offload: bool,
}

impl TopologyBuilder {
    /// The subnet between h1 and the router (default 10.0.1.0/24): the router (`p0`) gets its
    /// first address, h1 its second, and h1 routes everything via the router.
    pub fn link0(mut self, subnet: Prefix) -> Self {
        self.link0 = subnet;
        self
    }

    /// The subnet between the router and h2 (default 10.0.2.0/24): the router (`p1`) gets its
    /// first address, h2 its second, and h2 routes everything via the router.
    pub fn link1(mut self, subnet: Prefix) -> Self {
        self.link1 = subnet;
        self
    }

    /// Prefixes behind h2 (default 198.18.0.0/24, 198.18.1.0/24 and 198.19.0.0/16, from the
    /// RFC 2544 benchmarking range). Each is assigned to h2's loopback with its first address
    /// (e.g. 198.18.0.1/24), which makes every address in it local to h2, and the router routes
    /// it via h2.
    pub fn behind_h2(mut self, prefixes: &[Prefix]) -> Self {
        self.behind_h2 = prefixes.to_vec();
        self
    }

    /// MTU of all four veth ends (default 1500). Note: on veth, attaching an XDP program that
    /// lacks `xdp.frags` support fails above MTU 3506.
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = mtu;
        self
    }

    /// Number of rx and of tx queues of every veth end (`numrxqueues`/`numtxqueues`, default 1).
    pub fn queues(mut self, n: u32) -> Self {
        self.queues = n;
        self
    }

    /// Whether the router's kernel forwards IPv4 (`net.ipv4.ip_forward` and per-interface
    /// `forwarding`; default off, so that only xfwd forwards). Can be changed later with
    /// [`Topology::set_router_forwarding`].
    pub fn router_forwarding(mut self, on: bool) -> Self {
        self.router_forwarding = on;
        self
    }

    /// Whether the veth ends keep transmit checksum offload (default off: `ethtool -K IFACE tx
    /// off` on all four ends). See the module documentation for why it is off.
    pub fn tx_checksum_offload(mut self, on: bool) -> Self {
        self.tx_checksum_offload = on;
        self
    }

    /// Creates the namespaces, veth pairs, addresses, routes and sysctls, and waits until all
    /// four ends are up. IPv6 is disabled in the three namespaces (no ND or MLD chatter on the
    /// links) and reverse-path filtering is off everywhere.
    ///
    /// # Errors
    ///
    /// When the configuration is inconsistent (overlapping or too small subnets, MTU outside
    /// 68..=65535, queues outside 1..=64, prefix empty or not `[a-z0-9]`, up to 8 bytes), or a
    /// command fails (needs root). Anything already created is removed.
    pub fn build(self) -> Result<Topology> {
        self.validate()?;
        let h1 = NetNs::new(&format!("{}-h1", self.prefix))?;
        let router = NetNs::new(&format!("{}-rt", self.prefix))?;
        let h2 = NetNs::new(&format!("{}-h2", self.prefix))?;
        let addr = |subnet: Prefix, n: u32| {
            subnet
                .host(n)
                .ok_or_else(|| anyhow!("{subnet} has no host {n}"))
        };
        let ifaces = [
            (End::H1, self.link0, addr(self.link0, 2)?),
            (End::P0, self.link0, addr(self.link0, 1)?),
            (End::P1, self.link1, addr(self.link1, 1)?),
            (End::H2, self.link1, addr(self.link1, 2)?),
        ]
        .map(|(end, subnet, addr)| Iface {
            name: end.ifname(),
            mac: end.mac(),
            addr,
            subnet,
        });
        let topo = Topology {
            h1,
            router,
            h2,
            ifaces,
            behind_h2: self.behind_h2.clone(),
            mtu: self.mtu,
        };
        topo.setup(&self)
            .with_context(|| format!("building topology {:?}", self.prefix))?;
        Ok(topo)
    }

    fn validate(&self) -> Result<()> {
        ensure!(
            !self.prefix.is_empty()
                && self.prefix.len() <= 8
                && self
                    .prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "topology prefix {:?} must be 1 to 8 of [a-z0-9]",
            self.prefix
        );
        for l in [self.link0, self.link1] {
            ensure!(
                l.prefix_len() <= 30,
                "link subnet {l} needs room for two hosts (length ≤ 30)"
            );
        }
        ensure!(
            !self.link0.overlaps(&self.link1),
            "link subnets {} and {} overlap",
            self.link0,
            self.link1
        );
        for (i, p) in self.behind_h2.iter().enumerate() {
            ensure!(
                p.prefix_len() <= 31 && p.prefix_len() >= 8,
                "prefix behind h2 {p} must have a length in 8..=31"
            );
            for l in [self.link0, self.link1] {
                ensure!(!p.overlaps(&l), "prefix behind h2 {p} overlaps link {l}");
            }
            for q in &self.behind_h2[i + 1..] {
                ensure!(!p.overlaps(q), "prefixes behind h2 {p} and {q} overlap");
            }
        }
        ensure!(
            (68..=65535).contains(&self.mtu),
            "MTU {} outside 68..=65535",
            self.mtu
        );
        ensure!(
            (1..=64).contains(&self.queues),
            "queue count {} outside 1..=64",
            self.queues
        );
        Ok(())
    }
}

/// Two hosts and a router in three network namespaces, linked by two veth pairs (see the module
/// documentation for the picture and the defaults). Removed on drop.
#[derive(Debug)]
pub struct Topology {
    h1: NetNs,
    router: NetNs,
    h2: NetNs,
    ifaces: [Iface; 4],
    behind_h2: Vec<Prefix>,
    mtu: u32,
}

impl Topology {
    /// A builder with the defaults; `prefix` (1 to 8 of `[a-z0-9]`) starts the namespace names,
    /// e.g. `"kern"` gives `kern-h1-PID-N`, `kern-rt-PID-N` and `kern-h2-PID-N`.
    pub fn builder(prefix: &str) -> TopologyBuilder {
        TopologyBuilder {
            prefix: prefix.to_owned(),
            link0: Prefix {
                addr: Ipv4Addr::new(10, 0, 1, 0),
                len: 24,
            },
            link1: Prefix {
                addr: Ipv4Addr::new(10, 0, 2, 0),
                len: 24,
            },
            behind_h2: vec![
                Prefix {
                    addr: Ipv4Addr::new(198, 18, 0, 0),
                    len: 24,
                },
                Prefix {
                    addr: Ipv4Addr::new(198, 18, 1, 0),
                    len: 24,
                },
                Prefix {
                    addr: Ipv4Addr::new(198, 19, 0, 0),
                    len: 16,
                },
            ],
            mtu: 1500,
            queues: 1,
            router_forwarding: false,
            tx_checksum_offload: false,
        }
    }

    /// Host h1's namespace.
    pub fn h1(&self) -> &NetNs {
        &self.h1
    }

    /// The router's namespace (where xfwd runs).
    pub fn router(&self) -> &NetNs {
        &self.router
    }

    /// A permanent neighbour entry `ip → mac` on the router's interface `dev`, so no ARP runs
    /// for it (`ip neigh replace IP lladdr MAC dev DEV nud permanent`).
    pub fn router_permanent_neigh(&self, dev: &str, ip: Ipv4Addr, mac: [u8; 6]) -> Result<()> {
        let (ip, mac) = (ip.to_string(), fmt_mac(mac));
        self.router.ip(&[
            "neigh",
            "replace",
            &ip,
            "lladdr",
            &mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ])?;
        Ok(())
    }

    /// Host h2's namespace.
    pub fn h2(&self) -> &NetNs {
        &self.h2
    }

    /// The namespace holding veth end `end`.
    pub fn ns(&self, end: End) -> &NetNs {
        match end {
            End::H1 => &self.h1,
            End::P0 | End::P1 => &self.router,
            End::H2 => &self.h2,
        }
    }

    /// Veth end `end`: name, MAC, address, subnet.
    pub fn iface(&self, end: End) -> &Iface {
        &self.ifaces[end.index()]
    }

    /// The prefixes routed behind h2.
    pub fn behind_h2(&self) -> &[Prefix] {
        &self.behind_h2
    }

    /// The MTU of every veth end.
    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    /// Frame headers for a packet that `end` sends to `dst` over its link: source MAC and
    /// address of `end`, destination MAC of its peer (for h1, the router's `p0`), TTL 64.
    pub fn frame_from(&self, end: End, dst: Ipv4Addr) -> Ipv4Frame {
        let me = self.iface(end);
        Ipv4Frame::new(me.mac, self.iface(end.peer()).mac, me.addr, dst)
    }

    /// Turns IPv4 forwarding in the router's kernel on or off.
    ///
    /// # Errors
    ///
    /// When a sysctl cannot be written.
    pub fn set_router_forwarding(&self, on: bool) -> Result<()> {
        let v = if on { "1" } else { "0" };
        let ns = &self.router;
        ns.sysctl("net.ipv4.ip_forward", v)?;
        for key in ["all", "default", End::P0.ifname(), End::P1.ifname()] {
            ns.sysctl(&format!("net.ipv4.conf.{key}.forwarding"), v)?;
        }
        Ok(())
    }

    /// Has both hosts ping their gateway once, so that the hosts and the router hold each
    /// other's neighbour (ARP) entries before a test starts.
    ///
    /// # Errors
    ///
    /// When a gateway does not answer.
    pub fn resolve_neighbours(&self) -> Result<()> {
        for (host, gw) in [(End::H1, End::P0), (End::H2, End::P1)] {
            let r = crate::ping(self.ns(host), self.iface(gw).addr, 1, None)?;
            ensure!(
                r.all_replied(),
                "gateway {} did not answer {host:?}: {r:?}",
                self.iface(gw).addr
            );
        }
        Ok(())
    }

    /// Attaches the XDP program named `program` from the BPF object file `obj` to veth end `end`
    /// in native (driver) mode, through `ip link set dev IF xdpdrv obj OBJ program PROGRAM`. This
    /// is the hook for, e.g., a sink on h2's end. The program goes when the namespace does.
    ///
    /// Programs loaded from Rust (aya) instead: load and attach them inside
    /// `topology.ns(end).run(|| ..)`, so that the interface index resolves in the right
    /// namespace.
    ///
    /// Note, on veth: XDP_TX and XDP_REDIRECT into a veth deliver only when the receiving peer
    /// has an XDP program attached too (on Linux 6.18, enabling GRO on the peer did not suffice
    /// for XDP_TX in our measurement; frames were counted as `xdp_tx` and lost).
    ///
    /// # Errors
    ///
    /// When `ip` fails (no such object or program, program rejected, MTU above 3506 for a
    /// program without frags support). Maps that the object pins need a bpffs at its pin path.
    pub fn attach_xdp(&self, end: End, obj: &Path, program: &str) -> Result<()> {
        let obj = obj
            .to_str()
            .with_context(|| format!("object path {obj:?} is not UTF-8"))?;
        self.ns(end).ip(&[
            "link",
            "set",
            "dev",
            end.ifname(),
            "xdpdrv",
            "obj",
            obj,
            "program",
            program,
        ])?;
        Ok(())
    }

    /// Detaches whatever XDP program is attached to `end` in native mode.
    ///
    /// # Errors
    ///
    /// When `ip` fails.
    pub fn detach_xdp(&self, end: End) -> Result<()> {
        self.ns(end)
            .ip(&["link", "set", "dev", end.ifname(), "xdpdrv", "off"])?;
        Ok(())
    }

    fn setup(&self, cfg: &TopologyBuilder) -> Result<()> {
        for ns in [&self.h1, &self.router, &self.h2] {
            // Before the veths exist, so that they inherit the defaults.
            if Path::new("/proc/sys/net/ipv6").exists() {
                ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
                ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
            }
            ns.sysctl("net.ipv4.conf.all.rp_filter", "0")?;
            ns.sysctl("net.ipv4.conf.default.rp_filter", "0")?;
        }
        let q = cfg.queues.to_string();
        let mtu = cfg.mtu.to_string();
        // `netns NS numtxqueues Q numrxqueues Q address MAC mtu M` for one end.
        let opts = |end: End| -> Vec<String> {
            let (ns, mac) = (self.ns(end).name(), fmt_mac(end.mac()));
            let opts = [
                "netns",
                ns,
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "address",
                &mac,
            ];
            let mut v: Vec<String> = opts.map(str::to_owned).to_vec();
            v.extend(["mtu".to_owned(), mtu.clone()]);
            v
        };
        for (a, b) in [(End::P0, End::H1), (End::P1, End::H2)] {
            // Both ends are created directly in their namespaces, so the fixed names never meet
            // in the caller's namespace.
            let mut argv: Vec<String> = ["ip", "link", "add", a.ifname()]
                .map(str::to_owned)
                .to_vec();
            argv.extend(opts(a));
            argv.extend(["type", "veth", "peer", "name", b.ifname()].map(str::to_owned));
            argv.extend(opts(b));
            sh(&argv.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        for end in End::ALL {
            let ns = self.ns(end);
            let ifc = self.iface(end);
            ns.sysctl(&format!("net.ipv4.conf.{}.rp_filter", ifc.name), "0")?;
            if !cfg.tx_checksum_offload {
                ns.exec(&["ethtool", "-K", ifc.name, "tx", "off"])
                    .context("ethtool (Debian package ethtool)")?;
            }
            let cidr = format!("{}/{}", ifc.addr, ifc.subnet.prefix_len());
            ns.ip(&["addr", "add", &cidr, "dev", ifc.name])?;
            ns.ip(&["link", "set", "dev", ifc.name, "up"])?;
        }
        self.set_router_forwarding(cfg.router_forwarding)?;
        for (host, gw) in [(End::H1, End::P0), (End::H2, End::P1)] {
            let gw = self.iface(gw).addr.to_string();
            self.ns(host).ip(&["route", "add", "default", "via", &gw])?;
        }
        let h2_addr = self.iface(End::H2).addr.to_string();
        for p in &self.behind_h2 {
            let first = p
                .host(1)
                .with_context(|| format!("{p} has no first host"))?;
            let cidr = format!("{first}/{}", p.prefix_len());
            self.h2.ip(&["addr", "add", &cidr, "dev", "lo"])?;
            self.router
                .ip(&["route", "add", &p.to_string(), "via", &h2_addr])?;
        }
        for end in End::ALL {
            self.wait_up(end, Duration::from_secs(5))?;
        }
        Ok(())
    }

    /// Waits until `end` reports carrier and operational state UP.
    fn wait_up(&self, end: End, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self
                .ns(end)
                .ip(&["-o", "link", "show", "dev", end.ifname()])?;
            let line = String::from_utf8_lossy(&out.stdout).into_owned();
            if line.contains("LOWER_UP") && line.contains("state UP") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("{end:?} not up after {timeout:?}: {}", line.trim());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `02:00:00:00:01:02` form.
fn fmt_mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_basics() {
        let p: Prefix = "198.18.0.0/24".parse().unwrap();
        assert_eq!(p.to_string(), "198.18.0.0/24");
        assert_eq!(p.host(1), Some(Ipv4Addr::new(198, 18, 0, 1)));
        assert_eq!(p.host(255), Some(Ipv4Addr::new(198, 18, 0, 255)));
        assert_eq!(p.host(256), None);
        assert!(p.contains(Ipv4Addr::new(198, 18, 0, 77)));
        assert!(!p.contains(Ipv4Addr::new(198, 18, 1, 0)));
        assert!(p.overlaps(&"198.0.0.0/8".parse().unwrap()));
        assert!(!p.overlaps(&"198.18.1.0/24".parse().unwrap()));
        assert!("10.0.1.1/24".parse::<Prefix>().is_err());
        assert!("10.0.1.0/33".parse::<Prefix>().is_err());
        assert!("10.0.1.0".parse::<Prefix>().is_err());
        let all: Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(255, 255, 255, 255)));
        assert_eq!(all.host(u32::MAX), Some(Ipv4Addr::BROADCAST));
    }

    #[test]
    fn builder_rejects_bad_configs() {
        let b = || Topology::builder("t");
        assert!(b().validate().is_ok());
        assert!(Topology::builder("").validate().is_err());
        assert!(Topology::builder("Has-Caps").validate().is_err());
        assert!(Topology::builder("toolongname").validate().is_err());
        let l0 = "10.0.1.0/24".parse().unwrap();
        assert!(b().link1(l0).validate().is_err(), "links overlap");
        assert!(
            b().link0("10.0.1.0/31".parse().unwrap())
                .validate()
                .is_err()
        );
        assert!(b().behind_h2(&[l0]).validate().is_err(), "prefix on a link");
        let p = "198.18.0.0/24".parse().unwrap();
        assert!(b().behind_h2(&[p, p]).validate().is_err(), "duplicates");
        assert!(b().mtu(67).validate().is_err());
        assert!(b().queues(0).validate().is_err());
        assert!(b().queues(65).validate().is_err());
    }

    #[test]
    fn macs_are_distinct_and_locally_administered_unicast() {
        for a in End::ALL {
            assert_eq!(a.mac()[0] & 0x03, 0x02);
            assert_eq!(a.peer().peer(), a);
            for b in End::ALL {
                assert_eq!(a == b, a.mac() == b.mac());
            }
        }
        assert_eq!(fmt_mac(End::P1.mac()), "02:00:00:00:02:01");
    }
}

//! AF_XDP receive on a real kernel, and the forwarding shape xfwd runs: frames received on one
//! interface leave through another interface's socket on the same UMEM, without a copy in user
//! space.
//!
//! ```text
//!  AF_PACKET ─► xa ══veth══ xb ─XDP redirect─► XskSocket(xb q0) ─┐ same UMEM
//!                                                               recv → rewrite MACs → send
//!  AF_PACKET ◄─ xd ══veth══ xc ◄───────────────── XskSocket(xc q0) ◄┘
//! ```
//!
//! The redirect program is loaded here with raw `bpf(2)` calls (the project's own XDP program
//! lives in `ebpf/`): `return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use xfwd::xsk::{Frame, SocketConfig, Umem, UmemConfig, XskSocket, ifindex};
use xfwd_testbed::{NetNs, require_privileges};

const ETHERTYPE: u16 = 0x88b5;
const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const MAC_C: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];
const MAC_D: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0d];

/// `union bpf_attr`, as bytes; each command fills the fields it uses.
#[repr(C, align(8))]
struct BpfAttr([u8; 128]);

impl BpfAttr {
    fn new() -> Self {
        BpfAttr([0; 128])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
}

fn bpf(cmd: i32, attr: &mut BpfAttr) -> io::Result<i64> {
    // SAFETY: `attr` is a valid 128-byte `bpf_attr` for the command; pointers inside it refer to
    // buffers the caller keeps alive across the call.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.0.as_mut_ptr(), attr.0.len()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

fn owned(fd: i64) -> OwnedFd {
    // SAFETY: `fd` was just returned by bpf(2) and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// An XSKMAP with one entry, a redirect program using it, and the program attached to an
/// interface through a BPF link (detached when the link fd closes).
struct Redirect {
    map: OwnedFd,
    _prog: OwnedFd,
    _link: OwnedFd,
}

impl Redirect {
    fn attach(ifname: &str) -> io::Result<Redirect> {
        const BPF_MAP_CREATE: i32 = 0;
        const BPF_PROG_LOAD: i32 = 5;
        const BPF_LINK_CREATE: i32 = 28;
        const BPF_MAP_TYPE_XSKMAP: u32 = 17;
        const BPF_PROG_TYPE_XDP: u32 = 6;
        const BPF_XDP: u32 = 37;
        let map = owned(bpf(
            BPF_MAP_CREATE,
            BpfAttr::new()
                .u32(0, BPF_MAP_TYPE_XSKMAP)
                .u32(4, 4)
                .u32(8, 4)
                .u32(12, 1),
        )?);
        let insn = |code: u8, dst: u8, src: u8, off: i16, imm: i32| -> [u8; 8] {
            let mut b = [0u8; 8];
            b[0] = code;
            b[1] = (src << 4) | dst;
            b[2..4].copy_from_slice(&off.to_ne_bytes());
            b[4..8].copy_from_slice(&imm.to_ne_bytes());
            b
        };
        let prog: Vec<u8> = [
            insn(0x61, 2, 1, 16, 0),              // r2 = ctx->rx_queue_index
            insn(0x18, 1, 1, 0, map.as_raw_fd()), // r1 = map (ld_imm64, BPF_PSEUDO_MAP_FD)
            insn(0, 0, 0, 0, 0),                  //      (second half of ld_imm64)
            insn(0xb7, 3, 0, 0, 2),               // r3 = XDP_PASS (fallback action)
            insn(0x85, 0, 0, 0, 51),              // call bpf_redirect_map
            insn(0x95, 0, 0, 0, 0),               // exit
        ]
        .concat();
        let license = c"GPL";
        let mut log = vec![0u8; 1 << 16];
        let loaded = bpf(
            BPF_PROG_LOAD,
            BpfAttr::new()
                .u32(0, BPF_PROG_TYPE_XDP)
                .u32(4, (prog.len() / 8) as u32)
                .u64(8, prog.as_ptr() as u64)
                .u64(16, license.as_ptr() as u64)
                .u32(24, 1)
                .u32(28, log.len() as u32)
                .u64(32, log.as_mut_ptr() as u64)
                .u32(68, BPF_XDP),
        );
        let prog = match loaded {
            Ok(fd) => owned(fd),
            Err(e) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                return Err(io::Error::new(
                    e.kind(),
                    format!("BPF_PROG_LOAD: {e}\n{text}"),
                ));
            }
        };
        let link = owned(bpf(
            BPF_LINK_CREATE,
            BpfAttr::new()
                .u32(0, prog.as_raw_fd() as u32)
                .u32(4, ifindex(ifname)?)
                .u32(8, BPF_XDP),
        )?);
        Ok(Redirect {
            map,
            _prog: prog,
            _link: link,
        })
    }

    /// `xsks[queue] = sock`.
    fn insert(&self, queue: u32, sock: &XskSocket) -> io::Result<()> {
        const BPF_MAP_UPDATE_ELEM: i32 = 2;
        let key = queue;
        let value = sock.as_raw_fd() as u32;
        bpf(
            BPF_MAP_UPDATE_ELEM,
            BpfAttr::new()
                .u32(0, self.map.as_raw_fd() as u32)
                .u64(8, &key as *const u32 as u64)
                .u64(16, &value as *const u32 as u64),
        )?;
        Ok(())
    }
}

/// A raw AF_PACKET socket bound to one interface.
struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl PacketSocket {
    fn open(ifname: &str) -> io::Result<PacketSocket> {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call, owned right below.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(proto),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh descriptor, nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let rcvbuf: i32 = 8 << 20;
        // SAFETY: valid pointer to an i32 of the size passed.
        let rc = unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&rcvbuf as *const i32).cast(),
                4,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let ifindex = ifindex(ifname)? as i32;
        let sll = sockaddr_ll(ifindex, proto);
        // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
        let rc = unsafe {
            libc::bind(
                raw,
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketSocket { fd, ifindex })
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        let sll = sockaddr_ll(self.ifindex, (libc::ETH_P_ALL as u16).to_be());
        // SAFETY: `frame` and `sll` are valid for the sizes passed.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Incoming frames of our EtherType, until `n` arrived or `timeout` passed.
    fn collect(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while got.len() < n && Instant::now() < deadline {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
                continue;
            }
            // SAFETY: an all-zero sockaddr_ll is valid.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut from_len = size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: `buf` and `from` are valid and writable for the sizes passed.
            let r = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut from_len,
                )
            };
            if r >= 0 && from.sll_pkttype != libc::PACKET_OUTGOING && ours(&buf[..r as usize]) {
                got.push(buf[..r as usize].to_vec());
            }
        }
        got
    }
}

fn sockaddr_ll(ifindex: i32, proto: u16) -> libc::sockaddr_ll {
    // SAFETY: an all-zero sockaddr_ll is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex;
    sll.sll_halen = 6;
    sll
}

fn ours(frame: &[u8]) -> bool {
    frame.len() >= 18 && frame[12..14] == ETHERTYPE.to_be_bytes() && &frame[14..18] == b"XFWD"
}

fn craft(seq: u32, src: [u8; 6], dst: [u8; 6]) -> Vec<u8> {
    let len = 60 + (seq as usize * 53) % (1514 - 60 + 1);
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    f.extend_from_slice(b"XFWD");
    f.extend_from_slice(&seq.to_be_bytes());
    while f.len() < len {
        f.push((seq as usize * 13 + f.len()) as u8);
    }
    f
}

fn link(ns: &NetNs, a: &str, mac_a: &str, b: &str, mac_b: &str) {
    ns.exec(&[
        "ip", "link", "add", a, "address", mac_a, "type", "veth", "peer", "name", b, "address",
        mac_b,
    ])
    .unwrap();
    ns.exec(&["ip", "link", "set", a, "up"]).unwrap();
    ns.exec(&["ip", "link", "set", b, "up"]).unwrap();
}

/// Frames received by one AF_XDP socket leave, rewritten in place, through another socket on the
/// same UMEM; both the RX bytes and the forwarded bytes are checked exactly, and every frame is
/// accounted for at the end.
#[test]
fn rx_then_forward_through_a_shared_umem() {
    require_privileges!();
    let ns = NetNs::new("xskx").unwrap();
    // No IPv6 on the links: no ND/MLD chatter in the rings while we count frames.
    for k in ["all", "default"] {
        ns.exec(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{k}.disable_ipv6=1"),
        ])
        .unwrap();
    }
    link(&ns, "xa", "02:00:00:00:00:0a", "xb", "02:00:00:00:00:0b");
    link(&ns, "xc", "02:00:00:00:00:0c", "xd", "02:00:00:00:00:0d");

    let (umem, mut free) = Umem::new(UmemConfig {
        frame_count: 1024,
        ..UmemConfig::default()
    })
    .unwrap();
    let total = free.len();
    let cfg = SocketConfig {
        rx_size: 512,
        tx_size: 512,
        fill_size: 512,
        comp_size: 512,
        ..SocketConfig::default()
    };
    let (mut rx_sock, mut tx_sock, redirect, inject, capture) = ns
        .run(|| {
            let rx = XskSocket::bind(&umem, "xb", 0, &cfg).unwrap();
            let tx = XskSocket::bind(&umem, "xc", 0, &cfg).unwrap();
            let redirect = Redirect::attach("xb").unwrap();
            redirect.insert(0, &rx).unwrap();
            (
                rx,
                tx,
                redirect,
                PacketSocket::open("xa").unwrap(),
                PacketSocket::open("xd").unwrap(),
            )
        })
        .unwrap();
    assert!(!rx_sock.zero_copy() && tx_sock.shared_umem());

    assert_eq!(rx_sock.fill(&mut free, 512), 512);
    const N: u32 = 300;
    let sent: Vec<Vec<u8>> = (0..N).map(|s| craft(s, MAC_A, MAC_B)).collect();
    for f in &sent {
        inject.send(f).unwrap();
    }

    let mut batch: Vec<Frame> = Vec::with_capacity(64);
    let mut staged: Vec<Frame> = Vec::with_capacity(1024);
    let mut received = 0usize;
    let mut forwarded = 0usize;
    let mut foreign = 0usize;
    let deadline = Instant::now() + Duration::from_secs(10);
    while forwarded < N as usize {
        assert!(
            Instant::now() < deadline,
            "received {received}, forwarded {forwarded} of {N}"
        );
        rx_sock.complete(&mut free, 64);
        tx_sock.complete(&mut free, 64);
        rx_sock.fill(&mut free, 64);
        if rx_sock.recv(&mut batch, 64) == 0 && staged.is_empty() {
            let _ = rx_sock.poll_rx(10).unwrap();
            continue;
        }
        for mut f in batch.drain(..) {
            if !ours(umem.data(&f)) {
                // Kernel chatter (IPv6 ND/MLD) redirected with ours: recycle the frame.
                foreign += 1;
                free.push(f);
                continue;
            }
            let data = umem.data_mut(&mut f);
            assert_eq!(data, &sent[received][..], "RX frame {received} byte-exact");
            received += 1;
            // ip4_rewrite's job, in place: new L2 header for the next hop.
            data[0..6].copy_from_slice(&MAC_D);
            data[6..12].copy_from_slice(&MAC_C);
            staged.push(f);
        }
        forwarded += tx_sock.send(&mut staged);
        if tx_sock.tx_needs_wakeup() {
            tx_sock.kick_tx().unwrap();
        }
    }
    // Let the last transmissions complete.
    while free.len() + (rx_sock.occupancy()[0] as usize) < total {
        assert!(
            Instant::now() < deadline,
            "frames missing: {} free",
            free.len()
        );
        tx_sock.kick_tx().unwrap();
        tx_sock.complete(&mut free, 64);
    }

    let out = capture.collect(N as usize, Duration::from_secs(5));
    assert_eq!(out.len(), N as usize, "xd saw every forwarded frame");
    for (i, (o, s)) in out.iter().zip(&sent).enumerate() {
        assert_eq!(&o[0..6], &MAC_D, "frame {i} dst");
        assert_eq!(&o[6..12], &MAC_C, "frame {i} src");
        assert_eq!(&o[12..], &s[12..], "frame {i} payload byte-exact");
    }
    let [fill, rx, tx, comp] = rx_sock.occupancy();
    let tx_occ = tx_sock.occupancy();
    assert_eq!(
        free.len() + fill as usize,
        total,
        "every frame is free or waiting in the fill ring"
    );
    assert_eq!((rx, tx, comp), (0, 0, 0));
    assert_eq!(tx_occ, [0, 0, 0, 0]);
    let st = rx_sock.statistics().unwrap();
    eprintln!(
        "RX {received} (+{foreign} kernel chatter) forwarded {forwarded}; rx statistics {st:?}"
    );
    assert_eq!(
        (st.rx_dropped, st.rx_invalid_descs, st.rx_ring_full),
        (0, 0, 0)
    );
    assert_eq!(tx_sock.statistics().unwrap().tx_invalid_descs, 0);
    drop(redirect);
}

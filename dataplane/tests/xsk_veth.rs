//! AF_XDP on a real kernel: sockets on both ends of a veth pair sharing one UMEM.
//!
//! Privileged (root, in a network namespace each test creates and removes). TX is checked
//! byte-exact with an AF_PACKET socket on the peer; RX into AF_XDP needs an XDP redirect program,
//! which `xsk_rx.rs` loads.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use xfwd::xsk::{
    BindMode, Frame, Kick, SocketConfig, Umem, UmemConfig, XskSocket, ifindex, queue_count,
};
use xfwd_testbed::{NetNs, require_privileges};

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
/// IEEE 802 local experimental EtherType: nothing in the kernel handles it.
const ETHERTYPE: u16 = 0x88b5;

/// A veth pair `xa`/`xb` in `ns`, up, with fixed MACs.
fn veth(ns: &NetNs) {
    ns.exec(&[
        "ip",
        "link",
        "add",
        "xa",
        "address",
        "02:00:00:00:00:0a",
        "type",
        "veth",
        "peer",
        "name",
        "xb",
        "address",
        "02:00:00:00:00:0b",
    ])
    .unwrap();
    ns.exec(&["ip", "link", "set", "xa", "up"]).unwrap();
    ns.exec(&["ip", "link", "set", "xb", "up"]).unwrap();
}

fn ring_cfg() -> SocketConfig {
    SocketConfig {
        rx_size: 256,
        tx_size: 256,
        fill_size: 256,
        comp_size: 256,
        ..SocketConfig::default()
    }
}

/// Frame `seq` from `src` to `dst`: Ethernet header, marker, sequence number, pattern; lengths
/// from 60 to 1514 bytes.
fn craft(seq: u32, src: [u8; 6], dst: [u8; 6]) -> Vec<u8> {
    let len = 60 + (seq as usize * 37) % (1514 - 60 + 1);
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    f.extend_from_slice(b"XFWD");
    f.extend_from_slice(&seq.to_be_bytes());
    while f.len() < len {
        f.push((seq as usize * 7 + f.len()) as u8);
    }
    f
}

/// Writes `packets` into frames from `free`, queues them on `sock`'s TX ring, kicks as the
/// socket asks and collects completions until every frame is back. Returns the kicks made.
fn transmit_all(
    sock: &mut XskSocket,
    umem: &Umem,
    free: &mut Vec<Frame>,
    packets: &[Vec<u8>],
) -> u64 {
    let before = free.len();
    let mut pending: Vec<Frame> = Vec::with_capacity(packets.len());
    for p in packets {
        let mut f = free.pop().expect("enough free frames");
        f.set_len(p.len()).unwrap();
        umem.data_mut(&mut f).copy_from_slice(p);
        pending.push(f);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut kicks = 0;
    while free.len() < before {
        sock.send(&mut pending);
        if sock.tx_needs_wakeup() {
            kicks += 1;
            match sock.kick_tx().unwrap() {
                Kick::Done | Kick::Again => {}
                other => panic!("unexpected kick outcome {other:?}"),
            }
        }
        sock.complete(free, 64);
        assert!(
            Instant::now() < deadline,
            "only {} of {} completed",
            free.len() + packets.len() - before,
            packets.len()
        );
    }
    assert!(pending.is_empty());
    kicks
}

/// A raw AF_PACKET socket on one interface, to see what really went out on the wire.
struct PacketSocket(OwnedFd);

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
        // SAFETY: an all-zero sockaddr_ll is valid; fields are set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex(ifname)? as i32;
        // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
        let rc = unsafe {
            libc::bind(
                raw,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketSocket(fd))
    }

    /// Receives incoming frames of our EtherType until `n` arrived or `timeout` passed.
    fn collect(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut pfd = libc::pollfd {
                fd: self.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) } <= 0 {
                continue;
            }
            // SAFETY: an all-zero sockaddr_ll is valid.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut from_len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: `buf` and `from` are valid and writable for the sizes passed.
            let r = unsafe {
                libc::recvfrom(
                    self.0.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut from_len,
                )
            };
            if r < 0 {
                continue;
            }
            let frame = &buf[..r as usize];
            if from.sll_pkttype != libc::PACKET_OUTGOING
                && frame.len() >= 18
                && frame[12..14] == ETHERTYPE.to_be_bytes()
                && &frame[14..18] == b"XFWD"
            {
                got.push(frame.to_vec());
            }
        }
        got
    }
}

/// TX from both ends of a veth pair, through one shared UMEM, arrives byte-exact; every frame
/// comes back on the completion ring; Auto falls back to copy mode on veth and says so.
#[test]
fn tx_from_both_veth_ends_sharing_one_umem_is_byte_exact() {
    require_privileges!();
    let ns = NetNs::new("xskt").unwrap();
    veth(&ns);
    let (umem, mut free) = Umem::new(UmemConfig {
        frame_count: 1024,
        ..UmemConfig::default()
    })
    .unwrap();
    let cfg = ring_cfg();
    let (mut a, mut b, cap_a, cap_b) = ns
        .run(|| {
            let a = XskSocket::bind(&umem, "xa", 0, &cfg).unwrap();
            let b = XskSocket::bind(&umem, "xb", 0, &cfg).unwrap();
            (
                a,
                b,
                PacketSocket::open("xa").unwrap(),
                PacketSocket::open("xb").unwrap(),
            )
        })
        .unwrap();

    eprintln!(
        "xa q0: zero_copy={} refused={:?} need_wakeup={} shared={}",
        a.zero_copy(),
        a.zero_copy_refused(),
        a.need_wakeup(),
        a.shared_umem()
    );
    eprintln!(
        "xb q0: zero_copy={} need_wakeup={} shared={}",
        b.zero_copy(),
        b.need_wakeup(),
        b.shared_umem()
    );
    assert!(!a.zero_copy() && !b.zero_copy(), "veth binds in copy mode");
    assert!(
        a.zero_copy_refused().is_some(),
        "Auto says why zero-copy was refused"
    );
    assert!(!a.shared_umem() && b.shared_umem());
    assert!(
        a.need_wakeup() && b.need_wakeup(),
        "need_wakeup inherited by the shared socket"
    );
    assert_eq!((a.queue(), b.queue()), (0, 0));
    assert_ne!(a.ifindex(), b.ifindex());

    const N: u32 = 200;
    let a_to_b: Vec<Vec<u8>> = (0..N).map(|s| craft(s, MAC_A, MAC_B)).collect();
    let b_to_a: Vec<Vec<u8>> = (1000..1000 + N).map(|s| craft(s, MAC_B, MAC_A)).collect();

    let total = free.len();
    let kicks_a = transmit_all(&mut a, &umem, &mut free, &a_to_b);
    let kicks_b = transmit_all(&mut b, &umem, &mut free, &b_to_a);
    assert_eq!(
        free.len(),
        total,
        "every frame came back on a completion ring"
    );
    eprintln!("kicks: a {kicks_a}, b {kicks_b} for {N} frames each (copy mode kicks every batch)");

    let seen_b = cap_b.collect(N as usize, Duration::from_secs(5));
    let seen_a = cap_a.collect(N as usize, Duration::from_secs(5));
    assert_eq!(
        seen_b.len(),
        N as usize,
        "xb saw every frame xa's AF_XDP socket sent"
    );
    assert_eq!(
        seen_a.len(),
        N as usize,
        "xa saw every frame xb's AF_XDP socket sent"
    );
    assert!(seen_b == a_to_b, "xa → xb frames byte-exact and in order");
    assert!(seen_a == b_to_a, "xb → xa frames byte-exact and in order");

    for s in [&a, &b] {
        let st = s.statistics().unwrap();
        assert_eq!(st.tx_invalid_descs, 0, "{st:?}");
        assert_eq!(st.rx_invalid_descs, 0, "{st:?}");
        eprintln!(
            "statistics ifindex {}: {st:?}; counters {:?}",
            s.ifindex(),
            s.counters()
        );
        let c = s.counters();
        assert_eq!(
            (c.tx_empty_kept, c.foreign_kept, c.comp_bad_addr),
            (0, 0, 0)
        );
    }
}

/// Every setup mistake gets an error that says what is wrong.
#[test]
fn setup_errors_are_clear() {
    require_privileges!();
    let ns = NetNs::new("xske").unwrap();
    veth(&ns);
    ns.exec(&[
        "ip", "link", "add", "xc", "type", "veth", "peer", "name", "xd",
    ])
    .unwrap();
    ns.exec(&["ip", "link", "set", "xc", "up"]).unwrap();
    let (umem, _free) = Umem::new(UmemConfig {
        frame_count: 64,
        ..UmemConfig::default()
    })
    .unwrap();
    ns.run(|| {
        let cfg = ring_cfg();

        let e = XskSocket::bind(&umem, "nosuch0", 0, &cfg).unwrap_err();
        eprintln!("unknown interface: {e}");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("nosuch0"));

        let e = XskSocket::bind(
            &umem,
            "xa",
            0,
            &SocketConfig {
                rx_size: 1000,
                ..cfg
            },
        )
        .unwrap_err();
        eprintln!("bad ring size: {e}");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("rx_size = 1000"));

        assert_eq!(queue_count(ifindex("xa").unwrap()).unwrap(), 1);
        let e = XskSocket::bind(&umem, "xa", 5, &cfg).unwrap_err();
        eprintln!("queue that does not exist: {e}");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("queue 5 does not exist"), "{e}");

        let e = XskSocket::bind(
            &umem,
            "xa",
            0,
            &SocketConfig {
                mode: BindMode::ZeroCopy,
                ..cfg
            },
        )
        .unwrap_err();
        eprintln!("forced zero-copy on veth: {e}");
        assert!(e.to_string().contains("zero-copy"), "{e}");

        // None of the failures above registered the UMEM; this bind does.
        let a = XskSocket::bind(
            &umem,
            "xa",
            0,
            &SocketConfig {
                mode: BindMode::Copy,
                ..cfg
            },
        )
        .unwrap();
        assert!(!a.zero_copy() && a.zero_copy_refused().is_none());

        let e = XskSocket::bind(&umem, "xa", 0, &cfg).unwrap_err();
        eprintln!("same queue twice: {e}");
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);

        let e = XskSocket::bind(
            &umem,
            "xb",
            0,
            &SocketConfig {
                mode: BindMode::ZeroCopy,
                ..cfg
            },
        )
        .unwrap_err();
        eprintln!("mode differs from the UMEM's first socket: {e}");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);

        let e = XskSocket::bind(
            &umem,
            "xb",
            0,
            &SocketConfig {
                need_wakeup: false,
                ..cfg
            },
        )
        .unwrap_err();
        eprintln!("need_wakeup differs: {e}");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);

        let e = XskSocket::bind(&umem, "xb", 7, &cfg).unwrap_err();
        eprintln!("shared bind on a queue that does not exist: {e}");
        assert!(e.to_string().contains("queue 7 does not exist"), "{e}");

        // After all these failures a correct shared bind still works.
        let b = XskSocket::bind(&umem, "xb", 0, &cfg).unwrap();
        assert!(b.shared_umem());

        // A second AF_XDP socket (own UMEM) on an occupied queue.
        let (other, _f) = Umem::new(UmemConfig {
            frame_count: 16,
            ..UmemConfig::default()
        })
        .unwrap();
        let e = XskSocket::bind(&other, "xa", 0, &cfg).unwrap_err();
        eprintln!("queue taken by another UMEM's socket: {e}");
        assert!(
            e.to_string().contains("already has an AF_XDP socket"),
            "{e}"
        );

        // The TX budget option (Linux 6.17+), on another veth whose queue is still free.
        let (third, _f) = Umem::new(UmemConfig {
            frame_count: 16,
            ..UmemConfig::default()
        })
        .unwrap();
        match XskSocket::bind(
            &third,
            "xc",
            0,
            &SocketConfig {
                tx_budget: Some(256),
                ..cfg
            },
        ) {
            Ok(s) => eprintln!(
                "XDP_MAX_TX_SKB_BUDGET = 256 accepted on ifindex {}",
                s.ifindex()
            ),
            Err(e) => {
                eprintln!("tx_budget: {e}");
                assert!(e.to_string().contains("XDP_MAX_TX_SKB_BUDGET"), "{e}");
            }
        }
    })
    .unwrap();
}

/// TX-only rate of 64-byte frames from one socket on veth in copy mode, batch 64. A measurement,
/// not a check: `cargo test --release -p xfwd --test xsk_veth -- --ignored --nocapture tx_rate`.
#[test]
#[ignore = "measurement; run by hand with --ignored --nocapture"]
fn tx_rate_64b_copy_mode() {
    require_privileges!();
    let ns = NetNs::new("xskr").unwrap();
    veth(&ns);
    let budget = std::env::var("XSK_TX_BUDGET")
        .ok()
        .and_then(|v| v.parse().ok());
    let secs: u64 = std::env::var("XSK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let (umem, mut free) = Umem::new(UmemConfig {
        frame_count: 4096,
        ..UmemConfig::default()
    })
    .unwrap();
    let cfg = SocketConfig {
        tx_size: 2048,
        comp_size: 2048,
        tx_budget: budget,
        ..SocketConfig::default()
    };
    let mut a = ns
        .run(|| XskSocket::bind(&umem, "xa", 0, &cfg).unwrap())
        .unwrap();
    let pkt = craft(0, MAC_A, MAC_B);
    // 60 bytes: a 64-byte frame on the wire once the NIC appends the 4-byte FCS.
    assert_eq!(pkt.len(), 60);
    // Pre-write every frame once: the measured loop then only recycles tokens.
    for f in free.iter_mut() {
        f.set_len(pkt.len()).unwrap();
        umem.data_mut(f).copy_from_slice(&pkt);
    }
    let mut batch: Vec<Frame> = Vec::with_capacity(64);
    let mut sent: u64 = 0;
    let mut completed: u64 = 0;
    let mut again: u64 = 0;
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    while Instant::now() < end {
        for _ in 0..64 {
            completed += a.complete(&mut free, 64) as u64;
            while batch.len() < 64 {
                let Some(mut f) = free.pop() else { break };
                // Completed frames come back fresh (empty); the bytes are still in the chunk.
                f.set_len(pkt.len()).unwrap();
                batch.push(f);
            }
            sent += a.send(&mut batch) as u64;
            if a.tx_needs_wakeup() && a.kick_tx().unwrap() != Kick::Done {
                again += 1;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let st = a.statistics().unwrap();
    eprintln!(
        "TX 64 B frames (60 B + FCS), copy mode, batch 64, tx_budget {:?}: {:.3} Mpps \
         ({completed} frames completed, {sent} queued, in {elapsed:.2} s), \
         {} kicks, {again} try-later; {st:?}",
        budget,
        completed as f64 / elapsed / 1e6,
        a.counters().tx_kicks
    );
}

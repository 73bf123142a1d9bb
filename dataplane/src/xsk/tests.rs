//! Frame accounting against a simulated kernel: every chunk is, at every step, in exactly one of
//! free, fill, RX, held by the application, staged for TX, TX, completion.

use proptest::prelude::*;

use super::sim::{self, SimKernel};
use super::*;

const FRAMES: u32 = 64;

/// Application side of the model: the worker's vectors plus the packet sequence numbers.
struct Model {
    umem: Umem,
    rings: XskRings,
    kernel: SimKernel,
    free: Vec<Frame>,
    held: Vec<Frame>,
    staged: Vec<Frame>,
    next_rx_seq: u64,
    next_tx_seq: u64,
    expect_rx_seq: u64,
    forwarded: u64,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Fill(usize),
    Recv(usize),
    Forward(usize),
    Drop(usize),
    Send,
    Complete(usize),
    KernelRx(usize),
    KernelTx(usize),
}

/// Packet the simulated kernel receives: 8-byte sequence number, then its low byte repeated.
fn rx_packet(seq: u64, buf: &mut [u8]) -> usize {
    let len = 60 + (seq % 97) as usize;
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    buf[8..len].fill(seq as u8);
    len
}

fn small_rings() -> SocketConfig {
    SocketConfig {
        rx_size: 16,
        tx_size: 16,
        fill_size: 32,
        comp_size: 16,
        ..Default::default()
    }
}

impl Model {
    fn new(start: u32) -> Model {
        let cfg = UmemConfig {
            frame_size: 2048,
            frame_count: FRAMES,
            headroom: 0,
            huge_pages: false,
        };
        let (umem, free) = Umem::new(cfg).unwrap();
        let (rings, kernel) = sim::pair_at(&umem, &small_rings(), start).unwrap();
        let cap = FRAMES as usize;
        Model {
            umem,
            rings,
            kernel,
            free,
            held: Vec::with_capacity(cap),
            staged: Vec::with_capacity(cap),
            next_rx_seq: 0,
            next_tx_seq: 0,
            expect_rx_seq: 0,
            forwarded: 0,
        }
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Fill(n) => {
                let before = self.free.len();
                let k = self.rings.fill(&mut self.free, n);
                assert_eq!(self.free.len(), before - k);
            }
            Op::Recv(n) => {
                let before = self.held.len();
                let k = self.rings.recv(&mut self.held, n);
                assert_eq!(
                    self.held.len(),
                    before + k,
                    "every RX descriptor became a frame"
                );
                for f in &self.held[before..] {
                    let data = self.umem.data(f);
                    let seq = u64::from_le_bytes(data[..8].try_into().unwrap());
                    assert_eq!(seq, self.expect_rx_seq, "RX in order");
                    assert_eq!(data.len(), 60 + (seq % 97) as usize);
                    assert!(data[8..].iter().all(|&b| b == seq as u8), "RX bytes intact");
                    self.expect_rx_seq += 1;
                }
            }
            Op::Forward(n) => {
                // Rewrite in place as a forwarder would: prepend a 4-byte tag, then stage for TX.
                let n = n.min(self.held.len());
                for mut f in self.held.drain(..n) {
                    f.push_head(4).unwrap();
                    let tag = (self.forwarded as u32).to_be_bytes();
                    self.umem.data_mut(&mut f)[..4].copy_from_slice(&tag);
                    self.forwarded += 1;
                    self.staged.push(f);
                }
            }
            Op::Drop(n) => {
                let n = n.min(self.held.len());
                self.free.extend(self.held.drain(..n));
            }
            Op::Send => {
                let before = self.staged.len();
                let k = self.rings.send(&mut self.staged);
                assert_eq!(self.staged.len(), before - k);
            }
            Op::Complete(n) => {
                let before = self.free.len();
                let k = self.rings.complete(&mut self.free, n);
                assert_eq!(self.free.len(), before + k);
                for f in &self.free[before..] {
                    assert!(
                        f.is_empty() && f.headroom() == 256,
                        "completed frames are fresh"
                    );
                }
            }
            Op::KernelRx(n) => {
                let seq = &mut self.next_rx_seq;
                self.kernel.receive(n, |_, buf| {
                    let len = rx_packet(*seq, buf);
                    *seq += 1;
                    len
                });
            }
            Op::KernelTx(n) => {
                let seq = &mut self.next_tx_seq;
                self.kernel.transmit(n, |bytes| {
                    assert_eq!(&bytes[..4], &(*seq as u32).to_be_bytes(), "TX in order");
                    let rx_seq = u64::from_le_bytes(bytes[4..12].try_into().unwrap());
                    assert_eq!(bytes.len(), 4 + 60 + (rx_seq % 97) as usize);
                    *seq += 1;
                });
            }
        }
        self.check();
    }

    /// Every chunk is in exactly one place, and nothing went wrong on either side.
    fn check(&self) {
        let shift = 11;
        let mut chunks: Vec<u32> = Vec::with_capacity(FRAMES as usize);
        chunks.extend(self.free.iter().map(Frame::chunk_index));
        chunks.extend(self.held.iter().map(Frame::chunk_index));
        chunks.extend(self.staged.iter().map(Frame::chunk_index));
        chunks.extend(
            self.rings
                .fill
                .published()
                .iter()
                .map(|a| (a >> shift) as u32),
        );
        chunks.extend(
            self.rings
                .rx
                .published()
                .iter()
                .map(|d| (d.addr >> shift) as u32),
        );
        chunks.extend(
            self.rings
                .tx
                .published()
                .iter()
                .map(|d| (d.addr >> shift) as u32),
        );
        chunks.extend(
            self.rings
                .comp
                .published()
                .iter()
                .map(|a| (a >> shift) as u32),
        );
        chunks.sort_unstable();
        assert_eq!(
            chunks,
            (0..FRAMES).collect::<Vec<_>>(),
            "each chunk in exactly one place"
        );

        let [fill, rx, tx, comp] = self.rings.occupancy();
        let total = self.free.len() + self.held.len() + self.staged.len();
        assert_eq!(total + (fill + rx + tx + comp) as usize, FRAMES as usize);
        assert_eq!(
            self.rings.counters(),
            XskCounters::default(),
            "no bad descriptors"
        );
        assert_eq!(self.kernel.stats().tx_invalid_descs, 0);
        assert_eq!(self.kernel.stats().fill_invalid, 0);
    }

    /// Lets both sides run until every frame is back in the free list.
    fn drain(&mut self) {
        for _ in 0..1000 {
            self.step(Op::Forward(usize::MAX));
            self.step(Op::Send);
            self.step(Op::KernelTx(usize::MAX));
            self.step(Op::Complete(usize::MAX));
            self.step(Op::Recv(usize::MAX));
            // Frames left in the fill ring need the kernel to receive into them.
            self.step(Op::KernelRx(usize::MAX));
            if self.free.len() == FRAMES as usize {
                return;
            }
        }
        panic!("frames did not all come back: {} free", self.free.len());
    }
}

fn op() -> impl Strategy<Value = Op> {
    let n = 0usize..40;
    prop_oneof![
        n.clone().prop_map(Op::Fill),
        n.clone().prop_map(Op::Recv),
        n.clone().prop_map(Op::Forward),
        (0usize..4).prop_map(Op::Drop),
        Just(Op::Send),
        n.clone().prop_map(Op::Complete),
        n.clone().prop_map(Op::KernelRx),
        n.prop_map(Op::KernelTx),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn frames_are_conserved(
        start in prop_oneof![Just(0u32), (u32::MAX - 64)..=u32::MAX],
        ops in proptest::collection::vec(op(), 0..400),
    ) {
        let mut m = Model::new(start);
        for op in ops {
            m.step(op);
        }
        m.drain();
    }
}

/// Many batches with a lagging kernel (it moves small, irregular amounts), deterministic.
#[test]
fn frames_are_conserved_over_many_batches() {
    let mut m = Model::new(u32::MAX - 1000);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n) as usize
    };
    for _ in 0..20_000 {
        // The worker's loop, as the pipeline will run it.
        m.step(Op::Complete(64));
        m.step(Op::Fill(64));
        m.step(Op::Recv(32));
        m.step(Op::Forward(rand(33)));
        m.step(Op::Drop(rand(2)));
        m.step(Op::Send);
        // The kernel, lagging behind by random amounts.
        m.step(Op::KernelRx(rand(20)));
        m.step(Op::KernelTx(rand(20)));
    }
    assert!(m.forwarded > 100_000, "the loop forwarded {}", m.forwarded);
    m.drain();
}

#[test]
fn send_keeps_empty_and_foreign_frames_in_order() {
    let (umem, mut free) = Umem::new(UmemConfig {
        frame_count: 8,
        ..UmemConfig::default()
    })
    .unwrap();
    let (_other, mut foreign) = Umem::new(UmemConfig {
        frame_count: 2,
        ..UmemConfig::default()
    })
    .unwrap();
    let (mut rings, mut kernel) = sim::pair(&umem, &small_rings()).unwrap();
    let mut frames = Vec::with_capacity(8);
    for i in 0..4 {
        let mut f = free.pop().unwrap();
        f.set_len(10 + i).unwrap();
        frames.push(f);
    }
    let empty = free.pop().unwrap();
    let empty_chunk = empty.chunk_index();
    frames.insert(1, empty);
    frames.insert(3, foreign.pop().unwrap());
    assert_eq!(rings.send(&mut frames), 4);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].chunk_index(), empty_chunk);
    assert!(!umem.owns(&frames[1]));
    let c = rings.counters();
    assert_eq!((c.tx_empty_kept, c.foreign_kept), (1, 1));
    let mut lens = Vec::new();
    kernel.transmit(16, |b| lens.push(b.len()));
    assert_eq!(lens, [10, 11, 12, 13], "queued in order");
}

#[test]
fn send_stops_at_a_full_ring_and_keeps_the_rest() {
    let (umem, mut free) = Umem::new(UmemConfig {
        frame_count: 40,
        ..UmemConfig::default()
    })
    .unwrap();
    let (mut rings, _kernel) = sim::pair(&umem, &small_rings()).unwrap();
    let mut frames: Vec<Frame> = free
        .drain(..)
        .map(|mut f| {
            f.set_len(64).unwrap();
            f
        })
        .collect();
    let first_kept = frames[16].chunk_index();
    assert_eq!(rings.send(&mut frames), 16, "TX ring of 16");
    assert_eq!(frames.len(), 24);
    assert_eq!(
        frames[0].chunk_index(),
        first_kept,
        "the rest stays, in order"
    );
    assert_eq!(rings.send(&mut frames), 0);
}

#[test]
fn fill_keeps_foreign_frames() {
    let (umem, mut free) = Umem::new(UmemConfig {
        frame_count: 8,
        ..UmemConfig::default()
    })
    .unwrap();
    let (_other, mut foreign) = Umem::new(UmemConfig {
        frame_count: 2,
        ..UmemConfig::default()
    })
    .unwrap();
    let (mut rings, _kernel) = sim::pair(&umem, &small_rings()).unwrap();
    free.insert(6, foreign.pop().unwrap());
    free.push(foreign.pop().unwrap());
    assert_eq!(rings.fill(&mut free, 100), 8);
    assert_eq!(free.len(), 2);
    assert!(free.iter().all(|f| !umem.owns(f)));
    assert_eq!(rings.counters().foreign_kept, 2);
}

#[test]
fn consumers_never_grow_the_callers_vec() {
    let (umem, mut free) = Umem::new(UmemConfig {
        frame_count: 16,
        ..UmemConfig::default()
    })
    .unwrap();
    let (mut rings, mut kernel) = sim::pair(&umem, &small_rings()).unwrap();
    assert_eq!(rings.fill(&mut free, 16), 16);
    assert_eq!(kernel.receive(16, |_, _| 60), 16);
    let mut out = Vec::with_capacity(5);
    assert_eq!(rings.recv(&mut out, 64), 5, "limited by spare capacity");
    assert_eq!((out.len(), out.capacity()), (5, 5));
    assert_eq!(rings.recv(&mut out, 64), 0);
    out.clear();
    assert_eq!(rings.recv(&mut out, 3), 3, "limited by max");
}

#[test]
fn need_wakeup_follows_the_kernel_flags() {
    let (umem, _free) = Umem::new(UmemConfig {
        frame_count: 4,
        ..UmemConfig::default()
    })
    .unwrap();
    let (rings, kernel) = sim::pair(&umem, &small_rings()).unwrap();
    assert!(!rings.tx_needs_wakeup() && !rings.fill_needs_wakeup());
    kernel.set_tx_need_wakeup(true);
    assert!(rings.tx_needs_wakeup() && !rings.fill_needs_wakeup());
    kernel.set_fill_need_wakeup(true);
    kernel.set_tx_need_wakeup(false);
    assert!(!rings.tx_needs_wakeup() && rings.fill_needs_wakeup());
}

#[test]
fn rings_and_tokens_cross_threads() {
    // The worker owns the user side, another thread plays the kernel; tokens never leave the
    // worker, bytes cross through the UMEM.
    const N: u64 = 50_000;
    let (umem, mut free) = Umem::new(UmemConfig {
        frame_count: 256,
        ..UmemConfig::default()
    })
    .unwrap();
    let (mut rings, mut kernel) = sim::pair(&umem, &SocketConfig::default()).unwrap();
    let peer = std::thread::spawn(move || {
        let (mut rx_seq, mut tx_seq) = (0u64, 0u64);
        while tx_seq < N {
            if rx_seq < N {
                kernel.receive(((N - rx_seq) as usize).min(32), |_, buf| {
                    let l = rx_packet(rx_seq, buf);
                    rx_seq += 1;
                    l
                });
            }
            kernel.transmit(32, |b| {
                assert_eq!(u64::from_le_bytes(b[..8].try_into().unwrap()), tx_seq);
                tx_seq += 1;
            });
        }
    });
    let mut batch = Vec::with_capacity(64);
    let mut done = 0;
    while done < N {
        rings.complete(&mut free, 64);
        rings.fill(&mut free, 64);
        rings.recv(&mut batch, 64);
        for f in &batch {
            assert_eq!(
                umem.data(f)[8],
                u64::from_le_bytes(umem.data(f)[..8].try_into().unwrap()) as u8
            );
        }
        done += rings.send(&mut batch) as u64;
    }
    peer.join().unwrap();
    rings.complete(&mut free, 256);
    let in_fill = rings.occupancy()[0] as usize;
    assert_eq!(
        free.len() + in_fill,
        256,
        "all frames back, or waiting in the fill ring"
    );
}

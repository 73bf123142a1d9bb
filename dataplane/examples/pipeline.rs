//! In-memory pipeline micro-benchmark: `ip4_forward_batch` over batches of 64 valid UDP frames
//! (the common case: no options, TTL 64, fits the MTU, resolved next hop), frames restored from a
//! template before each pass. Prints ns per packet (median of 7 runs).
//!
//! `cargo run --release -p xfwd --example pipeline`

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use xfwd::drop::DropReason;
use xfwd::fib::{
    AdjTable, Fib, IfAddrs, NeighInput, PortAddr, PortInfo, RouteInput, RouteNextHop, RouteTable,
    RouteType,
};
use xfwd::node::{BATCH, ForwardConfig, Ip4Ctx, Outcome, ip4_forward_batch};

fn main() {
    let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    let ports: Arc<[PortInfo]> = Arc::from(vec![
        PortInfo {
            ifindex: 10,
            name: "p0".into(),
            mac: [2, 0, 0, 0, 0, 0x10],
            mtu: 1500,
            up: true,
        },
        PortInfo {
            ifindex: 11,
            name: "p1".into(),
            mac: [2, 0, 0, 0, 0, 0x11],
            mtu: 1500,
            up: true,
        },
    ]);
    let route = |dst: &str, len, gw: Option<&str>, ifindex| RouteInput {
        dst: ip(dst),
        len,
        kind: RouteType::Unicast,
        nexthops: vec![RouteNextHop {
            gateway: gw.map(ip),
            ifindex,
            weight: 1,
        }],
        mtu: 0,
    };
    let routes = RouteTable::build(
        [
            route("10.0.1.0", 24, None, 10),
            route("10.0.2.0", 24, None, 11),
            route("198.18.0.0", 16, Some("10.0.2.2"), 11),
        ],
        [ip("10.0.1.1"), ip("10.0.2.1")],
        &ports,
    )
    .expect("route table");
    let adj = AdjTable::build(
        &routes,
        [NeighInput {
            ifindex: 11,
            ip: ip("10.0.2.2"),
            mac: Some([2, 0, 0, 0, 2, 2]),
            valid: true,
            failed: false,
            stale: false,
        }],
        &ports,
    );
    let pa = |a: &str| PortAddr {
        addr: ip(a).to_bits(),
        prefix_len: 24,
        secondary: false,
    };
    let fib = Fib {
        routes: Arc::new(routes),
        adj: Arc::new(adj),
        ports,
        generation: 1,
        addrs: Arc::new(IfAddrs::new(
            vec![vec![pa("10.0.1.1")], vec![pa("10.0.2.1")]],
            vec![ip("10.0.1.1").to_bits(), ip("10.0.2.1").to_bits()],
            vec![ip("10.0.1.255").to_bits(), ip("10.0.2.255").to_bits()],
        )),
    };
    let mut ctx = Ip4Ctx::new(ForwardConfig::default(), 1, 0);
    let template: Vec<Vec<u8>> = (0..BATCH)
        .map(|i| {
            let mut v = Vec::new();
            etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 1, 2], [2, 0, 0, 0, 0, 0x10])
                .ipv4([10, 0, 1, 2], [198, 18, (i / 256) as u8, i as u8], 64)
                .udp(4000, 5000)
                .write(&mut v, &[0xab; 18])
                .unwrap();
            v
        })
        .collect();
    let mut batch = template.clone();
    let mut out = [Outcome::Drop(DropReason::NoRoute); BATCH];
    const ITERS: usize = 200_000;
    let mut results = Vec::new();
    for _ in 0..7 {
        let t0 = Instant::now();
        for _ in 0..ITERS {
            for (b, t) in batch.iter_mut().zip(&template) {
                b.clear();
                b.extend_from_slice(t);
            }
            ip4_forward_batch(&fib, &mut ctx, 0, batch.as_mut_slice(), &mut out);
            std::hint::black_box(&out);
        }
        assert!(out.iter().all(|o| *o == Outcome::Tx(1)), "{:?}", out[0]);
        results.push(t0.elapsed().as_nanos() as f64 / (ITERS * BATCH) as f64);
    }
    results.sort_by(f64::total_cmp);
    println!(
        "ip4_forward_batch: {:.2} ns/packet (median of 7; min {:.2}, max {:.2})",
        results[3], results[0], results[6]
    );
}

//! The sink's sequence tracking (reordering, duplicates) and latency histogram, frame by frame
//! through `BPF_PROG_TEST_RUN`.

mod common;

use std::net::Ipv4Addr;

use common::ipv4_to;
use xfwd_ebpf::{Sink, SinkAction, SinkConfig, latency_bucket_range};
use xfwd_testbed::NetNs;

/// A UDP frame to port 9 carrying the generator's payload: `seq`, then the send time `sent`.
fn stamped(seq: u64, sent: u64) -> Vec<u8> {
    let mut f = ipv4_to(Ipv4Addr::new(10, 0, 0, 2), 100);
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[42..50].copy_from_slice(&seq.to_be_bytes());
    f[50..58].copy_from_slice(&sent.to_be_bytes());
    f
}

/// CLOCK_MONOTONIC in ns, bpf_ktime_get_ns()'s clock.
fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[test]
fn sequence_gaps_reordering_duplicates_and_latency() {
    xfwd_testbed::require_privileges!();
    let ns = NetNs::new("xbq").unwrap();
    ns.run(|| {
        let mut sink = Sink::load(&SinkConfig {
            udp_port: Some(9),
            action: SinkAction::Drop,
        })
        .unwrap();
        sink.track_flows(2).unwrap();
        // Flow 0 gets even sequence numbers (per-flow 0,1,2,...), flow 1 odd ones.
        // Flow 0: 0, 4 (skips 2), 2 (late: reordered), 4 again (duplicate).
        // Flow 1: 1, 3; one frame stamped 1 ms ago, one unstamped.
        let t = now_ns();
        for (seq, sent) in [(0, 0), (4, 0), (2, 0), (4, 0), (1, t - 1_000_000), (3, 0)] {
            sink.test_run(&stamped(seq, sent), 1, 0).unwrap();
        }
        let st = sink.stats().unwrap();
        assert_eq!(st.packets, 6);
        assert_eq!((st.reordered, st.duplicates, st.too_late), (1, 1, 0));
        assert_eq!(st.unique(), 5);
        assert_eq!(st.stamped, 1);
        let f0 = sink.flow(0).unwrap();
        assert_eq!(
            (f0.packets, f0.next_seq, f0.reordered, f0.duplicates),
            (4, 3, 1, 1)
        );
        let f1 = sink.flow(1).unwrap();
        assert_eq!((f1.packets, f1.next_seq), (2, 2));
        // The latency landed in one bucket between 1 ms and 1 ms + test time (< 1 s).
        let counts = sink.latency_counts().unwrap();
        let hit: Vec<usize> = (0..counts.len()).filter(|&b| counts[b] > 0).collect();
        assert_eq!(hit.len(), 1, "{hit:?}");
        let (low, width) = latency_bucket_range(hit[0] as u32);
        assert!(low + width > 1_000_000 && low < 1_000_000_000, "{low}");

        // Far behind the window: too late to tell.
        sink.test_run(&stamped(200, 0), 1, 0).unwrap();
        sink.test_run(&stamped(2, 0), 1, 0).unwrap();
        assert_eq!(sink.stats().unwrap().too_late, 1);

        // A stamp from the future is counted as such, not as a latency.
        sink.test_run(&stamped(202, now_ns() + 60_000_000_000), 1, 0)
            .unwrap();
        assert_eq!(sink.stats().unwrap().bad_stamp, 1);
        assert!(sink.track_flows(65_537).is_err());
    })
    .unwrap();
}

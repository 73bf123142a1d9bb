//! `#[repr(C)]` mirrors of the structs and numbers the BPF programs share with this crate
//! (`src/xfwd_steer.h`, `src/xfwd_bench.h`) and of the uAPI `struct xdp_md`
//! (`include/uapi/linux/bpf.h`). Size asserts pin the layouts; a test parses the headers to
//! prove the numbers match.
#![expect(unsafe_code, reason = "aya's Pod marker is an unsafe trait")]

use aya::Pod;

/// Interfaces one `Steer` can drive (`XFWD_MAX_IFACES`).
pub const MAX_IFACES: u32 = 64;
/// Receive queues per interface that can have an AF_XDP socket (`XFWD_MAX_QUEUES`).
pub const MAX_QUEUES: u32 = 64;
/// Entries of the `xsks` map (`XFWD_XSKS_ENTRIES`).
pub const XSKS_ENTRIES: u32 = MAX_IFACES * MAX_QUEUES;
/// Capacity of the `local_addrs` map (`XFWD_MAX_LOCAL_ADDRS`).
pub const MAX_LOCAL_ADDRS: usize = 16384;

/// `XFWD_GEN_HDR_LEN`: Ethernet + IPv4 without options + UDP.
pub(crate) const GEN_HDR_LEN: usize = 42;
/// `XFWD_GEN_MIN_FRAME`: header plus the 16-byte sequence/timestamp payload.
pub(crate) const GEN_MIN_FRAME: usize = GEN_HDR_LEN + 16;

/// `struct xfwd_iface`, value of the `ifaces` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct IfaceValue {
    pub(crate) slot: u32,
    pub(crate) flags: u32,
    pub(crate) max_frame_len: u32,
}
const _: () = assert!(size_of::<IfaceValue>() == 12);

/// `struct xfwd_gen`, the only entry of the generator's `gen` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GenMap {
    pub(crate) hdr: [u64; 6],
    pub(crate) src_port: u16,
    pub(crate) flows: u16,
    pub(crate) timestamp_every: u32,
    pub(crate) next_seq: u64,
    pub(crate) sent: u64,
    pub(crate) errors: u64,
}
const _: () = assert!(size_of::<GenMap>() == 80);

/// `struct xfwd_sink_config`, the only entry of the sink's `sink_cfg` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SinkConfigValue {
    pub(crate) udp_port: u16,
    pub(crate) reserved: u16,
    pub(crate) action: u32,
    pub(crate) flows: u32,
    pub(crate) reserved2: u32,
}
const _: () = assert!(size_of::<SinkConfigValue>() == 16);

/// `XFWD_SINK_MAX_FLOWS`: flows the sink tracks one by one.
pub const SINK_MAX_FLOWS: u32 = 65536;
/// `XFWD_SINK_WINDOW`: per-flow reordering window of the sink.
pub const SINK_WINDOW: u64 = 64;
/// `XFWD_LAT_SUB_BITS`: log2 of the sub-buckets per power of two of the latency histogram.
pub const LAT_SUB_BITS: u32 = 6;
/// `XFWD_LAT_MAX_SHIFT`: largest shift before the last (overflow) bucket.
pub const LAT_MAX_SHIFT: u32 = 34;
/// `XFWD_LAT_BUCKETS`: buckets of the sink's latency histogram.
pub const LAT_BUCKETS: u32 = 2304;

/// `struct xfwd_sink_flow`, value of the sink's `sink_flows` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkFlowValue {
    /// Frames received, duplicates included.
    pub packets: u64,
    /// Highest per-flow sequence number seen, plus one (0: none yet).
    pub next_seq: u64,
    /// Bitmap of the last [`SINK_WINDOW`] sequence numbers seen.
    pub window: u64,
    /// Frames that arrived after a higher sequence number of their flow.
    pub reordered: u64,
    /// Frames whose sequence number was already seen.
    pub duplicates: u64,
    /// Frames too far behind to check.
    pub too_late: u64,
}
const _: () = assert!(size_of::<SinkFlowValue>() == 48);

/// `struct xfwd_sink_stats`, per-CPU value of the sink's `sink_stats` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SinkStatsValue {
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    pub(crate) reordered: u64,
    pub(crate) duplicates: u64,
    pub(crate) too_late: u64,
    pub(crate) stamped: u64,
    pub(crate) bad_stamp: u64,
    pub(crate) bad_flow: u64,
}
const _: () = assert!(size_of::<SinkStatsValue>() == 64);

// SAFETY: each type is `repr(C)`, `Copy`, made only of integers (every bit pattern is a
// valid value) and has no padding (the size asserts above equal the sum of the fields), so
// reading it from or writing it to a map's bytes is sound.
unsafe impl Pod for IfaceValue {}
// SAFETY: as above.
unsafe impl Pod for GenMap {}
// SAFETY: as above.
unsafe impl Pod for SinkConfigValue {}
// SAFETY: as above.
unsafe impl Pod for SinkStatsValue {}
// SAFETY: repr(C) plain old data of u64 fields, no padding.
unsafe impl Pod for SinkFlowValue {}

/// `struct xdp_md` (uAPI, 6 × `__u32`) as BPF_PROG_TEST_RUN's `ctx_in` takes it: `data` is
/// the metadata length (0), `data_end` the linear length, `egress_ifindex` must be 0.
pub(crate) fn xdp_md(data_end: u32, ingress_ifindex: u32, rx_queue_index: u32) -> [u8; 24] {
    let fields = [0, data_end, 0, ingress_ifindex, rx_queue_index, 0u32];
    let mut out = [0u8; 24];
    for (chunk, field) in out.chunks_exact_mut(4).zip(fields) {
        chunk.copy_from_slice(&field.to_ne_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Verdict;

    const STEER_H: &str = include_str!("xfwd_steer.h");
    const BENCH_H: &str = include_str!("xfwd_bench.h");

    /// `(name, value)` of every `NAME = N` enum item and `#define NAME N` with a literal.
    fn numbers(header: &str) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for line in header.lines().map(str::trim) {
            let (name, value) = if let Some(rest) = line.strip_prefix("#define ") {
                match rest.split_once(char::is_whitespace) {
                    Some((n, v)) => (n, v.trim()),
                    None => continue,
                }
            } else if let Some((n, v)) = line.split_once(" = ") {
                (n, v.trim_end_matches(','))
            } else {
                continue;
            };
            if let Ok(v) = value.parse() {
                out.push((name.to_owned(), v));
            }
        }
        out
    }

    fn number(header: &str, name: &str) -> u64 {
        numbers(header)
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} not in header"))
            .1
    }

    #[test]
    fn verdicts_mirror_the_c_enum() {
        let c: Vec<(String, u64)> = numbers(STEER_H)
            .into_iter()
            .filter(|(n, _)| n.starts_with("XFWD_VERDICT_") && n != "XFWD_VERDICT_COUNT")
            .collect();
        assert_eq!(c.len(), Verdict::COUNT, "C has {c:?}");
        for (name, value) in &c {
            let v = Verdict::ALL[usize::try_from(*value).unwrap()];
            assert_eq!(format!("XFWD_VERDICT_{}", v.name().to_uppercase()), *name);
            assert_eq!(v as u64, *value);
        }
        assert_eq!(number(STEER_H, "XFWD_VERDICT_COUNT"), Verdict::COUNT as u64);
    }

    #[test]
    fn limits_mirror_the_c_header() {
        assert_eq!(number(STEER_H, "XFWD_MAX_IFACES"), u64::from(MAX_IFACES));
        assert_eq!(number(STEER_H, "XFWD_MAX_QUEUES"), u64::from(MAX_QUEUES));
        assert_eq!(
            number(STEER_H, "XFWD_MAX_LOCAL_ADDRS"),
            MAX_LOCAL_ADDRS as u64
        );
        assert_eq!(number(BENCH_H, "XFWD_GEN_HDR_LEN"), GEN_HDR_LEN as u64);
        assert_eq!(
            number(BENCH_H, "XFWD_SINK_MAX_FLOWS"),
            u64::from(SINK_MAX_FLOWS)
        );
        assert_eq!(number(BENCH_H, "XFWD_SINK_WINDOW"), SINK_WINDOW);
        assert_eq!(
            number(BENCH_H, "XFWD_LAT_SUB_BITS"),
            u64::from(LAT_SUB_BITS)
        );
        assert_eq!(
            number(BENCH_H, "XFWD_LAT_MAX_SHIFT"),
            u64::from(LAT_MAX_SHIFT)
        );
        assert_eq!(number(BENCH_H, "XFWD_LAT_BUCKETS"), u64::from(LAT_BUCKETS));
        assert_eq!(
            number(BENCH_H, "XFWD_GEN_PAYLOAD_LEN"),
            (GEN_MIN_FRAME - GEN_HDR_LEN) as u64
        );
    }

    #[test]
    fn xdp_md_layout() {
        let md = xdp_md(60, 7, 3);
        assert_eq!(&md[4..8], &60u32.to_ne_bytes());
        assert_eq!(&md[12..16], &7u32.to_ne_bytes());
        assert_eq!(&md[16..20], &3u32.to_ne_bytes());
        assert!(
            md[..4]
                .iter()
                .chain(&md[8..12])
                .chain(&md[20..])
                .all(|&b| b == 0)
        );
    }
}

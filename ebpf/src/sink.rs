//! [`Sink`]: the `xfwd_sink` counting program (`src/sink.bpf.c`) for the receiving side
//! of benchmarks and tests. Kernel >= 5.10.

use std::collections::BTreeMap;
use std::fmt;

use aya::Ebpf;
use aya::maps::{Array, MapData, PerCpuArray};
use aya::programs::Xdp;

use crate::abi::{
    LAT_BUCKETS, LAT_MAX_SHIFT, LAT_SUB_BITS, SINK_MAX_FLOWS, SinkConfigValue, SinkFlowValue,
    SinkStatsValue,
};
use crate::attach::{self, AttachMode, AttachedMode, Attachment};
use crate::error::{self, Error, Result};
use crate::objects;
use crate::test_run::{self, XDP_DROP, XDP_PASS};

const PROGRAM: &str = "xfwd_sink";

/// What the sink does with the frames it counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SinkAction {
    /// `XDP_DROP`: the fastest sink.
    #[default]
    Drop,
    /// `XDP_PASS`: the kernel sees the frames too.
    Pass,
}

/// What the sink counts and does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SinkConfig {
    /// Count only IPv4/UDP to this destination port (other frames are passed, uncounted);
    /// `None` counts every frame.
    pub udp_port: Option<u16>,
    /// Action for counted frames.
    pub action: SinkAction,
}

/// The loaded `xfwd_sink` program, its counters and its attachments; detaches on drop.
pub struct Sink {
    ebpf: Ebpf,
    cfg: Array<MapData, SinkConfigValue>,
    stats: PerCpuArray<MapData, SinkStatsValue>,
    flows: Array<MapData, SinkFlowValue>,
    latency: PerCpuArray<MapData, u64>,
    attached: BTreeMap<u32, Attachment>,
}

/// The sink's totals over CPUs (see [`Sink::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Frames counted (duplicates included).
    pub packets: u64,
    /// Bytes of those frames.
    pub bytes: u64,
    /// Frames that arrived after a higher sequence number of their flow (first copy).
    pub reordered: u64,
    /// Frames whose per-flow sequence number was already seen.
    pub duplicates: u64,
    /// Frames too far behind their flow's highest sequence number to be checked.
    pub too_late: u64,
    /// Frames whose one-way latency went into the histogram.
    pub stamped: u64,
    /// Frames stamped later than they arrived (clock trouble): no latency recorded.
    pub bad_stamp: u64,
    /// Frames whose flow was out of range.
    pub bad_flow: u64,
}

impl SinkStats {
    /// Field by field `self - earlier` (counters only grow).
    #[must_use]
    pub fn since(&self, earlier: &SinkStats) -> SinkStats {
        SinkStats {
            packets: self.packets.wrapping_sub(earlier.packets),
            bytes: self.bytes.wrapping_sub(earlier.bytes),
            reordered: self.reordered.wrapping_sub(earlier.reordered),
            duplicates: self.duplicates.wrapping_sub(earlier.duplicates),
            too_late: self.too_late.wrapping_sub(earlier.too_late),
            stamped: self.stamped.wrapping_sub(earlier.stamped),
            bad_stamp: self.bad_stamp.wrapping_sub(earlier.bad_stamp),
            bad_flow: self.bad_flow.wrapping_sub(earlier.bad_flow),
        }
    }

    /// Frames received once: what the sink got, duplicates removed.
    #[must_use]
    pub fn unique(&self) -> u64 {
        self.packets.saturating_sub(self.duplicates)
    }
}

pub use crate::abi::SinkFlowValue as SinkFlow;

/// Histogram bucket of a one-way latency of `ns` nanoseconds (the sink's `lat_bucket`).
#[must_use]
pub fn latency_bucket(ns: u64) -> u32 {
    if ns < (1 << LAT_SUB_BITS) {
        return u32::try_from(ns).unwrap_or(0);
    }
    let shift = 63 - ns.leading_zeros() - LAT_SUB_BITS;
    if shift > LAT_MAX_SHIFT {
        return LAT_BUCKETS - 1;
    }
    (shift << LAT_SUB_BITS) + u32::try_from(ns >> shift).unwrap_or(0)
}

/// The lowest latency (ns) that falls in `bucket`, and the width of the bucket.
#[must_use]
pub fn latency_bucket_range(bucket: u32) -> (u64, u64) {
    let sub = 1u32 << LAT_SUB_BITS;
    if bucket < 2 * sub {
        return (u64::from(bucket), 1);
    }
    let shift = (bucket >> LAT_SUB_BITS) - 1;
    let m = u64::from(bucket - (shift << LAT_SUB_BITS));
    (m << shift, 1 << shift)
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink")
            .field("attached", &self.attached)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// Loads the sink with `config`. Nothing is attached yet.
    ///
    /// # Errors
    ///
    /// [`Error::PermissionDenied`], [`Error::Verifier`], [`Error::Object`],
    /// [`Error::InvalidArgument`] for `udp_port` `Some(0)`.
    pub fn load(config: &SinkConfig) -> Result<Sink> {
        if config.udp_port == Some(0) {
            return Err(Error::InvalidArgument {
                what: "sink UDP port",
                why: "0 is not a destination port (use None to count every frame)".to_owned(),
            });
        }
        let mut ebpf = objects::load("sink.bpf.o", objects::sink())?;
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| Error::InvalidArgument {
                what: "embedded sink.bpf.o",
                why: format!("XDP program {PROGRAM} is missing (build inconsistency)"),
            })?;
        program
            .load()
            .map_err(|e| error::program_load(PROGRAM, e))?;
        let missing = |name: &str| Error::InvalidArgument {
            what: "embedded sink.bpf.o",
            why: format!("map {name} is missing (build inconsistency)"),
        };
        let cfg_map = ebpf
            .take_map("sink_cfg")
            .ok_or_else(|| missing("sink_cfg"))?;
        let mut cfg: Array<MapData, SinkConfigValue> =
            Array::try_from(cfg_map).map_err(|e| error::map("open map sink_cfg", e))?;
        let value = SinkConfigValue {
            udp_port: config.udp_port.unwrap_or(0),
            reserved: 0,
            action: match config.action {
                SinkAction::Drop => XDP_DROP,
                SinkAction::Pass => XDP_PASS,
            },
            flows: 0,
            reserved2: 0,
        };
        cfg.set(0, value, 0)
            .map_err(|e| error::map("configure the sink", e))?;
        let stats_map = ebpf
            .take_map("sink_stats")
            .ok_or_else(|| missing("sink_stats"))?;
        let stats =
            PerCpuArray::try_from(stats_map).map_err(|e| error::map("open map sink_stats", e))?;
        let flows_map = ebpf
            .take_map("sink_flows")
            .ok_or_else(|| missing("sink_flows"))?;
        let flows = Array::try_from(flows_map).map_err(|e| error::map("open map sink_flows", e))?;
        let lat_map = ebpf
            .take_map("sink_lat")
            .ok_or_else(|| missing("sink_lat"))?;
        let latency =
            PerCpuArray::try_from(lat_map).map_err(|e| error::map("open map sink_lat", e))?;
        Ok(Sink {
            ebpf,
            cfg,
            stats,
            flows,
            latency,
            attached: BTreeMap::new(),
        })
    }

    fn program_mut(&mut self) -> &mut Xdp {
        match self.ebpf.program_mut(PROGRAM).map(TryInto::try_into) {
            Some(Ok(program)) => program,
            _ => unreachable!("XDP program {PROGRAM} vanished after load"),
        }
    }

    /// Attaches the sink to `ifindex` (calling thread's network namespace).
    ///
    /// # Errors
    ///
    /// As [`crate::Steer::attach`].
    pub fn attach(&mut self, ifindex: u32, mode: AttachMode) -> Result<AttachedMode> {
        let ifname = attach::ifname(ifindex)?;
        if self.attached.contains_key(&ifindex) {
            return Err(Error::AlreadyAttached { ifname });
        }
        let attachment = attach::attach(self.program_mut(), ifindex, mode)?;
        let mode = attachment.mode;
        self.attached.insert(ifindex, attachment);
        Ok(mode)
    }

    /// Detaches the sink from `ifindex`.
    ///
    /// # Errors
    ///
    /// [`Error::NotAttached`], [`Error::Kernel`].
    pub fn detach(&mut self, ifindex: u32) -> Result<()> {
        let attachment = self
            .attached
            .remove(&ifindex)
            .ok_or(Error::NotAttached { ifindex })?;
        attach::detach(self.program_mut(), attachment)
    }

    /// `(packets, bytes)` counted since load, summed over CPUs.
    ///
    /// # Errors
    ///
    /// [`Error::Kernel`] when the map cannot be read.
    pub fn counters(&self) -> Result<(u64, u64)> {
        let per_cpu = self
            .stats
            .get(&0, 0)
            .map_err(|e| error::map("read the sink's counters", e))?;
        Ok(per_cpu.iter().fold((0u64, 0u64), |(p, b), s| {
            (p.wrapping_add(s.packets), b.wrapping_add(s.bytes))
        }))
    }

    /// Turns on sequence and latency tracking for frames of the live-frames generator with
    /// `flows` flows (its payload: sequence number, send time); 0 turns it off.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] above 65 536 flows, [`Error::Kernel`].
    pub fn track_flows(&mut self, flows: u32) -> Result<()> {
        if flows > SINK_MAX_FLOWS {
            return Err(Error::InvalidArgument {
                what: "sink flows",
                why: format!("{flows} is more than the {SINK_MAX_FLOWS} the sink tracks"),
            });
        }
        let mut value = self
            .cfg
            .get(&0, 0)
            .map_err(|e| error::map("read the sink's configuration", e))?;
        value.flows = flows;
        self.cfg
            .set(0, value, 0)
            .map_err(|e| error::map("configure the sink", e))
    }

    /// All counters since load, summed over CPUs.
    ///
    /// # Errors
    ///
    /// [`Error::Kernel`] when the map cannot be read.
    pub fn stats(&self) -> Result<SinkStats> {
        let per_cpu = self
            .stats
            .get(&0, 0)
            .map_err(|e| error::map("read the sink's counters", e))?;
        Ok(per_cpu.iter().fold(SinkStats::default(), |a, s| SinkStats {
            packets: a.packets.wrapping_add(s.packets),
            bytes: a.bytes.wrapping_add(s.bytes),
            reordered: a.reordered.wrapping_add(s.reordered),
            duplicates: a.duplicates.wrapping_add(s.duplicates),
            too_late: a.too_late.wrapping_add(s.too_late),
            stamped: a.stamped.wrapping_add(s.stamped),
            bad_stamp: a.bad_stamp.wrapping_add(s.bad_stamp),
            bad_flow: a.bad_flow.wrapping_add(s.bad_flow),
        }))
    }

    /// The state of flow `flow` (sequence tracking).
    ///
    /// # Errors
    ///
    /// [`Error::Kernel`] when the map cannot be read (or `flow` is out of range).
    pub fn flow(&self, flow: u32) -> Result<SinkFlow> {
        self.flows
            .get(&flow, 0)
            .map_err(|e| error::map("read a flow of the sink", e))
    }

    /// The latency histogram since load: one count per bucket (see
    /// [`latency_bucket_range`]), summed over CPUs; `XFWD_LAT_BUCKETS` entries.
    ///
    /// # Errors
    ///
    /// [`Error::Kernel`] when the map cannot be read.
    pub fn latency_counts(&self) -> Result<Vec<u64>> {
        (0..LAT_BUCKETS)
            .map(|b| {
                self.latency
                    .get(&b, 0)
                    .map(|per_cpu| per_cpu.iter().fold(0u64, |a, c| a.wrapping_add(*c)))
                    .map_err(|e| error::map("read the sink's latency histogram", e))
            })
            .collect()
    }

    /// Runs the sink once on `frame` (BPF_PROG_TEST_RUN) and returns the XDP action.
    ///
    /// # Errors
    ///
    /// As [`crate::Steer::test_run`].
    pub fn test_run(&self, frame: &[u8], ingress_ifindex: u32, rx_queue: u32) -> Result<u32> {
        let program: &Xdp = match self.ebpf.program(PROGRAM).map(TryInto::try_into) {
            Some(Ok(program)) => program,
            _ => unreachable!("XDP program {PROGRAM} vanished after load"),
        };
        test_run::run_once(program, PROGRAM, frame, ingress_ifindex, rx_queue)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let attached: Vec<u32> = self.attached.keys().copied().collect();
        for ifindex in attached {
            let _ = self.detach(ifindex);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_contiguous_and_contain_their_values() {
        let mut prev_end = 0;
        for b in 0..LAT_BUCKETS - 1 {
            let (low, width) = latency_bucket_range(b);
            assert_eq!(low, prev_end, "bucket {b} starts where {} ended", b - 1);
            assert_eq!(latency_bucket(low), b);
            assert_eq!(latency_bucket(low + width - 1), b);
            prev_end = low + width;
        }
        // Resolution: a bucket is at most 1/64 of its values.
        for v in [100u64, 1_000, 12_345, 1_000_000, 987_654_321] {
            let (low, width) = latency_bucket_range(latency_bucket(v));
            assert!(low <= v && v < low + width);
            assert!(width * 64 <= low.max(64));
        }
        assert_eq!(latency_bucket(u64::MAX), LAT_BUCKETS - 1);
        assert_eq!(latency_bucket(1 << 41), LAT_BUCKETS - 1);
    }

    #[test]
    fn stats_deltas_and_unique() {
        let a = SinkStats {
            packets: 10,
            duplicates: 1,
            ..SinkStats::default()
        };
        let b = SinkStats {
            packets: 25,
            duplicates: 3,
            ..SinkStats::default()
        };
        let d = b.since(&a);
        assert_eq!((d.packets, d.duplicates, d.unique()), (15, 2, 13));
    }
}

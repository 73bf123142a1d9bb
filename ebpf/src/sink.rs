//! [`Sink`]: the `xfwd_sink` counting program (`src/sink.bpf.c`) for the receiving side
//! of benchmarks and tests. Kernel >= 5.10.

use std::collections::BTreeMap;
use std::fmt;

use aya::Ebpf;
use aya::maps::{Array, MapData, PerCpuArray};
use aya::programs::Xdp;

use crate::abi::{SinkConfigValue, SinkStatsValue};
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
    stats: PerCpuArray<MapData, SinkStatsValue>,
    attached: BTreeMap<u32, Attachment>,
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
        };
        cfg.set(0, value, 0)
            .map_err(|e| error::map("configure the sink", e))?;
        let stats_map = ebpf
            .take_map("sink_stats")
            .ok_or_else(|| missing("sink_stats"))?;
        let stats =
            PerCpuArray::try_from(stats_map).map_err(|e| error::map("open map sink_stats", e))?;
        Ok(Sink {
            ebpf,
            stats,
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

//! [`Generator`]: the `xfwd_gen` live-frames UDP generator (`src/gen.bpf.c`).
//!
//! `BPF_PROG_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES` (kernel >= 5.18, `net/bpf/test_run.c`
//! `bpf_test_run_xdp_live`) runs the program `repeat` times on page_pool frames, `batch`
//! frames per round, and turns its `XDP_TX` into a redirect out of `ingress_ifindex`, all
//! on the calling thread's CPU. On a veth, the frame lands on the peer, which needs an XDP
//! program (a [`crate::Sink`]) for the redirect to deliver.

use std::fmt;
use std::net::Ipv4Addr;

use aya::Ebpf;
use aya::maps::{Array, MapData};
use aya::programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp};

use crate::abi::{self, GEN_HDR_LEN, GEN_MIN_FRAME, GenMap};
use crate::error::{self, Error, Result};
use crate::objects;

const PROGRAM: &str = "xfwd_gen";
/// `TEST_XDP_MAX_BATCH` in `net/bpf/test_run.c`.
const MAX_BATCH: u32 = 256;
/// Longest Ethernet frame without FCS at the standard MTU.
const MAX_FRAME: u16 = 1514;

/// The UDP/IPv4 frames to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpTemplate {
    /// Ethernet source.
    pub src_mac: [u8; 6],
    /// Ethernet destination.
    pub dst_mac: [u8; 6],
    /// IPv4 source.
    pub src_ip: Ipv4Addr,
    /// IPv4 destination.
    pub dst_ip: Ipv4Addr,
    /// UDP source port of flow 0; flow f uses `src_port + f`.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// IPv4 TTL.
    pub ttl: u8,
    /// Frame length without FCS, 60..=1514 (the payload is the sequence number, the send
    /// timestamp, then zeros).
    pub frame_len: u16,
    /// Number of flows (distinct UDP source ports), >= 1; frame n belongs to flow
    /// `n % flows`.
    pub flows: u16,
}

impl UdpTemplate {
    /// 60-byte frames of one flow, ports 1024 -> 9 (discard), TTL 64.
    pub fn new(
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
        src_ip: Ipv4Addr,
        dst_ip: Ipv4Addr,
    ) -> UdpTemplate {
        UdpTemplate {
            src_mac,
            dst_mac,
            src_ip,
            dst_ip,
            src_port: 1024,
            dst_port: 9,
            ttl: 64,
            frame_len: 60,
            flows: 1,
        }
    }

    fn validate(&self) -> Result<()> {
        if !(60..=MAX_FRAME).contains(&self.frame_len) {
            return Err(Error::InvalidArgument {
                what: "generator frame length",
                why: format!("{} is not in 60..={MAX_FRAME}", self.frame_len),
            });
        }
        if self.flows == 0
            || u32::from(self.src_port) + u32::from(self.flows) - 1 > u32::from(u16::MAX)
        {
            return Err(Error::InvalidArgument {
                what: "generator flows",
                why: format!(
                    "{} flows from source port {} (need >= 1 and ports up to 65535)",
                    self.flows, self.src_port
                ),
            });
        }
        Ok(())
    }

    /// The first frame: the 42-byte header with lengths and checksum for `frame_len`, then
    /// sequence 0, timestamp 0 and zero padding.
    pub fn frame(&self) -> Vec<u8> {
        let len = usize::from(self.frame_len.max(60));
        let mut f = vec![0u8; len];
        f[0..6].copy_from_slice(&self.dst_mac);
        f[6..12].copy_from_slice(&self.src_mac);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&u16::try_from(len - 14).unwrap_or(u16::MAX).to_be_bytes());
        ip[8] = self.ttl;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&self.src_ip.octets());
        ip[16..20].copy_from_slice(&self.dst_ip.octets());
        let csum = ip4_header_checksum(ip);
        ip[10..12].copy_from_slice(&csum.to_be_bytes());
        f[34..36].copy_from_slice(&self.src_port.to_be_bytes());
        f[36..38].copy_from_slice(&self.dst_port.to_be_bytes());
        f[38..40].copy_from_slice(&u16::try_from(len - 34).unwrap_or(u16::MAX).to_be_bytes());
        f
    }
}

/// RFC 1071 checksum of an IPv4 header whose checksum field is zero.
fn ip4_header_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(u16::MAX)
}

/// The loaded `xfwd_gen` program and its `gen` map.
pub struct Generator {
    ebpf: Ebpf,
    gen_map: Array<MapData, GenMap>,
    template: Option<UdpTemplate>,
    frame: Vec<u8>,
}

impl fmt::Debug for Generator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

impl Generator {
    /// Loads the generator program. Kernel >= 5.18 to run it.
    ///
    /// # Errors
    ///
    /// [`Error::PermissionDenied`], [`Error::Verifier`], [`Error::Object`].
    pub fn load() -> Result<Generator> {
        let mut ebpf = objects::load("gen.bpf.o", objects::generator())?;
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| Error::InvalidArgument {
                what: "embedded gen.bpf.o",
                why: format!("XDP program {PROGRAM} is missing (build inconsistency)"),
            })?;
        program
            .load()
            .map_err(|e| error::program_load(PROGRAM, e))?;
        let map = ebpf.take_map("gen").ok_or_else(|| Error::InvalidArgument {
            what: "embedded gen.bpf.o",
            why: "map gen is missing (build inconsistency)".to_owned(),
        })?;
        let gen_map =
            Array::try_from(map).map_err(|e| error::map("open map gen of gen.bpf.o", e))?;
        let mut generator = Generator {
            ebpf,
            gen_map,
            template: None,
            frame: Vec::new(),
        };
        generator.set_timestamp_every(1)?;
        Ok(generator)
    }

    fn state(&self) -> Result<GenMap> {
        self.gen_map
            .get(&0, 0)
            .map_err(|e| error::map("read the generator's gen map", e))
    }

    fn store(&mut self, value: GenMap) -> Result<()> {
        self.gen_map
            .set(0, value, 0)
            .map_err(|e| error::map("write the generator's gen map", e))
    }

    /// Sets the frames to generate. Keeps the sequence number.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a length outside 60..=1514 or flows that do not fit
    /// the port range; [`Error::Kernel`] when the map update fails.
    pub fn configure(&mut self, template: &UdpTemplate) -> Result<()> {
        template.validate()?;
        let frame = template.frame();
        let mut header = [0u8; 48];
        header[..GEN_HDR_LEN].copy_from_slice(&frame[..GEN_HDR_LEN]);
        let mut state = self.state()?;
        for (word, bytes) in state.hdr.iter_mut().zip(header.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes);
            // Native order: the program copies the words to the packet as they lie in memory.
            *word = u64::from_ne_bytes(b);
        }
        state.src_port = template.src_port;
        state.flows = template.flows;
        self.store(state)?;
        debug_assert!(frame.len() >= GEN_MIN_FRAME);
        self.frame = frame;
        self.template = Some(*template);
        Ok(())
    }

    /// The template configured, if any.
    pub fn template(&self) -> Option<&UdpTemplate> {
        self.template.as_ref()
    }

    /// The sequence number the next frame will carry.
    ///
    /// # Errors
    ///
    /// [`Error::Kernel`] when the map cannot be read.
    pub fn next_seq(&self) -> Result<u64> {
        Ok(self.state()?.next_seq)
    }

    /// Sets the sequence number the next frame carries.
    ///
    /// # Errors
    ///
    /// [`Error::Kernel`] when the map update fails.
    pub fn set_next_seq(&mut self, seq: u64) -> Result<()> {
        let mut state = self.state()?;
        state.next_seq = seq;
        self.store(state)
    }

    /// Stamps the send time (`bpf_ktime_get_ns`, CLOCK_MONOTONIC) into one frame in
    /// `every` (those whose sequence number is a multiple of it); the others carry 0. 1 (the
    /// default) stamps every frame, 0 none. Reading the clock costs about a tenth of a
    /// frame's time on this VM, so throughput runs may stamp one frame in 64 or none.
    ///
    /// # Errors
    ///
    /// [`Error::Kernel`] when the map update fails.
    pub fn set_timestamp_every(&mut self, every: u32) -> Result<()> {
        let mut state = self.state()?;
        state.timestamp_every = every;
        self.store(state)
    }

    /// Frames sent since load, over all runs.
    ///
    /// # Errors
    ///
    /// [`Error::Kernel`] when the map cannot be read.
    pub fn total_sent(&self) -> Result<u64> {
        Ok(self.state()?.sent)
    }

    /// Sends `repeat` frames out of `ifindex` (in the calling thread's network namespace),
    /// `batch_size` (1..=256) per round, and returns how many the program handed to
    /// `XDP_TX`. Blocks the calling thread, on its current CPU, until done; a signal ends
    /// the run early (the count then says how far it got). Frames the device then drops
    /// (e.g. a full veth ring) are not visible here: count them at the receiver.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] before [`Generator::configure`] or for a batch outside
    /// 1..=256 or `repeat` 0; [`Error::NoSuchInterface`]; [`Error::Kernel`] (e.g. kernel
    /// older than 5.18: `EINVAL`).
    pub fn run(&mut self, ifindex: u32, batch_size: u32, repeat: u32) -> Result<u64> {
        if self.template.is_none() {
            return Err(Error::InvalidArgument {
                what: "generator run",
                why: "configure() a template first".to_owned(),
            });
        }
        if !(1..=MAX_BATCH).contains(&batch_size) || repeat == 0 {
            return Err(Error::InvalidArgument {
                what: "generator run",
                why: format!("batch {batch_size} (1..={MAX_BATCH}) and repeat {repeat} (>= 1)"),
            });
        }
        let len = u32::try_from(self.frame.len()).unwrap_or(u32::MAX);
        let ctx = abi::xdp_md(len, ifindex, 0);
        let before = self.state()?.sent;
        let program: &Xdp = match self.ebpf.program(PROGRAM).map(TryInto::try_into) {
            Some(Ok(program)) => program,
            _ => unreachable!("XDP program {PROGRAM} vanished after load"),
        };
        let opts = TestRunOptions {
            data_in: Some(&self.frame),
            ctx_in: Some(&ctx),
            repeat,
            attrs: TestRunAttrs::new().xdp_live_frames(batch_size),
            ..TestRunOptions::new()
        };
        let result = program.test_run(opts);
        let sent = self.state()?.sent.wrapping_sub(before);
        match result {
            Ok(_) => Ok(sent),
            Err(e) => {
                let source = error::program_io_error(e);
                match source.raw_os_error() {
                    // ENOSPC: the egress device's XDP ring was full and the runner gave up on
                    // the rest of the call; what the program sent is counted (and lost
                    // downstream, which is for the caller's loss accounting to see).
                    Some(libc::EINTR | libc::ENOSPC) => Ok(sent),
                    Some(libc::ENODEV) => Err(Error::NoSuchInterface { ifindex }),
                    _ => Err(error::kernel(
                        format!(
                            "run the generator out of ifindex {ifindex} (BPF_PROG_RUN live frames, kernel >= 5.18)"
                        ),
                        source,
                    )),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> UdpTemplate {
        UdpTemplate::new(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 1, 1),
        )
    }

    #[test]
    fn frame_is_valid_udp_ipv4() {
        let t = UdpTemplate {
            frame_len: 100,
            ..template()
        };
        let f = t.frame();
        assert_eq!(f.len(), 100);
        let (eth, rest) = etherparse::Ethernet2Header::from_slice(&f).unwrap();
        assert_eq!(eth.destination, t.dst_mac);
        assert_eq!(eth.source, t.src_mac);
        let (ip, rest) = etherparse::Ipv4Header::from_slice(rest).unwrap();
        assert_eq!(ip.total_len, 86);
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        assert_eq!(ip.time_to_live, 64);
        assert_eq!(ip.source, [10, 0, 0, 1]);
        let (udp, _) = etherparse::UdpHeader::from_slice(rest).unwrap();
        assert_eq!(
            (udp.source_port, udp.destination_port, udp.length),
            (1024, 9, 66)
        );
    }

    #[test]
    fn checksum_of_rfc1071_example_header() {
        // A well-known header (Wikipedia's IPv4 checksum example): checksum 0xb861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0x00,
            0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ip4_header_checksum(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(ip4_header_checksum(&h), 0);
    }

    #[test]
    fn template_limits() {
        assert!(
            UdpTemplate {
                frame_len: 59,
                ..template()
            }
            .validate()
            .is_err()
        );
        assert!(
            UdpTemplate {
                frame_len: 1515,
                ..template()
            }
            .validate()
            .is_err()
        );
        assert!(
            UdpTemplate {
                frame_len: 1514,
                ..template()
            }
            .validate()
            .is_ok()
        );
        assert!(
            UdpTemplate {
                flows: 0,
                ..template()
            }
            .validate()
            .is_err()
        );
        assert!(
            UdpTemplate {
                src_port: 65535,
                flows: 1,
                ..template()
            }
            .validate()
            .is_ok()
        );
        assert!(
            UdpTemplate {
                src_port: 65535,
                flows: 2,
                ..template()
            }
            .validate()
            .is_err()
        );
    }
}

//! The `xfwd` command: `xfwd run` starts the dataplane in the foreground; `xfwd show …` asks the
//! running instance over its control socket.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use xfwd::control::config::{
    BindMode, IcmpConfig, IdleMode, Martians, RpFilter, RunConfig, XdpMode, parse_cpu_list,
};
use xfwd::control::report::{ErrorsReport, StatsReport};
use xfwd::control::server::{self, DEFAULT_CONTROL, Request};
use xfwd::neigh::PendingLimits;

#[derive(Parser, Debug)]
#[command(
    name = "xfwd",
    version,
    about = "AF_XDP IPv4 forwarding dataplane that follows the Linux kernel's routes",
    long_about = "xfwd forwards IPv4 between the interfaces it drives at AF_XDP speed, using the \
                  routes, addresses and neighbours of the Linux kernel it runs on (set them with \
                  `ip`, FRR or BIRD). ARP, traffic for the router itself and anything xfwd does \
                  not handle go to the kernel."
)]
struct Cli {
    /// Log level (error, warn, info, debug, trace) or a tracing filter.
    #[arg(long, global = true, default_value = "info", env = "XFWD_LOG")]
    log_level: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the dataplane in the foreground until SIGINT/SIGTERM.
    Run(RunArgs),
    /// Ask the running instance.
    Show {
        #[command(subcommand)]
        what: Show,
    },
}

#[derive(Subcommand, Debug)]
enum Show {
    /// Packets forwarded, per interface and worker, drops by reason.
    Stats(ShowArgs),
    /// Every drop reason with its count and description.
    Errors {
        #[command(flatten)]
        common: ShowArgs,
        /// Include reasons that never fired.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Args, Debug)]
struct ShowArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Control socket of the instance to ask.
    #[arg(long, default_value = DEFAULT_CONTROL)]
    control: PathBuf,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Interface to forward between (repeat for each; order = port number).
    #[arg(long = "iface", value_name = "NAME", required = true)]
    ifaces: Vec<String>,
    /// CPUs for workers, e.g. `1`, `2-3`, `1,3`; worker i owns queue i of every interface.
    /// Default: one worker on the last CPU.
    #[arg(long, value_name = "LIST")]
    cpus: Option<String>,
    /// Control socket path.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONTROL)]
    control: PathBuf,
    /// How to attach the XDP program.
    #[arg(long, value_enum, default_value_t = XdpMode::Auto)]
    xdp_mode: XdpMode,
    /// How AF_XDP sockets bind (zero-copy needs driver support).
    #[arg(long, value_enum, default_value_t = BindMode::Auto)]
    bind_mode: BindMode,
    /// UMEM frame size in bytes (2048 or 4096).
    #[arg(long, default_value_t = 4096)]
    frame_size: u32,
    /// Descriptors in each AF_XDP ring (power of two).
    #[arg(long, default_value_t = 2048)]
    ring_size: u32,
    /// What workers do when idle.
    #[arg(long, value_enum, default_value_t = IdleMode::Adaptive)]
    idle: IdleMode,
    /// Ask the kernel to busy-poll the sockets (SO_PREFER_BUSY_POLL).
    #[arg(long)]
    busy_poll: bool,
    /// Packets held per unresolved next hop (Linux unres_qlen).
    #[arg(long, default_value_t = PendingLimits::default().per_nexthop)]
    unres_qlen: usize,
    /// Packets held per worker across all unresolved next hops.
    #[arg(long, default_value_t = PendingLimits::default().total)]
    pending_total: usize,
    /// Give up on an unresolved next hop after this many milliseconds.
    #[arg(long, default_value_t = PendingLimits::default().timeout.as_millis() as u64)]
    resolve_timeout_ms: u64,
    /// Back the UMEM with huge pages when available.
    #[arg(long)]
    huge_pages: bool,
    /// Reverse-path filter (Linux rp_filter; off like a fresh network namespace).
    #[arg(long, value_enum, default_value_t = RpFilter::Off)]
    rp_filter: RpFilter,
    /// Martian addresses: RFC 1812 (also class E and 169.254/16) or Linux's set.
    #[arg(long, value_enum, default_value_t = Martians::Rfc1812)]
    martians: Martians,
    /// Forward loose source-routed packets (Linux accept_source_route; default: drop them).
    #[arg(long)]
    accept_source_route: bool,
    /// Send no ICMP errors.
    #[arg(long)]
    no_icmp_errors: bool,
    /// Source ICMP errors from the inbound interface (icmp_errors_use_inbound_ifaddr).
    #[arg(long)]
    icmp_errors_use_inbound_ifaddr: bool,
    /// Per-destination ICMP error interval in ms (icmp_ratelimit; 0 = unlimited).
    #[arg(long, default_value_t = IcmpConfig::default().ratelimit_ms)]
    icmp_ratelimit: u32,
    /// ICMP types rate limited, bit t = type t (icmp_ratemask), e.g. 0x1818.
    #[arg(long, value_parser = parse_mask, default_value = "0x1818")]
    icmp_ratemask: u32,
    /// Global ICMP error rate (icmp_msgs_per_sec), shared by the workers.
    #[arg(long, default_value_t = IcmpConfig::default().msgs_per_sec)]
    icmp_msgs_per_sec: u32,
    /// Global ICMP error burst (icmp_msgs_burst).
    #[arg(long, default_value_t = IcmpConfig::default().msgs_burst)]
    icmp_msgs_burst: u32,
}

fn parse_mask(s: &str) -> Result<u32, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s:?}: {e}"))
}

impl RunArgs {
    fn config(self) -> Result<RunConfig> {
        let cpus = match &self.cpus {
            Some(list) => parse_cpu_list(list)?,
            None => {
                let n = std::thread::available_parallelism().map_or(1, |n| n.get());
                vec![n - 1]
            }
        };
        let cfg = RunConfig {
            interfaces: self.ifaces,
            cpus,
            control: self.control,
            xdp_mode: self.xdp_mode,
            bind_mode: self.bind_mode,
            frame_size: self.frame_size,
            ring_size: self.ring_size,
            idle: self.idle,
            busy_poll: self.busy_poll,
            pending: PendingLimits {
                per_nexthop: self.unres_qlen,
                total: self.pending_total,
                timeout: Duration::from_millis(self.resolve_timeout_ms),
                ..PendingLimits::default()
            },
            huge_pages: self.huge_pages,
            rp_filter: self.rp_filter,
            martians: self.martians,
            accept_source_route: self.accept_source_route,
            icmp: IcmpConfig {
                enabled: !self.no_icmp_errors,
                use_inbound_ifaddr: self.icmp_errors_use_inbound_ifaddr,
                ratelimit_ms: self.icmp_ratelimit,
                ratemask: self.icmp_ratemask,
                msgs_per_sec: self.icmp_msgs_per_sec,
                msgs_burst: self.icmp_msgs_burst,
            },
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match dispatch(cli.cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xfwd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Run(args) => xfwd::control::runtime::run(args.config()?),
        Cmd::Show {
            what: Show::Stats(a),
        } => {
            let data = server::request(&a.control, &Request::Stats)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&data)?);
            } else {
                let report: StatsReport = serde_json::from_value(data)?;
                print!("{}", report.render());
            }
            Ok(())
        }
        Cmd::Show {
            what: Show::Errors { common, all },
        } => {
            let data = server::request(&common.control, &Request::Errors)?;
            if common.json {
                println!("{}", serde_json::to_string_pretty(&data)?);
            } else {
                let report: ErrorsReport = serde_json::from_value(data)?;
                print!("{}", report.render(all));
            }
            Ok(())
        }
    }
}

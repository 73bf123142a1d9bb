//! The `xfwd` command: `xfwd run` starts the dataplane in the foreground; `xfwd show …` asks the
//! running instance over its control socket.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, CommandFactory, Parser, Subcommand};
use serde::de::DeserializeOwned;
use toml::Value;
use xfwd::control::config::{BindMode, IdleMode, Martians, MultipathHash, RpFilter, XdpMode};
use xfwd::control::report::{ErrorsReport, NeighboursReport, RoutesReport, StatsReport};
use xfwd::control::server::{self, DEFAULT_CONTROL, Request};
use xfwd::ops::config::{DEFAULT_PATH, ReloadOutcome, Source};

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
    /// Log level (error, warn, info, debug, trace) or a tracing filter [default: info, or the
    /// file's service.log_level].
    #[arg(long, global = true, env = "XFWD_LOG")]
    log_level: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the dataplane in the foreground until SIGINT/SIGTERM (SIGHUP reloads the file).
    Run(RunArgs),
    /// Validate a configuration file and exit (0 when valid).
    Check {
        /// The file to check.
        #[arg(short = 'c', long = "config", value_name = "FILE", default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Ask the running instance.
    Show {
        #[command(subcommand)]
        what: Show,
    },
    /// Reset what `xfwd show` counts (metrics keep counting).
    Clear {
        #[command(subcommand)]
        what: Clear,
    },
    /// Make the running instance re-read its configuration file (as SIGHUP does) and say what
    /// changed and what needs a restart.
    Reload(ShowArgs),
    /// Check the NICs and CPUs of the configured interfaces against what xfwd needs (queues =
    /// workers, RSS, GRO/LRO off, IRQ affinity, busy polling, driver support) and print the
    /// commands that would fix them; `--apply` runs them.
    Tune {
        #[command(flatten)]
        run: RunArgs,
        /// Run the commands instead of printing them.
        #[arg(long)]
        apply: bool,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Capture what the pipeline does to the next N packets into a pcapng file (tcpdump -r,
    /// Wireshark): each packet as received and, when forwarded, as sent, with the verdict as the
    /// packet comment.
    Trace {
        /// Packets to capture.
        #[arg(long, default_value_t = 10)]
        count: u32,
        /// Only packets dropped for this reason (see `xfwd show errors --all`).
        #[arg(long, value_name = "REASON")]
        drop_reason: Option<String>,
        /// Stop after this many seconds even if fewer packets came.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
        /// Output file (pcapng).
        #[arg(short = 'w', value_name = "FILE")]
        write: PathBuf,
        /// Control socket of the instance to ask.
        #[arg(long, default_value = DEFAULT_CONTROL)]
        control: PathBuf,
    },
    /// Write the manual pages (xfwd.1, xfwd-run.1, ...) generated from this CLI into DIR.
    #[command(hide = true)]
    Man {
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
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
    /// Per worker: packets, batches, packets per batch, busy ratio, nanoseconds per packet.
    Runtime(ShowArgs),
    /// Per interface and queue: packets and bytes, XDP mode, AF_XDP socket statistics.
    Interfaces(ShowArgs),
    /// The kernel's main-table routes xfwd follows; with an address, the longest match and what
    /// xfwd's FIB does with it; with a prefix, that route.
    Routes {
        #[command(flatten)]
        common: ShowArgs,
        /// `ADDRESS` or `PREFIX/LEN`.
        target: Option<String>,
    },
    /// Neighbour (ARP) entries on xfwd's interfaces.
    Neighbours(ShowArgs),
}

#[derive(Subcommand, Debug)]
enum Clear {
    /// Zero the counters `xfwd show` prints.
    Counters(ShowArgs),
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

/// Flags of `xfwd run`. Each overrides the configuration file's key of the same meaning
/// (docs/configuration.md); defaults are the file's defaults.
#[derive(Args, Debug)]
struct RunArgs {
    /// Configuration file [default: /etc/xfwd/xfwd.toml when it exists].
    #[arg(short = 'c', long = "config", value_name = "FILE", env = "XFWD_CONFIG")]
    config: Option<PathBuf>,
    /// Interface to forward between (repeat for each; order = port number).
    #[arg(long = "iface", value_name = "NAME")]
    ifaces: Vec<String>,
    /// CPUs for workers, e.g. `1`, `2-3`, `1,3`; worker i owns queue i of every interface
    /// [default: one worker on the last CPU].
    #[arg(long, value_name = "LIST")]
    cpus: Option<String>,
    /// Control socket path [default: /run/xfwd/xfwd.sock].
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// Serve Prometheus metrics on ADDRESS:PORT (e.g. 127.0.0.1:9469) [default: off].
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// How to attach the XDP program [default: auto].
    #[arg(long, value_enum)]
    xdp_mode: Option<XdpMode>,
    /// How AF_XDP sockets bind (zero-copy needs driver support) [default: auto].
    #[arg(long, value_enum)]
    bind_mode: Option<BindMode>,
    /// UMEM frame size in bytes (2048 or 4096) [default: 4096].
    #[arg(long)]
    frame_size: Option<u32>,
    /// Descriptors in each AF_XDP ring (power of two) [default: 4096].
    #[arg(long)]
    ring_size: Option<u32>,
    /// What workers do when idle [default: adaptive].
    #[arg(long, value_enum)]
    idle: Option<IdleMode>,
    /// Ask the kernel to busy-poll the sockets (SO_PREFER_BUSY_POLL).
    #[arg(long)]
    busy_poll: bool,
    /// Packets held per unresolved next hop (Linux unres_qlen) [default: 64].
    #[arg(long)]
    unres_qlen: Option<u32>,
    /// Packets held per worker across all unresolved next hops [default: 1024].
    #[arg(long)]
    pending_total: Option<u32>,
    /// Give up on an unresolved next hop after this many milliseconds [default: 3000].
    #[arg(long)]
    resolve_timeout_ms: Option<u32>,
    /// Back the UMEM with huge pages when available.
    #[arg(long)]
    huge_pages: bool,
    /// Reverse-path filter (Linux rp_filter; default off, like a fresh network namespace).
    #[arg(long, value_enum)]
    rp_filter: Option<RpFilter>,
    /// Martian addresses: RFC 1812 (also class E and 169.254/16; default) or Linux's set.
    #[arg(long, value_enum)]
    martians: Option<Martians>,
    /// What multipath routes hash to pick a path: l3 = addresses (Linux policy 0, default),
    /// l4 = the 5-tuple (policy 1).
    #[arg(long, value_enum)]
    multipath_hash: Option<MultipathHash>,
    /// Forward loose source-routed packets (Linux accept_source_route; default: drop them).
    #[arg(long)]
    accept_source_route: bool,
    /// Send no ICMP errors.
    #[arg(long)]
    no_icmp_errors: bool,
    /// Source ICMP errors from the inbound interface (icmp_errors_use_inbound_ifaddr).
    #[arg(long)]
    icmp_errors_use_inbound_ifaddr: bool,
    /// Per-destination ICMP error interval in ms (icmp_ratelimit, default 1000; 0 = unlimited).
    #[arg(long)]
    icmp_ratelimit: Option<u32>,
    /// ICMP types rate limited, bit t = type t (icmp_ratemask, default 0x1818).
    #[arg(long, value_parser = parse_mask)]
    icmp_ratemask: Option<u32>,
    /// Global ICMP error rate (icmp_msgs_per_sec, default 1000), shared by the workers.
    #[arg(long)]
    icmp_msgs_per_sec: Option<u32>,
    /// Global ICMP error burst (icmp_msgs_burst, default 50).
    #[arg(long)]
    icmp_msgs_burst: Option<u32>,
}

fn parse_mask(s: &str) -> Result<u32, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s:?}: {e}"))
}

fn enum_name<T: clap::ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}

impl RunArgs {
    /// The file, then each flag given as an override of its key.
    fn source(self, log_level: Option<String>) -> Source {
        let mut src = Source::with_file(self.config);
        if let Some(l) = log_level {
            src.flag("service.log_level", l);
        }
        if !self.ifaces.is_empty() {
            let list: Vec<Value> = self.ifaces.into_iter().map(Value::from).collect();
            src.flag("dataplane.interfaces", list);
        }
        if let Some(v) = self.cpus {
            src.flag("dataplane.cpus", v);
        }
        if let Some(v) = self.control {
            src.flag("service.control_socket", v.to_string_lossy().into_owned());
        }
        if let Some(v) = self.metrics {
            src.flag("service.metrics", v);
        }
        if let Some(v) = self.xdp_mode {
            src.flag("dataplane.xdp_mode", enum_name(&v));
        }
        if let Some(v) = self.bind_mode {
            src.flag("dataplane.bind_mode", enum_name(&v));
        }
        if let Some(v) = self.frame_size {
            src.flag("dataplane.frame_size", i64::from(v));
        }
        if let Some(v) = self.ring_size {
            src.flag("dataplane.ring_size", i64::from(v));
        }
        if let Some(v) = self.idle {
            src.flag("dataplane.idle", enum_name(&v));
        }
        if self.busy_poll {
            src.flag("dataplane.busy_poll", true);
        }
        if let Some(v) = self.unres_qlen {
            src.flag("neighbour.unres_qlen", i64::from(v));
        }
        if let Some(v) = self.pending_total {
            src.flag("neighbour.pending_total", i64::from(v));
        }
        if let Some(v) = self.resolve_timeout_ms {
            src.flag("neighbour.resolve_timeout_ms", i64::from(v));
        }
        if self.huge_pages {
            src.flag("dataplane.huge_pages", true);
        }
        if let Some(v) = self.rp_filter {
            src.flag("forwarding.rp_filter", enum_name(&v));
        }
        if let Some(v) = self.martians {
            src.flag("forwarding.martians", enum_name(&v));
        }
        if self.accept_source_route {
            src.flag("forwarding.accept_source_route", true);
        }
        if let Some(v) = self.multipath_hash {
            src.flag("forwarding.multipath_hash", enum_name(&v));
        }
        if self.no_icmp_errors {
            src.flag("icmp.enabled", false);
        }
        if self.icmp_errors_use_inbound_ifaddr {
            src.flag("icmp.use_inbound_ifaddr", true);
        }
        if let Some(v) = self.icmp_ratelimit {
            src.flag("icmp.ratelimit_ms", i64::from(v));
        }
        if let Some(v) = self.icmp_ratemask {
            src.flag("icmp.ratemask", i64::from(v));
        }
        if let Some(v) = self.icmp_msgs_per_sec {
            src.flag("icmp.msgs_per_sec", i64::from(v));
        }
        if let Some(v) = self.icmp_msgs_burst {
            src.flag("icmp.msgs_burst", i64::from(v));
        }
        src
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    xfwd::ops::log::init(cli.log_level.as_deref().unwrap_or("info"));
    match dispatch(cli.cmd, cli.log_level) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xfwd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sends `req` and prints the answer as JSON or through `render`.
fn ask<T: DeserializeOwned>(
    a: &ShowArgs,
    req: &Request,
    render: impl Fn(T) -> String,
) -> Result<()> {
    let data = server::request(&a.control, req)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&data)?);
    } else {
        print!("{}", render(serde_json::from_value(data)?));
    }
    Ok(())
}

fn dispatch(cmd: Cmd, log_level: Option<String>) -> Result<()> {
    match cmd {
        Cmd::Run(args) => {
            let source = args.source(log_level);
            let settings = source.load()?;
            xfwd::ops::log::set_level(&settings.log_level)?;
            if let Some(f) = &source.file {
                tracing::info!("configuration: {}", f.display());
            }
            xfwd::control::runtime::run_service(settings, Some(source))
        }
        Cmd::Check { config } => {
            let src = Source {
                file: Some(config.clone()),
                overrides: Vec::new(),
            };
            let s = src.load()?;
            println!(
                "{}: OK ({} interface(s): {}; {} worker(s) on CPU {:?})",
                config.display(),
                s.run.interfaces.len(),
                s.run.interfaces.join(", "),
                s.run.cpus.len(),
                s.run.cpus
            );
            Ok(())
        }
        Cmd::Show { what } => match what {
            Show::Stats(a) => ask(&a, &Request::Stats, |r: StatsReport| r.render()),
            Show::Errors { common, all } => {
                ask(&common, &Request::Errors, |r: ErrorsReport| r.render(all))
            }
            Show::Runtime(a) => ask(&a, &Request::Runtime, |r: StatsReport| r.render_runtime()),
            Show::Interfaces(a) => ask(&a, &Request::Interfaces, |r: StatsReport| {
                r.render_interfaces()
            }),
            Show::Routes { common, target } => ask(
                &common,
                &Request::Routes { lookup: target },
                |r: RoutesReport| r.render(),
            ),
            Show::Neighbours(a) => ask(&a, &Request::Neighbours, |r: NeighboursReport| r.render()),
        },
        Cmd::Clear {
            what: Clear::Counters(a),
        } => ask(&a, &Request::ClearCounters, |_: serde_json::Value| {
            "counters cleared\n".to_owned()
        }),
        Cmd::Tune { run, apply, json } => {
            let settings = run.source(log_level).load()?;
            let r = &settings.run;
            let steps = xfwd::ops::tune::plan(&r.interfaces, &r.cpus, r.busy_poll);
            if json {
                println!("{}", serde_json::to_string_pretty(&steps)?);
            } else {
                print!("{}", xfwd::ops::tune::render(&steps));
            }
            if apply {
                let failed = xfwd::ops::tune::apply(&steps);
                for (st, e) in &failed {
                    let cmd = st.action.as_ref().map(|a| a.shell()).unwrap_or_default();
                    eprintln!("xfwd: tune: {}: `{cmd}` failed: {e}", st.iface);
                }
                if !failed.is_empty() {
                    anyhow::bail!("{} change(s) could not be applied", failed.len());
                }
                let left = xfwd::ops::tune::plan(&r.interfaces, &r.cpus, r.busy_poll);
                let changes = left
                    .iter()
                    .filter(|s| s.kind == xfwd::ops::tune::Kind::Change)
                    .count();
                println!("applied; {changes} change(s) still suggested");
            }
            Ok(())
        }
        Cmd::Trace {
            count,
            drop_reason,
            timeout,
            write,
            control,
        } => {
            let req = Request::Trace {
                count,
                drop_reason,
                timeout_ms: timeout * 1000,
            };
            let data = server::request_timeout(
                &control,
                &req,
                std::time::Duration::from_secs(timeout + 10),
            )?;
            let report: xfwd::ops::trace::TraceReport = serde_json::from_value(data)?;
            let f = std::fs::File::create(&write)
                .map_err(|e| anyhow::anyhow!("creating {}: {e}", write.display()))?;
            report.write_pcapng(std::io::BufWriter::new(f))?;
            print!("{}", report.summary());
            println!(
                "{} packet(s) written to {}",
                report.records.len(),
                write.display()
            );
            Ok(())
        }
        Cmd::Man { out } => {
            std::fs::create_dir_all(&out)?;
            clap_mangen::generate_to(Cli::command(), &out)?;
            Ok(())
        }
        Cmd::Reload(a) => ask(&a, &Request::Reload, |r: ReloadOutcome| {
            format!("{}\n", r.render())
        }),
    }
}

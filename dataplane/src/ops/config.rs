//! `/etc/xfwd/xfwd.toml`: the configuration file, its key table, and `xfwd check`.
//!
//! ```text
//!   defaults ─► file (every key looked up in KEYS: unknown → error with "did you mean")
//!            ─► command-line flags (the same KEYS entries, so a flag is validated like the key)
//!            ─► RunConfig::validate (cross-key checks)
//! ```
//!
//! Every key is one entry of [`KEYS`]: its dotted name, type, default, whether `xfwd reload`
//! applies it live, its documentation, and the setter that validates and stores it. Adding a key
//! is adding one entry; `docs/configuration.md` and `deploy/xfwd.toml` are checked against the
//! table by a test.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use toml::Value;

use crate::control::config::{
    BindMode, IdleMode, Martians, MultipathHash, RpFilter, RunConfig, XdpMode, parse_cpu_list,
};

/// Where the configuration file is looked for when `-c` is not given.
pub const DEFAULT_PATH: &str = "/etc/xfwd/xfwd.toml";

/// Everything the file and flags configure.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The dataplane configuration.
    pub run: RunConfig,
    /// Log level or `tracing` filter.
    pub log_level: String,
    /// Prometheus endpoint, off when `None`.
    pub metrics: Option<SocketAddr>,
    /// Effective value of every key set by the file or a flag (for `reload`'s diff).
    pub values: BTreeMap<&'static str, Value>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            run: RunConfig::default(),
            log_level: "info".to_owned(),
            metrics: None,
            values: BTreeMap::new(),
        }
    }
}

/// One configuration key.
#[derive(Debug)]
pub struct Key {
    /// Dotted name: `table.key`, or `key` at the top level.
    pub name: &'static str,
    /// TOML type, as documented.
    pub ty: &'static str,
    /// Default, as documented.
    pub default: &'static str,
    /// Whether `xfwd reload` (SIGHUP) applies a change without a restart.
    pub live: bool,
    /// The equivalent `xfwd run` flag, if any.
    pub flag: Option<&'static str>,
    /// What it does.
    pub doc: &'static str,
    /// Validates and stores the value.
    pub set: fn(&mut Settings, &Value) -> Result<(), String>,
}

/// Every key of the file. One entry per key; the order is the documentation order.
pub const KEYS: &[Key] = &[
    Key {
        name: "service.log_level",
        ty: "string",
        default: "\"info\"",
        live: true,
        flag: Some("--log-level"),
        doc: "Log level (`error`, `warn`, `info`, `debug`, `trace`) or a `tracing` filter \
              such as `info,xfwd::control=debug`.",
        set: |s, v| {
            let l = string(v)?;
            tracing_subscriber::EnvFilter::try_new(l).map_err(|e| format!("{l:?}: {e}"))?;
            s.log_level = l.to_owned();
            Ok(())
        },
    },
    Key {
        name: "service.control_socket",
        ty: "string",
        default: "\"/run/xfwd/xfwd.sock\"",
        live: false,
        flag: Some("--control"),
        doc: "Path of the control socket (`xfwd show`, `xfwd reload`). Created mode 0600.",
        set: |s, v| {
            let p = string(v)?;
            if !p.starts_with('/') {
                return Err(format!("{p:?}: must be an absolute path"));
            }
            s.run.control = PathBuf::from(p);
            Ok(())
        },
    },
    Key {
        name: "service.metrics",
        ty: "string",
        default: "\"\" (off)",
        live: true,
        flag: Some("--metrics"),
        doc: "Address the Prometheus endpoint listens on, e.g. `127.0.0.1:9469`; empty = off. \
              Served at `/metrics`.",
        set: |s, v| {
            let a = string(v)?;
            s.metrics = if a.is_empty() {
                None
            } else {
                Some(
                    a.parse()
                        .map_err(|_| format!("{a:?}: not an ADDRESS:PORT like 127.0.0.1:9469"))?,
                )
            };
            Ok(())
        },
    },
    Key {
        name: "dataplane.interfaces",
        ty: "array of strings",
        default: "(required)",
        live: false,
        flag: Some("--iface"),
        doc: "Interfaces xfwd forwards between, in port order. Each needs at least as many \
              RX queues as there are workers: worker `i` owns queue `i` of every interface.",
        set: |s, v| {
            let arr = v.as_array().ok_or("expected an array of interface names")?;
            let mut names = Vec::new();
            for item in arr {
                names.push(string(item)?.to_owned());
            }
            s.run.interfaces = names;
            Ok(())
        },
    },
    Key {
        name: "dataplane.cpus",
        ty: "string",
        default: "the last CPU",
        live: false,
        flag: Some("--cpus"),
        doc: "CPUs for the workers, one worker per CPU (`\"1\"`, `\"2-3\"`, `\"1,3\"`). The \
              number of CPUs is the number of queues used on every interface.",
        set: |s, v| {
            s.run.cpus = parse_cpu_list(string(v)?).map_err(|e| format!("{e:#}"))?;
            Ok(())
        },
    },
    Key {
        name: "dataplane.xdp_mode",
        ty: "string",
        default: "\"auto\"",
        live: false,
        flag: Some("--xdp-mode"),
        doc: "How the XDP program attaches: `auto` (native, else generic), `native`, `generic`.",
        set: |s, v| {
            s.run.xdp_mode = value_enum::<XdpMode>(v)?;
            Ok(())
        },
    },
    Key {
        name: "dataplane.bind_mode",
        ty: "string",
        default: "\"auto\"",
        live: false,
        flag: Some("--bind-mode"),
        doc: "How AF_XDP sockets bind: `auto` (zero-copy where the driver can), `zero-copy`, \
              `copy`.",
        set: |s, v| {
            s.run.bind_mode = value_enum::<BindMode>(v)?;
            Ok(())
        },
    },
    Key {
        name: "dataplane.frame_size",
        ty: "integer",
        default: "4096",
        live: false,
        flag: Some("--frame-size"),
        doc: "UMEM frame size in bytes: 2048 or 4096.",
        set: |s, v| {
            let n = int(v, 2048, 4096)?;
            if n != 2048 && n != 4096 {
                return Err(format!("{n}: must be 2048 or 4096"));
            }
            s.run.frame_size = n as u32;
            Ok(())
        },
    },
    Key {
        name: "dataplane.ring_size",
        ty: "integer",
        default: "4096",
        live: false,
        flag: Some("--ring-size"),
        doc: "Descriptors in each AF_XDP ring (RX, TX, fill, completion): a power of two from \
              64 to 16384.",
        set: |s, v| {
            let n = int(v, 64, 16384)?;
            if !(n as u64).is_power_of_two() {
                return Err(format!("{n}: must be a power of two"));
            }
            s.run.ring_size = n as u32;
            Ok(())
        },
    },
    Key {
        name: "dataplane.idle",
        ty: "string",
        default: "\"adaptive\"",
        live: false,
        flag: Some("--idle"),
        doc: "What workers do with empty rings: `adaptive` (spin a while, then sleep in \
              `poll(2)`) or `spin` (lowest latency, core always at 100 %).",
        set: |s, v| {
            s.run.idle = value_enum::<IdleMode>(v)?;
            Ok(())
        },
    },
    Key {
        name: "dataplane.busy_poll",
        ty: "boolean",
        default: "false",
        live: false,
        flag: Some("--busy-poll"),
        doc: "Ask the kernel to busy-poll the sockets (`SO_PREFER_BUSY_POLL`, budget = batch).",
        set: |s, v| {
            s.run.busy_poll = boolean(v)?;
            Ok(())
        },
    },
    Key {
        name: "dataplane.huge_pages",
        ty: "boolean",
        default: "false",
        live: false,
        flag: Some("--huge-pages"),
        doc: "Back the UMEM with huge pages when available (falls back to normal pages).",
        set: |s, v| {
            s.run.huge_pages = boolean(v)?;
            Ok(())
        },
    },
    Key {
        name: "neighbour.unres_qlen",
        ty: "integer",
        default: "64",
        live: true,
        flag: Some("--unres-qlen"),
        doc: "Packets held per unresolved next hop while the kernel resolves it (Linux \
              `unres_qlen`); more are dropped as `neigh_queue_full`. At most pending_total.",
        set: |s, v| {
            s.run.pending.per_nexthop = int(v, 1, 65536)? as usize;
            Ok(())
        },
    },
    Key {
        name: "neighbour.pending_total",
        ty: "integer",
        default: "1024",
        live: false,
        flag: Some("--pending-total"),
        doc: "Packets held per worker across all unresolved next hops (sizes the UMEM, hence \
              not live).",
        set: |s, v| {
            s.run.pending.total = int(v, 1, 1 << 20)? as usize;
            Ok(())
        },
    },
    Key {
        name: "neighbour.resolve_timeout_ms",
        ty: "integer",
        default: "3000",
        live: true,
        flag: Some("--resolve-timeout-ms"),
        doc: "Give up on an unresolved next hop after this many milliseconds (then ICMP host \
              unreachable); at least 100.",
        set: |s, v| {
            s.run.pending.timeout = Duration::from_millis(int(v, 100, 600_000)? as u64);
            Ok(())
        },
    },
    Key {
        name: "forwarding.rp_filter",
        ty: "string",
        default: "\"off\"",
        live: false,
        flag: Some("--rp-filter"),
        doc: "Reverse-path filter, Linux `rp_filter` semantics (`fib_validate_source`): `off` \
              (a fresh Linux namespace), `strict` (RFC 3704: the route back to the source \
              leaves by the ingress interface), `loose` (some unicast route back exists).",
        set: |s, v| {
            s.run.rp_filter = value_enum::<RpFilter>(v)?;
            Ok(())
        },
    },
    Key {
        name: "forwarding.martians",
        ty: "string",
        default: "\"rfc1812\"",
        live: false,
        flag: Some("--martians"),
        doc: "Which addresses are never forwarded: `rfc1812` (also class E and 169.254/16, \
              as sources and destinations) or `linux` (Linux `ip_route_input_slow`'s set).",
        set: |s, v| {
            s.run.martians = value_enum::<Martians>(v)?;
            Ok(())
        },
    },
    Key {
        name: "forwarding.accept_source_route",
        ty: "boolean",
        default: "false",
        live: false,
        flag: Some("--accept-source-route"),
        doc: "Forward source-routed packets (Linux `accept_source_route`); dropped as \
              `ip4_source_route` otherwise.",
        set: |s, v| {
            s.run.accept_source_route = boolean(v)?;
            Ok(())
        },
    },
    Key {
        name: "forwarding.multipath_hash",
        ty: "string",
        default: "\"l3\"",
        live: false,
        flag: Some("--multipath-hash"),
        doc: "What multipath (ECMP) routes hash to pick a path: `l3` (source and destination \
              addresses, Linux `fib_multipath_hash_policy` 0) or `l4` (the 5-tuple, policy 1; \
              fragments and protocols without ports hash addresses and protocol).",
        set: |s, v| {
            s.run.multipath_hash = value_enum::<MultipathHash>(v)?;
            Ok(())
        },
    },
    Key {
        name: "icmp.enabled",
        ty: "boolean",
        default: "true",
        live: false,
        flag: Some("--no-icmp-errors"),
        doc: "Send ICMP errors (time exceeded, destination unreachable, fragmentation needed, \
              parameter problem); `false` drops silently (still counted).",
        set: |s, v| {
            s.run.icmp.enabled = boolean(v)?;
            Ok(())
        },
    },
    Key {
        name: "icmp.use_inbound_ifaddr",
        ty: "boolean",
        default: "false",
        live: false,
        flag: Some("--icmp-errors-use-inbound-ifaddr"),
        doc: "Source ICMP errors from the interface the packet came in on (Linux \
              `icmp_errors_use_inbound_ifaddr`) instead of the route back to the sender.",
        set: |s, v| {
            s.run.icmp.use_inbound_ifaddr = boolean(v)?;
            Ok(())
        },
    },
    Key {
        name: "icmp.ratelimit_ms",
        ty: "integer",
        default: "1000",
        live: false,
        flag: Some("--icmp-ratelimit"),
        doc: "Per-destination interval between rate-limited ICMP errors in ms (Linux \
              `icmp_ratelimit`); 0 = no per-destination limit.",
        set: |s, v| {
            s.run.icmp.ratelimit_ms = int(v, 0, 3_600_000)? as u32;
            Ok(())
        },
    },
    Key {
        name: "icmp.ratemask",
        ty: "integer",
        default: "0x1818",
        live: false,
        flag: Some("--icmp-ratemask"),
        doc: "ICMP types rate limited per destination, bit t = type t (Linux `icmp_ratemask`; \
              0x1818 = unreachable, source quench, time exceeded, parameter problem).",
        set: |s, v| {
            s.run.icmp.ratemask = int(v, 0, i64::from(u32::MAX))? as u32;
            Ok(())
        },
    },
    Key {
        name: "icmp.msgs_per_sec",
        ty: "integer",
        default: "1000",
        live: false,
        flag: Some("--icmp-msgs-per-sec"),
        doc: "Global ICMP error rate (Linux `icmp_msgs_per_sec`), split between the workers.",
        set: |s, v| {
            s.run.icmp.msgs_per_sec = int(v, 0, 1_000_000_000)? as u32;
            Ok(())
        },
    },
    Key {
        name: "icmp.msgs_burst",
        ty: "integer",
        default: "50",
        live: false,
        flag: Some("--icmp-msgs-burst"),
        doc: "Global ICMP error burst (Linux `icmp_msgs_burst`).",
        set: |s, v| {
            s.run.icmp.msgs_burst = int(v, 0, 1_000_000_000)? as u32;
            Ok(())
        },
    },
];

/// Looks a key up by dotted name.
pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

fn string(v: &Value) -> Result<&str, String> {
    v.as_str()
        .ok_or_else(|| format!("expected a string, found {}", v.type_str()))
}

fn boolean(v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("expected true or false, found {}", v.type_str()))
}

fn int(v: &Value, lo: i64, hi: i64) -> Result<i64, String> {
    let n = v
        .as_integer()
        .ok_or_else(|| format!("expected an integer, found {}", v.type_str()))?;
    if !(lo..=hi).contains(&n) {
        return Err(format!("{n}: must be from {lo} to {hi}"));
    }
    Ok(n)
}

fn value_enum<T: clap::ValueEnum>(v: &Value) -> Result<T, String> {
    let s = string(v)?;
    T::from_str(s, false).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|x| x.to_possible_value().map(|p| p.get_name().to_owned()))
            .collect();
        format!("{s:?}: expected one of {}", names.join(", "))
    })
}

/// Where the settings come from: an optional file, then flags (as key overrides).
#[derive(Clone, Debug, Default)]
pub struct Source {
    /// The file, if any.
    pub file: Option<PathBuf>,
    /// Flags given on the command line, as `(key, value)`; they win over the file.
    pub overrides: Vec<(&'static str, Value)>,
}

impl Source {
    /// The file given with `-c`, else [`DEFAULT_PATH`] if it exists, else none.
    pub fn with_file(explicit: Option<PathBuf>) -> Source {
        let file = explicit.or_else(|| {
            let p = PathBuf::from(DEFAULT_PATH);
            p.exists().then_some(p)
        });
        Source {
            file,
            overrides: Vec::new(),
        }
    }

    /// Adds a flag's value for `key`.
    ///
    /// # Panics
    ///
    /// When `key` is not in [`KEYS`] (a programming error, caught by the tests).
    pub fn flag(&mut self, key: &'static str, v: impl Into<Value>) {
        assert!(self::key(key).is_some(), "flag for unknown key {key}");
        self.overrides.push((key, v.into()));
    }

    /// Reads the file, applies the flags and validates.
    ///
    /// # Errors
    ///
    /// Every problem found, one per line, each naming the file, line, column and key (or the
    /// flag).
    pub fn load(&self) -> Result<Settings> {
        let mut s = Settings::default();
        let mut errors = Vec::new();
        if let Some(path) = &self.file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            errors = apply_text(&mut s, path, &text);
        }
        for (k, v) in &self.overrides {
            let key = key(k).expect("checked in flag()");
            match (key.set)(&mut s, v) {
                Ok(()) => {
                    s.values.insert(key.name, v.clone());
                }
                Err(e) if e.starts_with("--") => errors.push(e),
                Err(e) => errors.push(format!("{} {e}", key.flag.unwrap_or(key.name))),
            }
        }
        if errors.is_empty() && s.run.interfaces.is_empty() {
            errors.push(match &self.file {
                Some(p) => format!(
                    "{}: no interfaces: set dataplane.interfaces (or give --iface NAME)",
                    p.display()
                ),
                None => format!(
                    "no interfaces: give --iface NAME (once per interface), or set \
                     dataplane.interfaces in {DEFAULT_PATH} or a file given with -c"
                ),
            });
        }
        if errors.is_empty()
            && let Err(e) = s.run.validate()
        {
            let from = self
                .file
                .as_ref()
                .map_or_else(String::new, |p| format!("{}: ", p.display()));
            errors.push(format!("{from}{e:#}"));
        }
        if !errors.is_empty() {
            bail!("{}", errors.join("\n"));
        }
        Ok(s)
    }
}

/// A position in the file, 1-based.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

/// Applies the file's keys to `s`; returns the errors, each located.
fn apply_text(s: &mut Settings, path: &Path, text: &str) -> Vec<String> {
    let at = |span: Option<Range<usize>>| match span {
        Some(r) => {
            let (l, c) = line_col(text, r.start);
            format!("{}:{l}:{c}", path.display())
        }
        None => path.display().to_string(),
    };
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            let e: toml::de::Error = e;
            return vec![format!("{}: {}", at(e.span()), e.message().trim_end())];
        }
    };
    let spans = key_spans(text);
    let mut errors = Vec::new();
    let mut leaves = Vec::new();
    flatten("", &table, &mut leaves);
    for (name, v) in leaves {
        let (kspan, vspan) = spans.get(&name).cloned().unwrap_or((None, None));
        if is_section(&name) {
            errors.push(format!(
                "{}: {name}: expected a table ([{name}]), found {}",
                at(vspan.or(kspan)),
                v.type_str()
            ));
            continue;
        }
        let Some(key) = key(&name) else {
            let hint = suggest(&name).map_or_else(String::new, |m| format!(" (did you mean {m}?)"));
            errors.push(format!("{}: {name}: unknown key{hint}", at(kspan)));
            continue;
        };
        match (key.set)(s, v) {
            Ok(()) => {
                s.values.insert(key.name, v.clone());
            }
            Err(e) => errors.push(format!("{}: {name}: {e}", at(vspan.or(kspan)))),
        }
    }
    errors
}

/// Leaves of the table as `(dotted name, value)`. A table that is not a known section is a leaf
/// too, so it is reported as unknown.
fn flatten<'a>(prefix: &str, t: &'a toml::Table, out: &mut Vec<(String, &'a Value)>) {
    for (k, v) in t {
        let name = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Table(sub) if is_section(&name) => flatten(&name, sub, out),
            _ => out.push((name, v)),
        }
    }
}

fn is_section(name: &str) -> bool {
    KEYS.iter().any(|k| {
        k.name
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// Spans of every key and value, by dotted name.
type Spans = HashMap<String, (Option<Range<usize>>, Option<Range<usize>>)>;

fn key_spans(text: &str) -> Spans {
    fn walk(prefix: &str, t: &toml::de::DeTable<'_>, out: &mut Spans) {
        for (k, v) in t {
            let name = if prefix.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{prefix}.{}", k.get_ref())
            };
            if let toml::de::DeValue::Table(sub) = v.get_ref() {
                walk(&name, sub, out);
            }
            out.insert(name, (Some(k.span()), Some(v.span())));
        }
    }
    let mut out = HashMap::new();
    if let Ok(t) = toml::de::DeTable::parse(text) {
        walk("", t.get_ref(), &mut out);
    }
    out
}

/// The closest known key (or section), if close enough to be a typo.
fn suggest(name: &str) -> Option<&'static str> {
    let leaf = name.rsplit('.').next().unwrap_or(name);
    KEYS.iter()
        .map(|k| {
            let kleaf = k.name.rsplit('.').next().unwrap_or(k.name);
            (
                levenshtein(name, k.name).min(levenshtein(leaf, kleaf) + 1),
                k.name,
            )
        })
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// What a reload found: keys applied live and keys that need a restart.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReloadOutcome {
    /// Keys whose change was applied.
    pub applied: Vec<String>,
    /// Keys whose change takes effect only after `systemctl restart xfwd`.
    pub needs_restart: Vec<String>,
}

impl ReloadOutcome {
    /// One line for people.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if self.applied.is_empty() && self.needs_restart.is_empty() {
            s.push_str("reloaded: nothing changed");
        } else {
            let _ = write!(s, "reloaded: applied [{}]", self.applied.join(", "));
            if !self.needs_restart.is_empty() {
                let _ = write!(
                    s,
                    "; changed but need a restart: [{}]",
                    self.needs_restart.join(", ")
                );
            }
        }
        s
    }
}

/// Which keys differ between two loads, split by whether they can change live.
pub fn diff(old: &Settings, new: &Settings) -> ReloadOutcome {
    let mut out = ReloadOutcome::default();
    for k in KEYS {
        if old.values.get(k.name) != new.values.get(k.name) {
            if k.live {
                out.applied.push(k.name.to_owned());
            } else {
                out.needs_restart.push(k.name.to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Settings> {
        let dir =
            std::env::temp_dir().join(format!("xfwd-cfg-{}-{}", std::process::id(), text.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("xfwd.toml");
        std::fs::write(&path, text).unwrap();
        let r = Source {
            file: Some(path),
            overrides: Vec::new(),
        }
        .load();
        let _ = std::fs::remove_dir_all(dir);
        r
    }

    #[test]
    fn reads_keys_and_flags_win() {
        let text = "[service]\nlog_level = \"debug\"\nmetrics = \"127.0.0.1:9469\"\n\
                    [dataplane]\ninterfaces = [\"a\", \"b\"]\ncpus = \"0\"\nring_size = 1024\n";
        let s = load(text).unwrap();
        assert_eq!(s.run.interfaces, ["a", "b"]);
        assert_eq!(s.run.ring_size, 1024);
        assert_eq!(s.log_level, "debug");
        assert_eq!(s.metrics, Some("127.0.0.1:9469".parse().unwrap()));
        let mut src = Source {
            file: None,
            overrides: Vec::new(),
        };
        src.flag("dataplane.interfaces", vec![Value::from("x")]);
        src.flag("dataplane.cpus", "0");
        src.flag("dataplane.ring_size", 512);
        let s = src.load().unwrap();
        assert_eq!(s.run.ring_size, 512);
        assert_eq!(s.run.interfaces, ["x"]);
    }

    #[test]
    fn errors_name_file_line_and_key_and_suggest() {
        let text = "[dataplane]\ninterfaces = [\"a\"]\ncpus = \"0\"\nring_sise = 1024\n\
                    frame_size = 3000\n[neighbor]\nunres_qlen = 3\n";
        let e = load(text).unwrap_err().to_string();
        assert!(
            e.contains("xfwd.toml:4:1: dataplane.ring_sise: unknown key (did you mean dataplane.ring_size?)"),
            "{e}"
        );
        assert!(
            e.contains("xfwd.toml:5:14: dataplane.frame_size: 3000: must be 2048 or 4096"),
            "{e}"
        );
        assert!(e.contains("neighbor: unknown key"), "{e}");
        let e = load("[dataplane]\ninterfaces = \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":2:14: dataplane.interfaces: expected an array"),
            "{e}"
        );
        let e = load("dataplane = 3\n").unwrap_err().to_string();
        assert!(
            e.contains(":1:13: dataplane: expected a table ([dataplane]), found integer"),
            "{e}"
        );
        let e = load("[dataplane\n").unwrap_err().to_string();
        assert!(e.contains("xfwd.toml:1:"), "{e}");
        let e = load("[dataplane]\nxdp_mode = \"turbo\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected one of auto, native, generic"), "{e}");
    }

    #[test]
    fn reload_diff_splits_live_and_restart() {
        let a =
            load("[service]\nlog_level = \"info\"\n[dataplane]\ninterfaces=[\"a\"]\ncpus=\"0\"\n")
                .unwrap();
        let b = load(
            "[service]\nlog_level = \"debug\"\n[dataplane]\ninterfaces=[\"a\",\"b\"]\ncpus=\"0\"\n",
        )
        .unwrap();
        let d = diff(&a, &b);
        assert_eq!(d.applied, ["service.log_level"]);
        assert_eq!(d.needs_restart, ["dataplane.interfaces"]);
    }

    fn repo_file(rel: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// The shipped default parses, documents every key (as a line `key = ...` or `# key = ...`
    /// in its section), and mentions no key the table lacks; docs/configuration.md has a row per
    /// key and no extra ones.
    #[test]
    fn shipped_default_and_docs_match_the_key_table() {
        let text = repo_file("deploy/xfwd.toml");
        let mut section = String::new();
        let mut shipped = Vec::new();
        for line in text.lines() {
            let l = line.trim_start_matches('#').trim();
            if let Some(sec) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                section = sec.to_owned();
            } else if let Some((k, _)) = l.split_once(" = ")
                && !k.contains(' ')
            {
                shipped.push(format!("{section}.{k}"));
            }
        }
        for k in KEYS {
            assert!(
                shipped.contains(&k.name.to_owned()),
                "deploy/xfwd.toml lacks {}",
                k.name
            );
        }
        for s in &shipped {
            assert!(
                key(s).is_some(),
                "deploy/xfwd.toml has {s}, which xfwd does not know"
            );
        }
        // The shipped file loads and validates as is (`xfwd check` passes on a fresh install).
        let mut s = Settings::default();
        let errors = apply_text(&mut s, Path::new("deploy/xfwd.toml"), &text);
        assert!(errors.is_empty(), "{errors:?}");
        s.run.validate().unwrap();

        let doc = repo_file("docs/configuration.md");
        let documented: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`').map(|(k, _)| k))
            .filter(|k| k.contains('.'))
            .collect();
        for k in KEYS {
            assert!(
                documented.contains(&k.name),
                "docs/configuration.md lacks {}",
                k.name
            );
        }
        for d in documented {
            assert!(
                key(d).is_some(),
                "docs/configuration.md documents unknown key {d}"
            );
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("dataplane.ring_sise"), Some("dataplane.ring_size"));
        assert_eq!(suggest("service.loglevel"), Some("service.log_level"));
        assert_eq!(suggest("dataplane.zzzzzzzz"), None);
    }
}

//! Running xfwd as a service: the configuration file, log levels that change live, the
//! Prometheus endpoint, systemd notification and the capabilities kept after setup.

pub mod config;
pub mod live;
pub mod log;
pub mod metrics;
pub mod sdnotify;
pub mod takeover;
pub mod trace;
pub mod tune;

#[cfg(test)]
mod tests {
    /// The shipped unit grants what `xfwd run` checks for, runs `xfwd check` first and speaks
    /// the notify protocol xfwd implements.
    #[test]
    fn shipped_unit_matches_what_xfwd_does() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/xfwd.service");
        let unit = std::fs::read_to_string(&p).unwrap();
        let value = |key: &str| -> String {
            unit.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("{key}= missing"))
                .to_owned()
        };
        assert_eq!(value("Type"), "notify");
        assert!(value("ExecStartPre").contains("xfwd check -c /etc/xfwd/xfwd.toml"));
        assert!(value("ExecStart").contains("xfwd run -c /etc/xfwd/xfwd.toml"));
        assert!(value("ExecReload").ends_with("xfwd reload"));
        assert!(value("WatchdogSec").ends_with('s'));
        assert_eq!(value("Restart"), "on-failure");
        assert_eq!(value("LimitMEMLOCK"), "infinity");
        assert_eq!(value("RuntimeDirectory"), "xfwd");
        assert!(
            crate::control::server::DEFAULT_CONTROL.starts_with("/run/xfwd/"),
            "the control socket lives in the RuntimeDirectory"
        );
        for key in ["CapabilityBoundingSet", "AmbientCapabilities"] {
            let caps = value(key);
            for c in crate::privileges::NEEDED
                .iter()
                .chain(crate::privileges::KEPT_AFTER_SETUP)
            {
                assert!(
                    caps.split(' ').any(|x| x == c.name),
                    "{key} lacks {}",
                    c.name
                );
            }
            for c in caps.split(' ') {
                assert!(
                    c == "CAP_NET_BIND_SERVICE"
                        || crate::privileges::NEEDED.iter().any(|n| n.name == c),
                    "{key} grants {c}, which xfwd does not use"
                );
            }
        }
    }
}

//! RFC 2544 methodology (§26.1 throughput, §26.2 latency, §26.3 frame loss rate), independent of
//! how a trial is run: [`search`] drives a `trial` closure and returns what the RFC reports.
//!
//! - Throughput: the highest offered rate at which no frame is lost, by binary search between
//!   0 and the rate the generator reaches flat out, down to a resolution (a share of the upper
//!   bound).
//!   A first trial flat out gives the overload capacity (`max`) and the upper bound; if it
//!   loses nothing the system is faster than the generator and the throughput is that rate
//!   (reported as generator-bound).
//! - Latency: one trial each at 10, 50 and 90 % of the throughput rate, with the one-way
//!   latency of every frame in a histogram (RFC 2544 takes one tagged frame per trial; the
//!   sink stamps them all).
//! - Frame loss: one trial at 110 % of the throughput rate.

use serde::Serialize;

/// What one trial measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Trial {
    /// Rate asked of the generator (frames/s); `None`: flat out.
    pub target_pps: Option<f64>,
    /// Frames the generator sent, per second of the trial.
    pub offered_pps: f64,
    /// Frames the sink received once (duplicates removed), per second of the trial.
    pub delivered_pps: f64,
    /// Frames sent.
    pub sent: u64,
    /// Frames received once.
    pub received: u64,
    /// `sent - received` (frames never seen at the sink).
    pub lost: u64,
    /// Frames received after a later frame of their flow.
    pub reordered: u64,
    /// Frames received more than once.
    pub duplicates: u64,
    /// Of the lost frames, those the sender's veth could not hand to the router's receive
    /// ring because it was full (`*_xdp_xmit_errors` of h1's `ethtool -S`).
    pub ingress_ring_full: u64,
    /// Frames the router's ingress veth (p0) received but dropped: for the AF_XDP systems a
    /// redirect into the socket that failed (its RX ring full or its fill ring empty), i.e.
    /// the forwarder did not keep up (`rx_queue_*_drops` of p0's `ethtool -S`).
    pub router_rx_drops: u64,
    /// Frames the router's egress veth (p1) dropped on transmit (`tx_dropped` of p1).
    pub router_tx_drops: u64,
    /// Frames h2's veth dropped before the sink counted them (`rx_queue_*_drops` of h2's
    /// `eth0`).
    pub sink_rx_drops: u64,
    /// xfwd only: its workers' stalls during the trial (loop gaps of 1 ms or more not spent
    /// asleep: the CPU was taken away) and their total length in nanoseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_stalls: Option<(u64, u64)>,
    /// One-way latency percentiles (ns), when the trial recorded them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ns: Option<Latency>,
}

impl Trial {
    /// Whether no frame was lost (nor duplicated, which would hide a loss).
    pub fn zero_loss(&self, tolerance: f64) -> bool {
        self.sent > 0 && (self.lost as f64) <= tolerance * self.sent as f64
    }

    /// Lost share of what was sent, in percent.
    pub fn loss_pct(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            100.0 * self.lost as f64 / self.sent as f64
        }
    }
}

/// One-way latency percentiles in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    /// Frames in the histogram.
    pub samples: u64,
}

/// What a trial is asked to do.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    /// As fast as the generator goes.
    FlatOut,
    /// This many frames per second.
    Rate(f64),
}

/// Search settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Stop when the bounds are closer than this share of the upper bound (e.g. 0.01).
    pub resolution: f64,
    /// Most search trials after the flat-out one.
    pub max_trials: u32,
    /// Lost share still counted as zero loss (RFC 2544: 0).
    pub loss_tolerance: f64,
}

/// Latency at a share of the throughput rate.
#[derive(Clone, Debug, Serialize)]
pub struct LoadPoint {
    /// Percent of the zero-loss rate.
    pub load_pct: u32,
    pub trial: Trial,
}

/// Everything [`search`] measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcome {
    /// The flat-out trial.
    pub overload: Trial,
    /// Throughput: the highest offered rate with zero loss (frames/s), 0 if none passed.
    pub zero_loss_pps: f64,
    /// The flat-out trial lost nothing: the generator, not the system, was the limit.
    pub generator_bound: bool,
    /// The search trials, in order.
    pub search: Vec<Trial>,
    /// Latency at 10, 50, 90 % of the zero-loss rate.
    pub latency: Vec<LoadPoint>,
    /// The trial at 110 % of the zero-loss rate.
    pub overload_110: Option<Trial>,
}

/// Percent loads of the latency trials.
pub const LATENCY_LOADS: [u32; 3] = [10, 50, 90];

/// Runs the RFC 2544 sequence; `trial(load, with_latency)` runs one trial. `progress` is told
/// what runs next.
///
/// # Errors
///
/// The first error of a trial.
pub fn search<E>(
    s: Settings,
    mut trial: impl FnMut(Load, bool) -> Result<Trial, E>,
    mut progress: impl FnMut(&str),
) -> Result<Outcome, E> {
    progress("flat out");
    let overload = trial(Load::FlatOut, true)?;
    let mut out = Outcome {
        overload: overload.clone(),
        ..Outcome::default()
    };
    let top = overload.offered_pps;
    if overload.zero_loss(s.loss_tolerance) {
        out.zero_loss_pps = top;
        out.generator_bound = true;
    } else if top > 0.0 {
        let (mut lo, mut hi) = (0.0f64, top);
        // What got through under overload is the natural first guess.
        let mut rate = overload.delivered_pps.clamp(top * 0.01, top);
        let mut best: Option<f64> = None;
        for n in 0..s.max_trials {
            if hi - lo <= s.resolution * hi {
                break;
            }
            progress(&format!("search {}: {:.3} Mpps", n + 1, rate / 1e6));
            let t = trial(Load::Rate(rate), false)?;
            if t.zero_loss(s.loss_tolerance) {
                lo = rate;
                // Report what was really offered (the generator paces in chunks).
                best = Some(best.map_or(t.offered_pps, |b: f64| b.max(t.offered_pps)));
            } else {
                hi = rate;
            }
            out.search.push(t);
            rate = (lo + hi) / 2.0;
        }
        out.zero_loss_pps = best.unwrap_or(0.0);
    }
    let base = out.zero_loss_pps;
    if base > 0.0 {
        for pct in LATENCY_LOADS {
            progress(&format!("latency at {pct} %"));
            let t = trial(Load::Rate(base * f64::from(pct) / 100.0), true)?;
            out.latency.push(LoadPoint {
                load_pct: pct,
                trial: t,
            });
        }
        progress("loss at 110 %");
        out.overload_110 = Some(trial(Load::Rate(base * 1.1), false)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A system that forwards up to `cap` frames/s and loses the rest, behind a generator that
    /// reaches `gen_max`.
    fn model(cap: f64, gen_max: f64) -> impl FnMut(Load, bool) -> Result<Trial, ()> {
        move |load, lat| {
            let offered = match load {
                Load::FlatOut => gen_max,
                Load::Rate(r) => r.min(gen_max),
            };
            let delivered = offered.min(cap);
            Ok(Trial {
                target_pps: match load {
                    Load::FlatOut => None,
                    Load::Rate(r) => Some(r),
                },
                offered_pps: offered,
                delivered_pps: delivered,
                sent: offered as u64,
                received: delivered as u64,
                lost: (offered - delivered) as u64,
                latency_ns: lat.then(Latency::default),
                ..Trial::default()
            })
        }
    }

    const S: Settings = Settings {
        resolution: 0.01,
        max_trials: 20,
        loss_tolerance: 0.0,
    };

    #[test]
    fn finds_the_capacity_within_the_resolution() {
        let out = search(S, model(1_000_000.0, 5_000_000.0), |_| {}).unwrap();
        assert!(!out.generator_bound);
        assert_eq!(out.overload.delivered_pps, 1_000_000.0);
        assert!(out.zero_loss_pps <= 1_000_000.0, "{}", out.zero_loss_pps);
        assert!(out.zero_loss_pps >= 1_000_000.0 - 0.01 * 5_000_000.0);
        assert_eq!(out.latency.len(), 3);
        assert_eq!(out.latency[1].load_pct, 50);
        assert!(out.latency.iter().all(|p| p.trial.lost == 0));
        let l110 = out.overload_110.unwrap();
        assert!(l110.lost > 0);
        // The first guess (the overload's delivered rate) passes at once.
        assert_eq!(out.search[0].target_pps, Some(1_000_000.0));
        assert!(out.search.len() <= 20);
    }

    #[test]
    fn a_system_faster_than_the_generator_is_generator_bound() {
        let out = search(S, model(9e6, 5e6), |_| {}).unwrap();
        assert!(out.generator_bound);
        assert_eq!(out.zero_loss_pps, 5e6);
        assert!(out.search.is_empty());
    }

    #[test]
    fn a_system_that_forwards_nothing_has_zero_throughput_and_no_latency() {
        let out = search(S, model(0.0, 5e6), |_| {}).unwrap();
        assert_eq!(out.zero_loss_pps, 0.0);
        assert!(out.latency.is_empty() && out.overload_110.is_none());
    }

    #[test]
    fn trial_errors_stop_the_search() {
        let r = search(S, |_, _| Err::<Trial, _>("boom"), |_| {});
        assert_eq!(r.unwrap_err(), "boom");
    }

    #[test]
    fn loss_percentage() {
        let t = Trial {
            sent: 200,
            lost: 3,
            ..Trial::default()
        };
        assert_eq!(t.loss_pct(), 1.5);
        assert!(!t.zero_loss(0.0));
        assert!(t.zero_loss(0.02));
    }
}

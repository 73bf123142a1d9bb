//! Taking over from a crashed instance.
//!
//! On Linux ≥ 5.9 xfwd attaches through a `bpf_link`, which the kernel removes when the process
//! dies, even on `kill -9`: nothing is left behind. A program attached the old way (netlink; an
//! older kernel, or by hand with `ip link set dev IF xdp obj ...`) stays attached after its owner
//! dies and would make the next start fail with "another XDP program is attached". When that
//! program is xfwd's own steering program (by name), it is stale by construction: a live xfwd
//! holds its attachment through a `bpf_link`, which netlink cannot remove (the kernel answers
//! `EBUSY`), so the removal below only ever succeeds for an orphan.

use std::process::Command;

/// Names xfwd's steering programs carry (`SEC("xdp")`, `SEC("xdp.frags")`).
const OURS: &[&str] = &["xfwd_steer", "xfwd_steer_frags"];

/// The XDP program attached to `ifname` as `(name, id, mode)`, from `ip -d -j link show`
/// (mode: 1 driver, 2 generic, 3 offloaded).
fn attached(ifname: &str) -> Option<(String, u64, u64)> {
    let out = Command::new("ip")
        .args(["-d", "-j", "link", "show", "dev", ifname])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let xdp = &v[0]["xdp"];
    Some((
        xdp["prog"]["name"].as_str()?.to_owned(),
        xdp["prog"]["id"].as_u64()?,
        xdp["mode"].as_u64()?,
    ))
}

/// Removes a stale xfwd steering program from `ifname`, if that is what occupies it. Returns
/// whether it removed one (then attaching again can succeed).
pub fn remove_stale(ifname: &str) -> bool {
    let Some((name, id, mode)) = attached(ifname) else {
        return false;
    };
    if !OURS.contains(&name.as_str()) {
        return false;
    }
    let off = match mode {
        1 => "xdpdrv",
        2 => "xdpgeneric",
        3 => "xdpoffload",
        _ => "xdp",
    };
    let ok = Command::new("ip")
        .args(["link", "set", "dev", ifname, off, "off"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        tracing::warn!(
            "{ifname}: removed a stale xfwd XDP program (id {id}, attached without a bpf_link \
             by an instance that is gone)"
        );
    } else {
        tracing::debug!(
            "{ifname}: xfwd program id {id} is held by a bpf_link: another xfwd is running"
        );
    }
    ok
}

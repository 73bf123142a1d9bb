#!/bin/sh
# Interleaved A/B of xfwd's run-time levers with `xfwd-bench forward` (overload, 64 B, veth's
# default placement: the router's receive on the generator's CPU, xfwd's worker alone on CPU 1).
# One line per run: delivered Mpps, fwd CPU and gen CPU user/system/softirq/idle %, sendto kicks
# per packet, packets per batch. Usage: bench/levers.sh [ROUNDS] [VARIANTS...]
B=${XFWD_BENCH:-target/release/xfwd-bench}
ROUNDS=${1:-3}
[ $# -gt 0 ] && shift
VARIANTS=${*:-default busy ring4096 ring512 spin linux}
py='import json,sys
d=json.load(sys.stdin); r=d["results"][0]
def c(x):
    return "%d/%d/%d/%d" % tuple(round(100*(x or {}).get(k, 0)) for k in ("user","system","softirq","idle"))
def find(o, k):
    if isinstance(o, dict):
        if k in o: return o[k]
        for v in o.values():
            f = find(v, k)
            if f is not None: return f
    if isinstance(o, list):
        for v in o:
            f = find(v, k)
            if f is not None: return f
    return None
cpu = r.get("cpu") or {}
kp = find(r.get("runs"), "tx_kicks_per_packet"); pb = find(r.get("runs"), "packets_per_batch")
print("%.3f" % ((r["delivered_pps_median"] or 0)/1e6), "fwd", c(cpu.get("forwarding")), "gen", c(cpu.get("generator")),
      "kicks/pkt", "-" if kp is None else "%.3f" % kp, "pkts/batch", "-" if pb is None else "%.1f" % pb, (r.get("error") or "")[:80])'
round=1
while [ $round -le "$ROUNDS" ]; do
  for v in $VARIANTS; do
    sys=xfwd; a=""
    case $v in
      default) ;;
      spin) a="--xfwd-arg=--idle=spin";;
      busy) a="--xfwd-arg=--busy-poll";;
      ring4096) a="--xfwd-arg=--ring-size=4096";;
      ring512) a="--xfwd-arg=--ring-size=512";;
      linux) sys=linux;;
    esac
    r=$($B forward --systems $sys --runs 1 --duration 3 --warmup 0.5 $a --json 2>/dev/null | python3 -c "$py")
    echo "$round $v $r"
  done
  round=$((round + 1))
done

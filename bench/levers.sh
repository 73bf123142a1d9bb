#!/bin/sh
# Interleaved A/B of xfwd's run-time levers with `xfwd-bench forward` (overload, 64 B, softirq placement).
B=${XFWD_BENCH:-target/release/xfwd-bench}
for round in 1 2 3; do
  for v in default spin busy ring4096 ring512; do
    case $v in
      default) a="";;
      spin) a="--xfwd-arg=--idle=spin";;
      busy) a="--xfwd-arg=--busy-poll";;
      ring4096) a="--xfwd-arg=--ring-size=4096";;
      ring512) a="--xfwd-arg=--ring-size=512";;
    esac
    r=$($B forward --systems xfwd --runs 1 --duration 3 --warmup 0.5 $a --json 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); r=d['results'][0]; print('%.3f'%((r['delivered_pps_median'] or 0)/1e6), (r['error'] or '')[:80])")
    echo "$round $v $r"
  done
  r=$($B forward --systems linux --runs 1 --duration 3 --warmup 0.5 --json 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); r=d['results'][0]; print('%.3f'%((r['delivered_pps_median'] or 0)/1e6))")
  echo "$round linux $r"
done

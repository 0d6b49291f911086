#!/bin/bash
# Paired A/B of two sidecache builds on a shared machine (issue 14). Usage:
#   BENCH_BASE=<dir with dist/cli.js and node_modules> bench/http/paired.sh <path> <fixed|unique|mixed> <conns> <rounds> <seconds>
# e.g. bench/http/paired.sh '/m?size=1024&delay=0' unique 64 6 5
# This checkout's sidecache ("new"), the BENCH_BASE build ("base") and the bare node:http + undici
# proxy (servers.mjs) run at the same time, all pinned to core 0 with the origin, each with its own
# wrk on core 1, over the same windows: whatever else loads the machine loads the three alike,
# which interleaving one after the other (http.bench.mjs with BENCH_BASE) cannot promise when
# other tenants come and go. Prints, per round, each one's CPU time per request (user + system,
# /proc), req/s and p50/p99. AB_WARM (seconds, default 8) warms all three first.
set -e
P=$1; MODE=$2; C=$3; ROUNDS=$4; S=$5
: "${BENCH_BASE:?set BENCH_BASE to the directory of the baseline build}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d -t sidecache-paired-XXXXXX)
cd "$ROOT"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
wait_for() { for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return; sleep 0.1; done; echo "timeout waiting for $1" >&2; exit 1; }
taskset -c 0 node bench/http/servers.mjs origin > "$W/origin.out" 2>&1 & pids+=($!)
wait_for "$W/origin.out" '^[0-9]'
OPORT=$(head -1 "$W/origin.out")
taskset -c 0 node bench/http/servers.mjs proxy "$OPORT" > "$W/proxy.out" 2>&1 & PP=$!; pids+=($PP)
printf 'admin: { listen: "127.0.0.1:0" }\ncache: { maxBytes: 512MiB }\nhttp:\n  - { name: bench, listen: "127.0.0.1:0", upstream: "http://127.0.0.1:%s" }\n' "$OPORT" > "$W/cfg.yaml"
taskset -c 0 node dist/cli.js start -c "$W/cfg.yaml" > "$W/new.out" 2>&1 & NP=$!; pids+=($NP)
(cd "$BENCH_BASE" && exec taskset -c 0 node dist/cli.js start -c "$W/cfg.yaml") > "$W/base.out" 2>&1 & BP=$!; pids+=($BP)
wait_for "$W/new.out" 'http listener ready'; wait_for "$W/base.out" 'http listener ready'; wait_for "$W/proxy.out" '^[0-9]'
port() { sed -nE 's/.*"msg":"http listener ready".*"address":"[^"]*:([0-9]+)".*/\1/p' "$1"; }
NPORT=$(port "$W/new.out"); BPORT=$(port "$W/base.out"); PPORT=$(head -1 "$W/proxy.out")
T=2; [ "$C" = 1 ] && T=1
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
run() {
  local w=()
  for x in new:$NPORT base:$BPORT proxy:$PPORT; do
    BENCH_MODE=$MODE BENCH_NONCE=$2${x%%:*} taskset -c 1 wrk -t $T -c "$C" -d "${1}s" -s bench/http/wrk.lua "http://127.0.0.1:${x##*:}$P" > "$W/wrk.${x%%:*}" & w+=($!)
  done
  wait "${w[@]}"
}
run "${AB_WARM:-8}" "warm$$-"
for r in $(seq "$ROUNDS"); do
  a1=$(ticks $NP); b1=$(ticks $BP); c1=$(ticks $PP)
  run "$S" "r$r-$$-"
  a2=$(ticks $NP); b2=$(ticks $BP); c2=$(ticks $PP)
  load=$(cut -d" " -f1 /proc/loadavg)
  line="round $r load $load"
  for x in new:$((a2 - a1)) base:$((b2 - b1)) proxy:$((c2 - c1)); do
    n=${x%%:*}
    t=${x##*:}
    f="$W/wrk.$n"
    reqs=$(grep -o "reqs=[0-9]*" "$f" | cut -d= -f2)
    rps=$(grep -o "rps=[0-9.]*" "$f" | cut -d= -f2)
    p50=$(grep -o "p50_ms=[0-9.]*" "$f" | cut -d= -f2)
    p99=$(grep -o "p99_ms=[0-9.]*" "$f" | cut -d= -f2)
    us=$(awk -v t="$t" -v r="$reqs" "BEGIN { printf \"%.1f\", t * 10000 / r }")
    grep -q "errors=0 non2xx=0" "$f" || line="$line FAILED($n)"
    line="$line | $n $us us $rps/s p50/99 $p50/$p99"
  done
  echo "$line" | tee -a "$W/rounds"
done
# Medians over the rounds, and of the per-round (paired) ratios.
node -e '
const rows = require("node:fs").readFileSync(process.argv[1], "utf8").trim().split("\n");
const med = (a) => { const s = [...a].sort((x, y) => x - y); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const get = (l, n) => { const m = new RegExp(n + " ([\\d.]+) us ([\\d.]+)/s p50/99 ([\\d.]+)/([\\d.]+)").exec(l); return { us: +m[1], rps: +m[2], p50: +m[3], p99: +m[4] }; };
const r = rows.map((l) => ({ n: get(l, "new"), b: get(l, "base"), p: get(l, "proxy") }));
const f = (fn, d = 2) => med(r.map(fn)).toFixed(d);
console.log(`medians of ${r.length} rounds: CPU us/req new ${f((x) => x.n.us, 1)} base ${f((x) => x.b.us, 1)} proxy ${f((x) => x.p.us, 1)}; paired CPU new/base ${f((x) => x.n.us / x.b.us)} new/proxy ${f((x) => x.n.us / x.p.us)} base/proxy ${f((x) => x.b.us / x.p.us)}; req/s new/base ${f((x) => x.n.rps / x.b.rps)} new/proxy ${f((x) => x.n.rps / x.p.rps)} base/proxy ${f((x) => x.b.rps / x.p.rps)}; p50 ms new ${f((x) => x.n.p50)} base ${f((x) => x.b.p50)} proxy ${f((x) => x.p.p50)}; p99 ms new ${f((x) => x.n.p99, 1)} base ${f((x) => x.b.p99, 1)} proxy ${f((x) => x.p.p99, 1)}`);
' "$W/rounds"

#!/usr/bin/env bash
# Nimbus against its peers on this machine, in one run: raw node:http (the ceiling),
# Nimbus (bench/peers/fixtures and examples/typescript-api), serverless-offline 13.10.1
# (serverless 3.40.0) and workerd, plus Nimbus's own scale-from-zero, scale 0 -> 200 and
# idle memory. Prints a markdown table; asserts nothing. See bench/peers/README.md.
#
#   bash bench/peers.sh                 # ~8-9 min (+ ~30 s for the first install of the peers)
#
# Knobs (environment): PHASES=steady,cold,zero,scale,memory,breakdown  ONLY=node-http,nimbus,nimbus-ts,sls,workerd
#   ROUNDS=3 DURATION_S=10 CONNS=50 WARMUP_S=3 NIMBUS_WARMUP_S=20 NIMBUS_TS_WARMUP_S=20 COLD_RUNS=5 ZERO_STARTS=10
#   POOL_WAIT_MS=1000 SCALE_N=200 SCALE_TRIALS=1 SCALE_UNPINNED=1 PIN=0 (no CPU pinning)
#   BREAKDOWN_RUNS=8 SKIP_BUILD=1 SKIP_INSTALL=1 QUIET_WAIT_S=30
# Peers are installed into bench/.peers/peers/ (gitignored; never project dependencies),
# raw results and server logs go to bench/results/peers/.
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
say() { printf '\n== %s\n' "$*" >&2; }

PEERS_DIR=bench/.peers/peers
OUT_DIR=bench/results/peers
mkdir -p "$OUT_DIR"
export PEERS_DIR OUT_DIR PEERS_PIDFILE="$PWD/$OUT_DIR/server-pids"

# ---- always stop every server we started ---------------------------------------------------
RUNNER_PID=
cleanup() {
  if [ -n "$RUNNER_PID" ] && kill -0 "$RUNNER_PID" 2>/dev/null; then
    kill -TERM "$RUNNER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$RUNNER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$RUNNER_PID" 2>/dev/null || true
  fi
  # servers the runner started (process groups) if it could not stop them itself
  if [ -f "$PEERS_PIDFILE" ]; then
    while read -r p; do [ -n "$p" ] && kill -KILL -- "-$p" 2>/dev/null || true; done < "$PEERS_PIDFILE"
    rm -f "$PEERS_PIDFILE"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- prerequisites ---------------------------------------------------------------------------
command -v node >/dev/null || { echo "node is required" >&2; exit 1; }
[ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ] || { echo "Node >= 20 required" >&2; exit 1; }
PIN=${PIN:-1}
if ! command -v taskset >/dev/null; then echo "taskset not found: running without CPU pinning" >&2; PIN=0; fi
if [ "$(nproc)" -lt 2 ] && [ "$PIN" != 0 ]; then echo "fewer than 2 CPUs: running without CPU pinning" >&2; PIN=0; fi
export PIN

say "wrk"
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; } >&2 || true
  fi
fi
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
wrk --version 2>&1 | head -1 >&2 || true

say "peers (npm ci into $PEERS_DIR)"
mkdir -p "$PEERS_DIR"
if [ "${SKIP_INSTALL:-0}" != 1 ] && ! (cd "$PEERS_DIR" && node -e '
  const want = require("../../peers/deps/package.json").dependencies;
  for (const [n, v] of Object.entries(want)) if (require("./node_modules/" + n + "/package.json").version !== v) process.exit(1);
  require("fs").accessSync(require("./node_modules/workerd").default, 1);
' 2>/dev/null); then
  cp bench/peers/deps/package.json bench/peers/deps/package-lock.json "$PEERS_DIR/"
  (cd "$PEERS_DIR" && env -u NODE_OPTIONS npm ci --no-audit --no-fund --loglevel=error) >&2
else
  echo "already installed" >&2
fi
# serverless resolves `plugins:` from the service folder upwards: the service lives beside node_modules
rm -rf "$PEERS_DIR/sls" && cp -r bench/peers/sls "$PEERS_DIR/sls"

say "build Nimbus (npm run build)"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  # tsc emits even when another part of the tree has type errors; the run needs dist/src only
  env -u NODE_OPTIONS npm run build --silent >&2 || echo "warning: npm run build reported errors; using what it emitted in dist/" >&2
fi
[ -f dist/src/cli/main.js ] || { echo "dist/src/cli/main.js missing: the build failed" >&2; exit 1; }

# ---- a clean measurement environment -----------------------------------------------------------
unset NODE_EXTRA_CA_CERTS NODE_OPTIONS
export BENCH_ROOT_PID=$$
for p in 4521 4522 4523 4524 4525 4526 4527 4528 4532 4533 4535 4536 4537 4538; do
  if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "port $p is in use on 127.0.0.1; stop that process first" >&2; exit 1; fi
done

PY=$(python3 -c 'import sys; print(sys.executable, sys.version.split()[0])' 2>/dev/null || echo none)
MACHINE_INFO="$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo); node $(node -v); python3 $PY; $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2); bwrap $(command -v bwrap >/dev/null && bwrap --version | cut -d' ' -f2 || echo 'not installed'); serverless 3.40.0 + serverless-offline 13.10.1; workerd $("$(cd "$PEERS_DIR" && node -p 'require("./node_modules/workerd").default')" --version 2>&1 | cut -d' ' -f2)"
export MACHINE_INFO
# Which Nimbus was measured (no git here): a hash of src/ and runtimes/ and their newest change.
NIMBUS_SOURCE="src+runtimes sha256 $(find src runtimes -type f \( -name '*.ts' -o -name '*.mjs' -o -name '*.py' \) ! -name '*.test.ts' ! -name 'test_*' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12), newest file changed $(find src runtimes -type f -printf '%TY-%Tm-%Td %TH:%TM\n' | sort | tail -1)"
export NIMBUS_SOURCE

say "pre-flight: waiting (max ${QUIET_WAIT_S:-30} s) for other workloads on this machine to go quiet"
node --input-type=module -e '
  import * as C from "./bench/peers/lib.mjs";
  const max = Number(process.env.QUIET_WAIT_S ?? 30) * 1000, t0 = C.now();
  for (;;) {
    const f = C.foreignSampler(500); await C.sleep(2000); const r = f.stop();
    if (r.pct <= 5) { console.error(`machine quiet (foreign CPU ${r.pct.toFixed(1)}%)`); break; }
    console.error(`foreign CPU load ${r.pct.toFixed(0)}% of a CPU (${r.top.slice(0, 3).map(([c, t]) => c + ": " + t).join(", ")})`);
    if (C.now() - t0 > max) { console.error("still busy: measuring anyway; contaminated load rounds are flagged"); break; }
  }'

say "measuring"
node bench/peers/run.mjs &
RUNNER_PID=$!
set +e
wait "$RUNNER_PID"
RC=$?
set -e
RUNNER_PID=
say "done in $(( $(date +%s) - T0 )) s (results: $OUT_DIR/results.md, raw: $OUT_DIR/results.json, logs: $OUT_DIR/logs/)"
exit $RC

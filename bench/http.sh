#!/usr/bin/env bash
# Benchmark: the warm request rate of a Nimbus HTTP API against a raw node:http
# server giving the same answer (the ceiling). Run with `npm run bench:http`.
# It prints a table; it asserts nothing.
#
# How:
# - builds (npm run build), then starts
#   `node bin/nimbus dev --config examples/typescript-api/serverless.yml --quiet --no-watch`
#   and bench/hello-node-http.mjs, both pinned to CPU 0 (`taskset -c 0`; the
#   function instances Nimbus spawns inherit the pin), without
#   NODE_EXTRA_CA_CERTS / NODE_OPTIONS;
# - waits for http://127.0.0.1:$CONTROL_PORT/_/health and a 200 from GET /hello;
# - warms each server up with the same load in 3 s steps until its rate stops
#   climbing (Nimbus's first burst cold-starts ~50 instances on the one core and
#   each then warms its own JIT: that takes tens of seconds);
# - per round, for each server: 2 s of re-warming, then the load generator
#   pinned to CPU 1 against GET /hello with 50 keep-alive connections for 10 s:
#   wrk (installed with apt-get when running as root and missing), else
#   autocannon installed into bench/.peers/ (not a project dependency);
# - CPU per request: utime + stime (/proc/<pid>/stat) of the server process and,
#   separately, of its descendants (Nimbus's function instances) over the
#   measurement, divided by the requests served (an instance that exits during
#   the measurement takes its ticks with it);
# - rounds are interleaved (nimbus, node:http, nimbus, ...) because this
#   machine's loopback speed drifts a lot (../shared/bench-peers/NOTES.md);
#   the table shows the median over rounds and the min–max of req/s;
# - the servers are always stopped at the end (trap).
#
# Knobs (environment): ROUNDS=3 DURATION_S=10 WARMUP_S=10 WARMUP_MAX_S=90 CONNS=50 PORT=4310 CONTROL_PORT=4311
# NODE_PORT=4312 CONFIG=examples/typescript-api/serverless.yml URL_PATH=/hello
# TOOL=wrk|autocannon PIN=0 (no CPU pinning) SKIP_BUILD=1
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION_S=${DURATION_S:-10}
CONNS=${CONNS:-50}
PORT=${PORT:-4310}
CONTROL_PORT=${CONTROL_PORT:-4311}
NODE_PORT=${NODE_PORT:-4312}
CONFIG=${CONFIG:-examples/typescript-api/serverless.yml}
URL_PATH=${URL_PATH:-/hello}
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-bench-http.XXXXXX")

# ---- pinning: servers on CPU 0, load generator on CPU 1 ----------------------
PIN=${PIN:-1}
if ! command -v taskset >/dev/null || [ "$(nproc)" -lt 2 ]; then PIN=0; fi
pin() { local cpu=$1; shift; if [ "$PIN" = 1 ]; then taskset -c "$cpu" "$@"; else "$@"; fi; }

# ---- load generator ----------------------------------------------------------
TOOL=${TOOL:-}
if [ -z "$TOOL" ]; then
  if ! command -v wrk >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "wrk is missing: apt-get install -y wrk" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; } >&2 || true
  fi
  if command -v wrk >/dev/null; then TOOL=wrk; else TOOL=autocannon; fi
fi
AUTOCANNON=bench/.peers/node_modules/autocannon/autocannon.js
if [ "$TOOL" = autocannon ] && [ ! -f "$AUTOCANNON" ]; then
  echo "installing autocannon into bench/.peers/ (not a project dependency)" >&2
  npm install --prefix bench/.peers --no-audit --no-fund autocannon >&2
fi

LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)

# ---- build and start the servers ----------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then npm run build >&2; fi

for p in "$PORT" "$CONTROL_PORT" "$NODE_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "port $p is already in use on 127.0.0.1; stop that process or set another port" >&2; exit 1; fi
done

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$LOGDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_server() { # start_server <log> <command...>; the pid goes to PIDS
  local log=$1; shift
  ( unset NODE_EXTRA_CA_CERTS NODE_OPTIONS; exec "$@" ) >"$log" 2>&1 &
  PIDS+=("$!")
}
if [ "$PIN" = 1 ]; then PIN0=(taskset -c 0); else PIN0=(); fi
start_server "$LOGDIR/nimbus.log" "${PIN0[@]}" node bin/nimbus dev --config "$CONFIG" --port "$PORT" --control-port "$CONTROL_PORT" --quiet --no-watch
NIMBUS_PID=${PIDS[-1]}
start_server "$LOGDIR/node-http.log" env PORT="$NODE_PORT" "${PIN0[@]}" node bench/hello-node-http.mjs
NODE_PID=${PIDS[-1]}

wait_for() { # wait_for <url> <seconds>
  local url=$1 deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      echo "no answer from $url after $2 s; server log:" >&2
      cat "$LOGDIR"/*.log >&2
      exit 1
    fi
    sleep 0.1
  done
}
wait_for "http://127.0.0.1:$CONTROL_PORT/_/health" 60
wait_for "http://127.0.0.1:$PORT$URL_PATH" 30
wait_for "http://127.0.0.1:$NODE_PORT$URL_PATH" 10
NIMBUS_BODY=$(curl -fsS "http://127.0.0.1:$PORT$URL_PATH")
NODE_BODY=$(curl -fsS "http://127.0.0.1:$NODE_PORT$URL_PATH")
if [ "$NIMBUS_BODY" != "$NODE_BODY" ]; then echo "note: the bodies differ: nimbus $NIMBUS_BODY, node:http $NODE_BODY" >&2; fi

# ---- one measurement: prints "rps p50_ms p99_ms errors requests" ---------------------
to_ms() { # wrk's 1.23ms / 456.00us / 1.20s → ms
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
load() { # load <port> <seconds>
  local url="http://127.0.0.1:$1$URL_PATH" secs=$2 out
  if [ "$TOOL" = wrk ]; then
    out=$(pin 1 wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 5s --latency "$url")
    local rps p50 p99 non2xx sock requests
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' <<<"$out")
    sock=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' <<<"$out")
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    echo "$rps $p50 $p99 $(( ${non2xx:-0} + ${sock:-0} )) $requests"
  else
    out=$(pin 1 node "$AUTOCANNON" -c "$CONNS" -d "$secs" -j --timeout 5 "$url" 2>/dev/null)
    node -e 'const j = JSON.parse(process.argv[1]); console.log(`${j.requests.average} ${j.latency.p50} ${j.latency.p99} ${j.non2xx + j.errors + j.timeouts} ${j.requests.total}`)' "$out"
  fi
}

# ---- CPU time of a server: its own process and its descendants (function instances) ----
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
ticks() { # utime + stime of one process, in clock ticks (0 when gone)
  sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }' || echo 0
}
descendants() { local c; for c in $(pgrep -P "$1" || true); do echo "$c"; descendants "$c"; done; }
cpu_ticks() { # cpu_ticks <pid> → "own descendants"
  local own sum=0 d
  own=$(ticks "$1")
  for d in $(descendants "$1"); do sum=$((sum + $(ticks "$d"))); done
  echo "${own:-0} $sum"
}

instances() { # Nimbus's runtime processes alive now: instances and warm-pool spares (a sandboxed one has bwrap parents)
  local n=0 p
  for p in $(descendants "$NIMBUS_PID"); do
    if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = node ] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q 'bootstrap\.mjs'; then
      n=$((n + 1))
    fi
  done
  echo "$n"
}

# ---- warm-up ---------------------------------------------------------------------------
# Nimbus's first burst of 50 concurrent requests cold-starts ~50 instances on the
# one pinned core, and each instance then JIT-compiles on its own share of the
# traffic: the rate climbs for tens of seconds (20 → 42 → 159 → 521 → 1048 →
# 1520 req/s in consecutive 3 s steps, once). So warm up in 3 s steps until the
# rate stops climbing (< 10% over the step before), at least WARMUP_S and at
# most WARMUP_MAX_S seconds.
WARMUP_S=${WARMUP_S:-10}
WARMUP_MAX_S=${WARMUP_MAX_S:-90}
warm_up() { # warm_up <port> <name>
  local start=$SECONDS prev=0 rps steps=""
  while :; do
    rps=$(load "$1" 3 | cut -d' ' -f1)
    steps+=" ${rps%.*}"
    if [ $((SECONDS - start)) -ge "$WARMUP_S" ] && awk -v a="$rps" -v b="$prev" 'BEGIN { exit !(a < 1.1 * b) }'; then break; fi
    if [ $((SECONDS - start)) -ge "$WARMUP_MAX_S" ]; then echo "warning: $2 still speeding up after ${WARMUP_MAX_S} s" >&2; break; fi
    prev=$rps
  done
  WARM_LOG+="warm-up $2: $((SECONDS - start)) s, req/s per 3 s step:$steps"$'\n'
  echo "warm-up $2: $((SECONDS - start)) s, req/s per 3 s step:$steps" >&2
}
WARM_LOG=""
warm_up "$PORT" nimbus
warm_up "$NODE_PORT" node-http

# ---- interleaved rounds -------------------------------------------------------------
declare -A RESULTS=()
for round in $(seq 1 "$ROUNDS"); do
  for name in nimbus node-http; do
    if [ "$name" = nimbus ]; then port=$PORT; pid=$NIMBUS_PID; else port=$NODE_PORT; pid=$NODE_PID; fi
    load "$port" 2 >/dev/null   # re-warm after the other server's turn
    read -r own0 kids0 <<<"$(cpu_ticks "$pid")"
    r=$(load "$port" "$DURATION_S")
    read -r own1 kids1 <<<"$(cpu_ticks "$pid")"
    read -r rps p50 p99 errors requests <<<"$r"
    cpu=$(awk -v a=$((own1 - own0)) -v b=$((kids1 - kids0)) -v n="$requests" -v hz="$CLK_TCK" \
      'BEGIN { printf "%.0f %.0f", a * 1e6 / hz / n, b * 1e6 / hz / n }')
    echo "round $round $name: $rps req/s, p50 $p50 ms, p99 $p99 ms, $errors errors, CPU µs/request (server, instances): $cpu$([ "$name" = nimbus ] && echo ", $(instances) runtime processes")" >&2
    RESULTS[$name]+="$rps $p50 $p99 $errors $cpu"$'\n'
  done
done
INSTANCES=$(instances)

# ---- report -------------------------------------------------------------------------
summary() { # summary <name> → "rps min max p50 p99 errors cpu_server cpu_instances" (medians over rounds)
  printf '%s' "${RESULTS[$1]}" | awk '
    { rps[NR] = $1; p50[NR] = $2; p99[NR] = $3; err += $4; cs[NR] = $5; ci[NR] = $6 }
    function median(a, n,   i, j, t, b) { for (i = 1; i <= n; i++) b[i] = a[i];
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (b[j] < b[i]) { t = b[i]; b[i] = b[j]; b[j] = t }
      return n % 2 ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2 }
    END { n = NR; min = rps[1]; max = rps[1]; for (i = 2; i <= n; i++) { if (rps[i] < min) min = rps[i]; if (rps[i] > max) max = rps[i] }
      printf "%.0f %.0f %.0f %.2f %.2f %d %.0f %.0f\n", median(rps, n), min, max, median(p50, n), median(p99, n), err, median(cs, n), median(ci, n) }'
}
read -r N_RPS N_MIN N_MAX N_P50 N_P99 N_ERR N_CS N_CI <<<"$(summary nimbus)"
read -r H_RPS H_MIN H_MAX H_P50 H_P99 H_ERR H_CS H_CI <<<"$(summary node-http)"
RATIO=$(awk -v a="$N_RPS" -v b="$H_RPS" 'BEGIN { printf "%.3f", a / b }')
CPU_RATIO=$(awk -v a=$((N_CS + N_CI)) -v b=$((H_CS + H_CI)) 'BEGIN { printf "%.1f", a / b }')

echo "# Nimbus HTTP benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), nproc $(nproc), kernel $(uname -r), node $(node -v), 1-minute load average before the run $LOAD_BEFORE"
echo "load: $TOOL$([ "$TOOL" = wrk ] && echo " $(wrk --version 2>&1 | head -1 | awk '{print $2}')"), GET $URL_PATH, $CONNS keep-alive connections, ${DURATION_S} s per measurement, $ROUNDS interleaved rounds (medians; req/s min–max in brackets)"
echo "pinning: $([ "$PIN" = 1 ] && echo 'servers (and the function instances Nimbus spawns) on CPU 0, load generator on CPU 1' || echo 'none')"
echo "config: $CONFIG"
if awk -v l="$LOAD_BEFORE" 'BEGIN { exit !(l > 1.5) }'; then
  echo "warning: the 1-minute load average was $LOAD_BEFORE before the run: other work is running, expect low and noisy numbers"
fi
echo
echo "| server | req/s (min–max) | p50 ms | p99 ms | CPU µs / request (server + instances) | errors | req/s vs node:http |"
echo "|---|---:|---:|---:|---:|---:|---:|"
echo "| Nimbus dev (gateway + function instances) | $N_RPS ($N_MIN–$N_MAX) | $N_P50 | $N_P99 | $((N_CS + N_CI)) ($N_CS + $N_CI) | $N_ERR | ${RATIO}× |"
echo "| raw node:http, same JSON | $H_RPS ($H_MIN–$H_MAX) | $H_P50 | $H_P99 | $((H_CS + H_CI)) ($H_CS + $H_CI) | $H_ERR | 1.00× |"
echo
echo "Nimbus costs ${CPU_RATIO}× the CPU per request of raw node:http."
printf '%s' "$WARM_LOG"
echo "Nimbus runtime processes (function instances and warm-pool spares) alive after the last round: $INSTANCES, all on the gateway's CPU."

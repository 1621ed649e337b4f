#!/usr/bin/env bash
# bench/generator.sh — loadramp's generator against wrk (and vegeta), through the
# library and through the product (`loadramp run`), and the cost of held-open SSE
# subscribers. Every acceptance point of the generator-speed issue is printed with
# PASS or FAIL against its target, all measured in this one run.
#
# Starts nginx on loopback with one worker (and its master) pinned to CPU 0, then
# runs each generator pinned to CPU 1, one after another, 64 connections:
#   1. maximum rate: wrk and loadramp unpaced (rate 0) alternated MAX_ROUNDS times
#      (the best of each kept: a shared host's noise moves one run by 30 %), with
#      what CPU 1 was busy per request in each round (the generator's own cost, less
#      noisy than the rate: both cores are busy, and the slower sets the pace), then
#      vegeta: requests/s and ratios (loadramp/wrk >= 0.9, loadramp/vegeta >= 3);
#   2. loadramp at fixed offered rates 5k, 20k, 50k: achieved rate, schedule lag,
#      generator CPU and CPU per 1,000 req/s (CPU <= 15 % of a core at 5k, <= 40 %
#      at 20k), and its starvation (run delay per second: > 0 means it waited
#      for CPU 1, which other processes share); at 5k and 20k alternated with the
#      floor (bench/cmd/floorbench: one thread writing the due requests and reading
#      at loadramp's tick for the rate, nothing else), and loadramp's CPU as a
#      multiple of it.
#      RATE_ROUNDS rounds per rate, the median round by CPU kept;
#   3. loadramp at half of wrk's maximum: lag p99 < 1 ms (RATE_ROUNDS rounds, the
#      median kept);
#   4. the product path: `loadramp run` on a plan with the nginx as a static
#      target, the rate doubling from 5,000 past wrk's maximum, no generator_health
#      block (the defaults apply): the capacity found and its verdict, and the
#      capacity / wrk ratio (>= 0.8, or generator-limited at or above 0.8x);
#   5. the request path's allocations (go test): 0 per request, on the
#      connections' goroutines and on the dispatcher's loop;
#   6. held-open connections: SUBSCRIBERS SSE subscribers with the pubsub workload
#      (bench/cmd/ssebench) against the bundled event bus on CPU 0 (its --nofile
#      raised): generator RSS per subscriber (<= 32 KiB) and its CPU idle and while
#      delivering;
#   7. peak RSS at 20k req/s for DURATION and MEM_DURATION (< 20 % apart);
#   8. a request mix (the real-workloads issue): three requests weighted 6:3:1, one
#      template variable (a sequence number in the URL) and one response check,
#      against one static request, both unpaced, alternated MIX_ROUNDS times (the
#      best of each kept): the mix reaches >= 0.8x the single request's rate, its shares
#      are within 2 % of the weights; and (with 5) a templated request makes 0
#      allocations per request.
#
# Environment: DURATION (10 s per measurement), CONNECTIONS (64), SUBSCRIBERS
# (20000; clamped to what RLIMIT_NOFILE's hard limit allows, and said so),
# SSE_RATE (messages/s while delivering, 1), MEM_DURATION (60; 0 skips 7),
# MIX_ROUNDS (3), MAX_ROUNDS (5), RATE_ROUNDS (3), SKIP_VEGETA=1, SKIP_PRODUCT=1, SKIP_SSE=1, SKIP_MIX=1.
# Needs: nginx, wrk, taskset, python3, curl (Debian: nginx wrk util-linux python3
# curl) and Go; builds bin/loadramp, bin/eventbus, bin/genbench, bin/ssebench, bin/floorbench and
# (unless SKIP_VEGETA=1) bin/vegeta. Run as root or as a user nginx accepts. Uses
# only 127.0.0.1, on free ports. Numbers on a shared machine are disturbed: the
# header and footer print the load average and the host's CPU pressure.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
MEM_DURATION=${MEM_DURATION:-60}
CONNECTIONS=${CONNECTIONS:-64}
SUBSCRIBERS=${SUBSCRIBERS:-20000}
SSE_RATE=${SSE_RATE:-1}
MIX_ROUNDS=${MIX_ROUNDS:-3}
MAX_ROUNDS=${MAX_ROUNDS:-5}
RATE_ROUNDS=${RATE_ROUNDS:-3}

case "$MAX_ROUNDS$MIX_ROUNDS$RATE_ROUNDS" in *[!0-9]*) echo "generator.sh: MAX_ROUNDS, MIX_ROUNDS and RATE_ROUNDS must be whole numbers >= 1" >&2; exit 1 ;; esac
if [ "$MAX_ROUNDS" -lt 1 ] || [ "$MIX_ROUNDS" -lt 1 ] || [ "$RATE_ROUNDS" -lt 1 ]; then
	echo "generator.sh: MAX_ROUNDS, MIX_ROUNDS and RATE_ROUNDS must be >= 1" >&2
	exit 1
fi
for tool in nginx wrk taskset python3 curl go; do
	command -v "$tool" >/dev/null || { echo "generator.sh: $tool not found (apt-get install nginx wrk util-linux python3 curl)" >&2; exit 1; }
done
if [ "$(nproc)" -lt 2 ]; then
	echo "generator.sh: needs 2 CPUs (target on CPU 0, generator on CPU 1)" >&2
	exit 1
fi
mkdir -p bin
if [ "${SKIP_VEGETA:-0}" = 0 ] && [ ! -x bin/vegeta ]; then
	echo "building vegeta v12.13.0 ..." >&2
	GOBIN=$PWD/bin go install github.com/tsenart/vegeta/v12@v12.13.0
fi
go build -o bin/loadramp ./cmd/loadramp
go build -o bin/eventbus ./cmd/eventbus
go build -o bin/genbench ./bench/cmd/genbench
go build -o bin/ssebench ./bench/cmd/ssebench
go build -o bin/floorbench ./bench/cmd/floorbench

TMP=$(mktemp -d)
PIDS=()
NGINX_PID=""
cleanup() {
	if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
		kill -QUIT "$NGINX_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
	fi
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
field() { # field KEY LINE: value of KEY=value in a key=value line
	tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"
}
median_by() { # median_by KEY LINE...: the line whose KEY is the median (of an even count, the upper middle)
	local key=$1
	shift
	for l in "$@"; do echo "$(field "$key" "$l") $l"; done | sort -g | awk -v n="$#" 'NR == int(n / 2) + 1 {sub(/^[^ ]+ /, ""); print}'
}
RESULTS=() # acceptance lines, printed again at the end
verdict() { # verdict NAME PASS|FAIL DETAIL
	local line
	line=$(printf "%-4s  %s: %s" "$2" "$1" "$3")
	RESULTS+=("$line")
	echo "$line"
}
pressure() { # the host's CPU pressure (some, avg60) and load average
	local psi=""
	[ -r /proc/pressure/cpu ] && psi=$(awk '/^some/ {sub("avg60=", "", $3); print "cpu pressure some avg60 " $3 "%"}' /proc/pressure/cpu)
	echo "load average $(cut -d' ' -f1-3 /proc/loadavg); $psi"
}

PORT=$(freeport)
URL="http://127.0.0.1:${PORT}/"
mkdir -p "$TMP/logs"
cat >"$TMP/nginx.conf" <<NGINX
worker_processes 1;
worker_cpu_affinity 01;
worker_rlimit_nofile 8192;
pid $TMP/nginx.pid;
error_log $TMP/logs/error.log warn;
daemon on;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
events { worker_connections 4096; multi_accept on; }
http {
	access_log off;
	keepalive_requests 1000000000;
	keepalive_timeout 300s;
	client_body_temp_path $TMP/body;
	proxy_temp_path $TMP/proxy;
	fastcgi_temp_path $TMP/fastcgi;
	uwsgi_temp_path $TMP/uwsgi;
	scgi_temp_path $TMP/scgi;
	server {
		listen 127.0.0.1:${PORT} backlog=4096;
		location / { default_type text/plain; return 200 "ok\n"; }
	}
}
NGINX
# The master process is pinned too, so nothing of the target runs on CPU 1.
taskset -c 0 nginx -p "$TMP" -c "$TMP/nginx.conf"
for _ in $(seq 50); do [ -s "$TMP/nginx.pid" ] && break; sleep 0.1; done
NGINX_PID=$(cat "$TMP/nginx.pid")
for _ in $(seq 50); do curl -fsS -o /dev/null "$URL" 2>/dev/null && break; sleep 0.1; done

echo "== generator benchmark: $(nproc) CPUs, $(uname -r), loadramp $(git describe --always --dirty 2>/dev/null || echo dev)"
echo "   before: $(pressure)"
genbench() { # genbench RATE: one genbench line, the generator pinned to CPU 1
	taskset -c 1 bin/genbench -url "$URL" -rate "$1" -connections "$CONNECTIONS" -duration "${DURATION}s"
}

core1() { # CPU 1's busy and idle jiffies so far (/proc/stat: user nice system idle iowait irq softirq)
	awk '/^cpu1 / {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat
}
per_request() { # per_request BEFORE AFTER RPS: CPU 1's busy share between two core1 readings, in µs per request at RPS
	awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN {
		split(a, x, " "); split(b, y, " "); busy = y[1] - x[1]; idle = y[2] - x[2]
		if (busy + idle <= 0 || r <= 0) { print "?"; exit }
		printf "%.2f", busy / (busy + idle) * 1e6 / r
	}'
}
echo "== 1. maximum rate, ${CONNECTIONS} connections, ${DURATION}s, target nginx on CPU 0, generator on CPU 1; wrk and loadramp alternated $MAX_ROUNDS times, the best of each kept"
WRK_RPS=0
LR=""
WCOST=()
LCOST=()
for round in $(seq "$MAX_ROUNDS"); do
	C0=$(core1)
	W=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$URL" | awk '/^Requests\/sec:/ {print $2}')
	C1=$(core1)
	L=$(genbench 0)
	C2=$(core1)
	WCOST+=("us=$(per_request "$C0" "$C1" "$W")")
	LCOST+=("us=$(per_request "$C1" "$C2" "$(field rps "$L")")")
	echo "round $round: wrk $W req/s, loadramp unpaced $(field rps "$L") req/s; CPU 1 busy per request: wrk $(field us "${WCOST[-1]}") µs, loadramp $(field us "${LCOST[-1]}") µs"
	WRK_RPS=$(awk -v a="$WRK_RPS" -v b="$W" 'BEGIN {print (b > a ? b : a)}')
	if [ -z "$LR" ] || awk -v a="$(field rps "$LR")" -v b="$(field rps "$L")" 'BEGIN {exit !(b > a)}'; then LR=$L; fi
done
echo "wrk      requests/s: $WRK_RPS   (wrk's maximum)"
echo "CPU 1 busy per request, median of the rounds: wrk $(field us "$(median_by us "${WCOST[@]}")") µs, loadramp $(field us "$(median_by us "${LCOST[@]}")") µs"
if [ "${SKIP_VEGETA:-0}" = 0 ]; then
	echo "GET $URL" | taskset -c 1 bin/vegeta attack -rate=0 -max-workers="$CONNECTIONS" -workers="$CONNECTIONS" \
		-connections="$CONNECTIONS" -keepalive=true -duration="${DURATION}s" >"$TMP/vegeta.bin"
	VEG_RPS=$(bin/vegeta report -type=json <"$TMP/vegeta.bin" | python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["rate"])')
	rm -f "$TMP/vegeta.bin"
	echo "vegeta   requests/s: $VEG_RPS"
fi
LR_RPS=$(field rps "$LR")
echo "loadramp requests/s: $LR_RPS   unpaced (rate 0)   ($LR)"
R=$(awk -v l="$LR_RPS" -v w="$WRK_RPS" 'BEGIN {printf "%.2f", l/w}')
verdict "unpaced loadramp/wrk >= 0.90" "$(awk -v r="$R" 'BEGIN {print (r >= 0.9 ? "PASS" : "FAIL")}')" "$R ($LR_RPS / $WRK_RPS req/s)"
if [ "${SKIP_VEGETA:-0}" = 0 ]; then
	awk -v l="$LR_RPS" -v v="$VEG_RPS" 'BEGIN { printf "ratio loadramp/vegeta: %.2f  (target >= 3.00) %s\n", l/v, (l/v >= 3 ? "ok" : "BELOW TARGET") }'
fi

echo "== 2. fixed offered rates, ${CONNECTIONS} connections, ${DURATION}s, $RATE_ROUNDS rounds each, the median round by CPU kept (CPU: share of one core; starved: its threads' run delay per second; steal: the hypervisor's time on its CPU per second)"
# The floor: bin/floorbench, one thread that only writes the due requests at loadramp's
# ticks and reads what has arrived (no goroutines, no parsing, no latency), at the
# same rates, alternated with loadramp. On loopback the sender's write also runs the
# target's TCP receive and wakes the target, so this is what the kernel alone costs
# here per request.
declare -A CPU_AT RPS_AT STARVED_AT FLOOR_AT
for rate in 5000 20000 50000; do
	RUNS=()
	FLOORS=()
	for round in $(seq "$RATE_ROUNDS"); do
		L=$(genbench "$rate")
		RUNS+=("$L")
		ROUND="round $round: loadramp CPU $(field cpu "$L") lag p99 $(field lag_p99_ms "$L") ms"
		if [ "$rate" != 50000 ]; then
			F=$(taskset -c 1 bin/floorbench -addr "127.0.0.1:${PORT}" -rate "$rate" -connections "$CONNECTIONS" -duration "${DURATION}s")
			FLOORS+=("$F")
			ROUND="$ROUND; floor CPU $(field cpu "$F")"
		fi
		echo "    $ROUND"
	done
	LR=$(median_by cpu "${RUNS[@]}")
	CPU_AT[$rate]=$(field cpu "$LR")
	RPS_AT[$rate]=$(field rps "$LR")
	STARVED_AT[$rate]=$(field starved "$LR")
	awk -v o="$rate" -v a="$(field rps "$LR")" -v lag="$(field lag_p99_ms "$LR")" -v cpu="$(field cpu "$LR")" \
		-v st="$(field starved "$LR")" -v sl="$(field steal "$LR")" -v p99="$(field latency_p99_ms "$LR")" 'BEGIN {
		d = (a - o) / o; if (d < 0) d = -d
		printf "offered %6d  achieved %9.1f (%+.2f%%, target within 1%%) %s  lag p99 %.3f ms  latency p99 %.3f ms  CPU %.3f = %.4f per 1,000 req/s  starved %.3f  steal %.3f\n",
			o, a, 100 * (a - o) / o, (d <= 0.01 ? "ok" : "OFF TARGET"), lag, p99, cpu, cpu * 1000 / o, st, sl
	}'
	echo "    ($LR)"
	if [ "${#FLOORS[@]}" -gt 0 ]; then
		FL=$(median_by cpu "${FLOORS[@]}")
		FLOOR_AT[$rate]=$(field cpu "$FL")
		awk -v o="$rate" -v f="${FLOOR_AT[$rate]}" -v c="${CPU_AT[$rate]}" 'BEGIN {
			printf "offered %6d  the floor (bin/floorbench: one thread, raw write(2) and read(2) at the tick loadramp uses, nothing else): CPU %.3f = %.4f per 1,000 req/s; loadramp %.2fx the floor\n", o, f, f * 1000 / o, c / f
		}'
		echo "    ($FL)"
	fi
done
cpu_verdict() { # cpu_verdict RATE MAX: the CPU counts only if the rate was achieved (a starved generator uses little CPU)
	local ok
	ok=$(awk -v c="${CPU_AT[$1]}" -v m="$2" -v a="${RPS_AT[$1]}" -v o="$1" 'BEGIN {print (c <= m && a >= 0.99 * o ? "PASS" : "FAIL")}')
	verdict "generator CPU at $1 offered <= $2 of a core, the rate achieved" "$ok" \
		"${CPU_AT[$1]} ($(awk -v c="${CPU_AT[$1]}" -v o="$1" 'BEGIN {printf "%.4f", c * 1000 / o}') per 1,000 req/s; achieved ${RPS_AT[$1]} req/s; starved ${STARVED_AT[$1]}; the floor ${FLOOR_AT[$1]}, so $(awk -v c="${CPU_AT[$1]}" -v f="${FLOOR_AT[$1]}" 'BEGIN {printf "%.2f", c / f}')x)"
}
cpu_verdict 5000 0.15
cpu_verdict 20000 0.40
echo "generator CPU per 1,000 req/s: $(for r in 5000 20000 50000; do awk -v c="${CPU_AT[$r]}" -v o="$r" -v a="${RPS_AT[$r]}" 'BEGIN {printf "%dk %.4f (achieved %.0f)   ", o / 1000, c * 1000 / o, a}'; done)"

HALF=$(awk -v w="$WRK_RPS" 'BEGIN {printf "%d", w / 2}')
echo "== 3. half of wrk's maximum: $HALF req/s, $RATE_ROUNDS rounds, the median round by lag p99 kept"
RUNS=()
for round in $(seq "$RATE_ROUNDS"); do
	L=$(genbench "$HALF")
	RUNS+=("$L")
	echo "    round $round: lag p99 $(field lag_p99_ms "$L") ms, starved $(field starved "$L") (worst second $(field starved_peak "$L")), steal $(field steal "$L") (worst second $(field steal_peak "$L"))"
done
LR=$(median_by lag_p99_ms "${RUNS[@]}")
echo "    median round: ($LR)"
LAG=$(field lag_p99_ms "$LR")
verdict "lag p99 < 1 ms at half of wrk's maximum ($HALF req/s)" "$(awk -v l="$LAG" 'BEGIN {print (l < 1 ? "PASS" : "FAIL")}')" "$LAG ms (starved $(field starved "$LR"), steal $(field steal "$LR") and $(field steal_peak "$LR") in its worst second, achieved $(field rps "$LR") req/s)"

if [ "${SKIP_PRODUCT:-0}" = 0 ]; then
	MAX=$(awk -v w="$WRK_RPS" 'BEGIN {printf "%d", 2 * w}')
	echo "== 4. product path: loadramp run, static nginx target, rate doubling from 5000 to $MAX, ${CONNECTIONS} connections, loadramp on CPU 1"
	cat >"$TMP/ramp.yaml" <<PLAN
version: 1
name: bench-nginx-ramp
description: bench/generator.sh - nginx (one worker, CPU 0) as a static target, the rate doubled past wrk's maximum.
fleets:
  target:
    provider: static
    outputs:
      endpoint: "http://127.0.0.1:${PORT}"
  generators:
    provider: local
workload:
  engine: builtin
  http:
    url: "{{ .fleets.target.endpoint }}/"
    timeout: 2s
parameters:
  - { name: rate, start: 5000, max: ${MAX} }
  - { name: connections, start: ${CONNECTIONS}, max: ${CONNECTIONS} }
ramp:
  factor: 2
  order: sequential
  warmup: 2s
  hold: 5s
  cooldown: 1s
  confirm: 1
  refine: 3
  max_steps: 20
gates:
  - latency.p99 < 50ms
  - errors.ratio < 0.001
  - throughput.ratio > 0.95
# No generator_health block: the documented defaults apply.
report:
  formats: [json, md]
PLAN
	set +e
	taskset -c 1 bin/loadramp run "$TMP/ramp.yaml" --out "$TMP/runs" --progress plain >"$TMP/run.log" 2>&1
	RC=$?
	set -e
	grep -E '^(step|capacity|status|refine)' "$TMP/run.log" | sed 's/^/    /' || true
	REPORT=$(ls "$TMP"/runs/*/report.json 2>/dev/null | head -1)
	if [ "$RC" != 0 ] || [ -z "$REPORT" ]; then
		tail -20 "$TMP/run.log" >&2
		verdict "loadramp run reaches >= 0.8x wrk's maximum" FAIL "the run failed (exit $RC)"
	else
		python3 - "$REPORT" "$WRK_RPS" >"$TMP/product.txt" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1])); wrk = float(sys.argv[2])
steps = rep["steps"]
cap = (rep.get("capacity") or {}).get("parameters", {}).get("rate", 0)
cap_rps = (rep.get("capacity") or {}).get("metrics", {}).get("throughput.rps", 0)
status = rep["status"]
# The generator-fail attempts that count: the last step's, where a
# generator-limited run ended, or the refinement's. An earlier one was rerun
# (its generator's CPU taken) and passed.
last = max((s["index"] for s in steps), default=0)
genfail = [s for s in steps if s["verdict"] == "generator-fail" and
           (s["kind"] == "refine" or (status == "generator-limited" and s["index"] == last))]
gen_rate = min((s["parameters"]["rate"] for s in genfail), default=0)
b = rep.get("bottleneck") or {}
if status == "generator-limited":
    verdict = "generator-limited at %.0f req/s (%s)" % (gen_rate, genfail[0].get("reason", "") if genfail else "")
    reached = gen_rate
elif status == "bottleneck":
    verdict = "target-side bottleneck (%s): capacity %.0f req/s offered, %.0f answered; first failure at %.0f" % (
        b.get("side", "?"), cap, cap_rps, b.get("to", 0))
    reached = cap
    fs = b.get("findings") or []
    if fs:
        verdict += "; named cause: %s, %s: %s" % (fs[0].get("rule"), fs[0].get("resource"), fs[0].get("observed"))
    if genfail:
        verdict += "; refinement generator-limited at %.0f req/s (%s)" % (gen_rate, genfail[0].get("reason", ""))
        reached = max(cap, gen_rate)
else:
    verdict = "%s (capacity %.0f req/s)" % (status, cap)
    reached = cap
print("VERDICT=" + json.dumps(verdict))
print("CAPACITY=%.0f" % cap)
print("REACHED=%.0f" % reached)
print("RATIO=%.2f" % (reached / wrk if wrk else 0))
for s in steps:
    m = s["metrics"]; r = s["parameters"]["rate"]
    print("STEP %-7s %-8s rate %7.0f  answered %9.1f  p99 %7.2f ms  lag p99 %6.2f ms  gen cpu %.3f (%.4f per 1,000 req/s)  starved %s  steal %s  host steal %s  -> %s" % (
        s["kind"], "#%d.%d" % (s["index"], s["attempt"]), r, m.get("throughput.rps", 0), 1e3 * m.get("latency.p99", 0),
        1e3 * m.get("generator.lag.p99", 0), m.get("generator.cpu", 0), 1000 * m.get("generator.cpu", 0) / r,
        ("%.3f" % m["generator.starved.ratio"]) if "generator.starved.ratio" in m else "-",
        ("%.3f" % m["generator.steal.ratio"]) if "generator.steal.ratio" in m else "-",
        ("%.3f" % m["host.cpu.steal"]) if "host.cpu.steal" in m else "-", s["verdict"]))
for want in (5000, 20000):
    cpus = [s["metrics"].get("generator.cpu") for s in steps if s["parameters"]["rate"] == want and s["kind"] == "ramp"]
    if cpus and cpus[0] is not None:
        print("CPU%d=%.3f" % (want, cpus[0]))
PY
		eval "$(grep -E '^(VERDICT|CAPACITY|REACHED|RATIO|CPU[0-9]+)=' "$TMP/product.txt")"
		grep '^STEP' "$TMP/product.txt" | sed 's/^STEP /    /'
		echo "wrk's maximum:      $WRK_RPS req/s"
		echo "loadramp found:     $VERDICT"
		echo "generator CPU in the product at 5k: ${CPU5000:-?} ($(awk -v c="${CPU5000:-0}" 'BEGIN {printf "%.4f", c / 5}') per 1,000 req/s), at 20k: ${CPU20000:-?} ($(awk -v c="${CPU20000:-0}" 'BEGIN {printf "%.4f", c / 20}') per 1,000 req/s)"
		verdict "loadramp run reaches >= 0.8x wrk's maximum" "$(awk -v r="$RATIO" 'BEGIN {print (r >= 0.8 ? "PASS" : "FAIL")}')" \
			"$RATIO ($REACHED of $WRK_RPS req/s; $VERDICT)"
	fi
fi

echo "== 5. the request path's allocations"
ALLOC_OUT=$(go test -count=1 -v -run '^(TestRequestZeroAlloc|TestTemplatedRequestZeroAlloc|TestLoopRequestZeroAlloc)$' \
	-bench '^(BenchmarkRequest|BenchmarkRequestMix|BenchmarkLoopRequest)$' \
	-benchmem -benchtime 20000x ./orchestrator/loadgen 2>&1 || true)
allocs() { awk -v b="^$1-" '$1 ~ b {for (i = 1; i <= NF; i++) if ($(i) == "allocs/op") print $(i-1)}' <<<"$ALLOC_OUT"; }
ALLOCS=$(allocs BenchmarkRequest)
MIX_ALLOCS=$(allocs BenchmarkRequestMix)
LOOP_ALLOCS=$(allocs BenchmarkLoopRequest)
grep -E '^(Benchmark|ok|FAIL|---)|allocations per request' <<<"$ALLOC_OUT" | sed 's/^ *//; s/^/    /'
if grep -q '^ok' <<<"$ALLOC_OUT" && [ "${ALLOCS:-x}" = 0 ] && [ "${LOOP_ALLOCS:-x}" = 0 ]; then
	verdict "0 allocations per request" PASS "BenchmarkRequest ${ALLOCS} allocs/op, BenchmarkLoopRequest ${LOOP_ALLOCS} allocs/op (the dispatcher's loop), TestRequestZeroAlloc and TestLoopRequestZeroAlloc ok"
else
	verdict "0 allocations per request" FAIL "BenchmarkRequest ${ALLOCS:-?} allocs/op, BenchmarkLoopRequest ${LOOP_ALLOCS:-?} allocs/op"
fi
if grep -q '^ok' <<<"$ALLOC_OUT" && [ "${MIX_ALLOCS:-x}" = 0 ]; then
	verdict "a templated mix makes 0 allocations per request" PASS "BenchmarkRequestMix ${MIX_ALLOCS} allocs/op, TestTemplatedRequestZeroAlloc ok"
else
	verdict "a templated mix makes 0 allocations per request" FAIL "BenchmarkRequestMix ${MIX_ALLOCS:-?} allocs/op"
fi

if [ "${SKIP_SSE:-0}" = 0 ]; then
	HARD=$(ulimit -Hn)
	SUBS=$SUBSCRIBERS
	if [ "$HARD" != unlimited ] && [ "$((SUBS + 256))" -gt "$HARD" ]; then
		SUBS=$((HARD - 256))
		echo "   note: RLIMIT_NOFILE's hard limit is $HARD here (and this user cannot raise it): holding $SUBS subscribers, not $SUBSCRIBERS"
	fi
	NOFILE=$((SUBS + 256))
	echo "== 6. held-open connections: $SUBS SSE subscribers (pubsub workload, bench/cmd/ssebench, CPU 1) on the bundled event bus (CPU 0, --nofile $NOFILE)"
	BUS_PORT=$(freeport)
	taskset -c 0 bin/eventbus --listen "127.0.0.1:$BUS_PORT" --nofile "$NOFILE" >"$TMP/bus.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$BUS_PORT/healthz" 2>/dev/null && break; sleep 0.1; done
	set +e
	SSE=$(ulimit -n "$NOFILE" && taskset -c 1 bin/ssebench -bus "http://127.0.0.1:$BUS_PORT" -subscribers "$SUBS" \
		-idle "${DURATION}s" -hold "${DURATION}s" -rate "$SSE_RATE" 2>"$TMP/ssebench.log")
	set -e
	echo "    ($SSE)"
	PER=$(field rss_per_subscriber_kib "$SSE")
	if [ -n "$PER" ] && [ "$(field held "$SSE")" = "$SUBS" ]; then
		echo "generator RSS per subscriber: $PER KiB   CPU idle: $(field cpu_idle "$SSE")   CPU delivering $(field deliveries_per_s "$SSE") msg/s: $(field cpu_delivering "$SSE")"
		verdict "an idle SSE subscriber costs <= 32 KiB of generator RSS" "$(awk -v p="$PER" 'BEGIN {print (p <= 32 ? "PASS" : "FAIL")}')" "$PER KiB ($SUBS subscribers)"
	else
		tail -5 "$TMP/ssebench.log" >&2
		verdict "an idle SSE subscriber costs <= 32 KiB of generator RSS" FAIL "ssebench did not hold $SUBS subscribers"
	fi
fi

if [ "$MEM_DURATION" -gt 0 ]; then
	echo "== 7. memory flat with duration: 20000 req/s"
	A=$(taskset -c 1 bin/genbench -url "$URL" -rate 20000 -connections "$CONNECTIONS" -duration "${DURATION}s")
	B=$(taskset -c 1 bin/genbench -url "$URL" -rate 20000 -connections "$CONNECTIONS" -duration "${MEM_DURATION}s")
	awk -v a="$(field peak_rss_mb "$A")" -v b="$(field peak_rss_mb "$B")" -v da="$DURATION" -v db="$MEM_DURATION" 'BEGIN {
		d = (b - a) / a; if (d < 0) d = -d
		printf "peak RSS %ds: %.1f MB   %ds: %.1f MB   (%.1f%% apart, target < 20%%) %s\n", da, a, db, b, 100 * d, (d < 0.2 ? "ok" : "OVER TARGET")
	}'
fi

if [ "${SKIP_MIX:-0}" = 0 ]; then
	echo "== 8. a request mix: 3 requests 6:3:1 (one template variable, one response check) against one request, unpaced, ${CONNECTIONS} connections, ${DURATION}s each, alternated $MIX_ROUNDS times"
	best() { # best A B: the genbench output of the two with the higher rps
		if awk -v a="$(field rps "$1")" -v b="$(field rps "$2")" 'BEGIN {exit !(a >= b)}'; then echo "$1"; else echo "$2"; fi
	}
	ONE=""
	MIX=""
	for _ in $(seq "$MIX_ROUNDS"); do
		O=$(taskset -c 1 bin/genbench -name single -url "$URL" -rate 0 -connections "$CONNECTIONS" -duration "${DURATION}s")
		M=$(taskset -c 1 bin/genbench -name mix -mix -url "$URL" -rate 0 -connections "$CONNECTIONS" -duration "${DURATION}s")
		sed 's/^/    /' <<<"$O"
		sed 's/^/    /' <<<"$M"
		ONE=$(best "${ONE:-$O}" "$O")
		MIX=$(best "${MIX:-$M}" "$M")
	done
	ONE_RPS=$(field rps "$ONE")
	MIX_RPS=$(field rps "$MIX")
	awk -v oc="$(field cpu "$ONE")" -v on="$(field requests "$ONE")" -v mc="$(field cpu "$MIX")" -v mn="$(field requests "$MIX")" -v d="$DURATION" \
		'BEGIN {printf "generator CPU per request: single %.1f us, mix %.1f us\n", 1e6 * oc * d / on, 1e6 * mc * d / mn}'
	R=$(awk -v m="$MIX_RPS" -v o="$ONE_RPS" 'BEGIN {printf "%.2f", m / o}')
	verdict "a three-request mix reaches >= 0.8x the single request's unpaced rate" "$(awk -v r="$R" 'BEGIN {print (r >= 0.8 ? "PASS" : "FAIL")}')" \
		"$R ($MIX_RPS / $ONE_RPS req/s)"
	SHARES=$(awk -v a="$(field share_item "$MIX")" -v b="$(field share_list "$MIX")" -v c="$(field share_health "$MIX")" 'BEGIN {
		split(a " " b " " c, s, " "); split("0.6 0.3 0.1", w, " "); d = 0
		for (i = 1; i <= 3; i++) { x = s[i] - w[i]; if (x < 0) x = -x; if (x > d) d = x }
		printf "%s item %.4f list %.4f health %.4f (weights 0.6 0.3 0.1)", (d <= 0.02 ? "PASS" : "FAIL"), a, b, c
	}')
	ERRS=$(field errors "$MIX")
	verdict "the mix's shares are within 2% of its weights, without errors" "$([ "${SHARES%% *}" = PASS ] && [ "$ERRS" = 0 ] && echo PASS || echo FAIL)" \
		"${SHARES#* }, $ERRS errors"
fi

echo "== acceptance (generator-speed and request-mix issues), one run"
for l in "${RESULTS[@]}"; do echo "$l"; done
echo "   after: $(pressure)"

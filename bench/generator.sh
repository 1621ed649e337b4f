#!/usr/bin/env bash
# bench/generator.sh — compare loadramp's builtin generator with wrk and vegeta.
#
# Starts nginx on loopback with one worker pinned to CPU 0, then runs each generator
# pinned to CPU 1 for the same duration:
#   1. maximum rate over 64 connections: wrk, vegeta, loadramp; prints requests/s and
#      the ratios loadramp/wrk (target >= 0.8) and loadramp/vegeta (target >= 3);
#   2. loadramp at fixed offered rates (5,000 and 20,000 req/s): achieved rate (target
#      within 1% of offered) and schedule lag p99 (target < 1 ms on an idle machine);
#   3. loadramp at 20,000 req/s for DURATION and for MEM_DURATION: peak RSS (target
#      < 20% apart).
# Environment: DURATION (default 10), MEM_DURATION (default 60; 0 skips 3), SKIP_MAX=1
# skips 1,
# CONNECTIONS (64), PORT (18089), RATES ("5000 20000").
# Needs: nginx, wrk, taskset (Debian: nginx wrk util-linux); builds bin/vegeta and
# bin/genbench if missing. Run from anywhere; uses only 127.0.0.1.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
MEM_DURATION=${MEM_DURATION:-60}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18089}
RATES=${RATES:-"5000 20000"}
URL="http://127.0.0.1:${PORT}/"

for tool in nginx wrk taskset; do
	command -v "$tool" >/dev/null || { echo "generator.sh: $tool not found (apt-get install nginx wrk util-linux)" >&2; exit 1; }
done
if [ "$(nproc)" -lt 2 ]; then
	echo "generator.sh: needs 2 CPUs (target on CPU 0, generator on CPU 1)" >&2
	exit 1
fi
mkdir -p bin
if [ ! -x bin/vegeta ]; then
	echo "building vegeta v12.13.0 ..." >&2
	GOBIN=$PWD/bin go install github.com/tsenart/vegeta/v12@v12.13.0
fi
go build -o bin/genbench ./bench/cmd/genbench

TMP=$(mktemp -d)
NGINX_PID=""
cleanup() {
	if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
		kill -QUIT "$NGINX_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

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

field() { # field KEY LINE: value of KEY=value in a genbench line
	tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"
}

if [ "${SKIP_MAX:-0}" = 0 ]; then
echo "== maximum rate, ${CONNECTIONS} connections, ${DURATION}s, target nginx on CPU 0, generator on CPU 1"
WRK_OUT=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$URL")
WRK_RPS=$(awk '/^Requests\/sec:/ {print $2}' <<<"$WRK_OUT")
echo "wrk      requests/s: $WRK_RPS"

echo "GET $URL" | taskset -c 1 bin/vegeta attack -rate=0 -max-workers="$CONNECTIONS" -workers="$CONNECTIONS" \
	-connections="$CONNECTIONS" -keepalive=true -duration="${DURATION}s" >"$TMP/vegeta.bin"
VEG_JSON=$(bin/vegeta report -type=json <"$TMP/vegeta.bin")
rm -f "$TMP/vegeta.bin"
VEG_RPS=$(python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["rate"])' <<<"$VEG_JSON")
echo "vegeta   requests/s: $VEG_RPS"

LR=$(taskset -c 1 bin/genbench -url "$URL" -rate 0 -connections "$CONNECTIONS" -duration "${DURATION}s")
LR_RPS=$(field rps "$LR")
echo "loadramp requests/s: $LR_RPS    ($LR)"
awk -v l="$LR_RPS" -v w="$WRK_RPS" -v v="$VEG_RPS" 'BEGIN {
	printf "ratio loadramp/wrk:    %.2f  (target >= 0.80) %s\n", l/w, (l/w >= 0.8 ? "ok" : "BELOW TARGET")
	printf "ratio loadramp/vegeta: %.2f  (target >= 3.00) %s\n", l/v, (l/v >= 3 ? "ok" : "BELOW TARGET")
}'
fi

echo "== fixed offered rates, ${CONNECTIONS} connections, ${DURATION}s"
for rate in $RATES; do
	LR=$(taskset -c 1 bin/genbench -url "$URL" -rate "$rate" -connections "$CONNECTIONS" -duration "${DURATION}s")
	awk -v o="$rate" -v a="$(field rps "$LR")" -v lag="$(field lag_p99_ms "$LR")" -v p99="$(field latency_p99_ms "$LR")" 'BEGIN {
		d = (a - o) / o; if (d < 0) d = -d
		printf "offered %6d  achieved %9.1f  (%+.2f%%, target within 1%%) %s   lag p99 %.3f ms (target < 1 ms) %s   latency p99 %.3f ms\n",
			o, a, 100 * (a - o) / o, (d <= 0.01 ? "ok" : "OFF TARGET"), lag, (lag < 1 ? "ok" : "OVER TARGET"), p99
	}'
	echo "    ($LR)"
done

if [ "$MEM_DURATION" -gt 0 ]; then
	echo "== memory flat with duration: 20000 req/s"
	A=$(taskset -c 1 bin/genbench -url "$URL" -rate 20000 -connections "$CONNECTIONS" -duration "${DURATION}s")
	B=$(taskset -c 1 bin/genbench -url "$URL" -rate 20000 -connections "$CONNECTIONS" -duration "${MEM_DURATION}s")
	awk -v a="$(field peak_rss_mb "$A")" -v b="$(field peak_rss_mb "$B")" -v da="$DURATION" -v db="$MEM_DURATION" 'BEGIN {
		d = (b - a) / a; if (d < 0) d = -d
		printf "peak RSS %ds: %.1f MB   %ds: %.1f MB   (%.1f%% apart, target < 20%%) %s\n", da, a, db, b, 100 * d, (d < 0.2 ? "ok" : "OVER TARGET")
	}'
fi

#!/usr/bin/env bash
# Installs what `make test` needs, skipping whatever is already there.
set -euo pipefail
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v prometheus-node-exporter >/dev/null 2>&1 || [ -x /usr/bin/prometheus-node-exporter ] || need+=(prometheus-node-exporter)
# The Prometheus source's tests: a real server and process-exporter.
command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ] || need+=(prometheus)
command -v prometheus-process-exporter >/dev/null 2>&1 || [ -x /usr/bin/prometheus-process-exporter ] || need+=(prometheus-process-exporter)
command -v locust >/dev/null 2>&1 || need+=(python3-locust)
# The pub/sub transports' tests: real servers from Debian's packages, nchan
# (nginx's pub/sub module: SSE and WebSocket) and nats-server (WebSocket).
[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || need+=(libnginx-mod-nchan)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
# The report's browser test renders report.html headless.
[ -x /usr/bin/chromium ] || need+=(chromium fonts-liberation)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test-deps: missing ${need[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  echo "test-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The Debian packages start their services; the tests start their own.
  systemctl stop nginx prometheus-node-exporter prometheus prometheus-process-exporter nats-server >/dev/null 2>&1 || true
  pkill -x nginx >/dev/null 2>&1 || true
  pkill -f prometheus-node-exporter >/dev/null 2>&1 || true
  pkill -x prometheus >/dev/null 2>&1 || true
  pkill -f prometheus-process-exporter >/dev/null 2>&1 || true
fi
echo "test-deps: ok"

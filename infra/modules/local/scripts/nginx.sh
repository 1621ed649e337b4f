#!/usr/bin/env bash
# nginx.sh STATE_DIR PORT UPSTREAM_PORT TIMEOUT_SECONDS NGINX
#
# Writes STATE_DIR/nginx.conf (nginx in the foreground, proxying
# 127.0.0.1:PORT to the event bus on 127.0.0.1:UPSTREAM_PORT) and starts it
# with start.sh. STATE_DIR is nginx's prefix (-p): every path in the
# configuration is relative to it, so the directory's name, whatever
# characters it holds, is never written into the configuration.
set -euo pipefail
umask 077
dir=$1 port=$2 upstream=$3 timeout=$4 nginx=$5
for n in "$port" "$upstream" "$timeout"; do
	case $n in '' | *[!0-9]*)
		echo "nginx.sh: port or timeout '$n' is not a whole number" >&2
		exit 2
		;;
	esac
done
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir/nginx-temp"
cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid nginx-master.pid;
error_log nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path nginx-temp/body;
    proxy_temp_path nginx-temp/proxy;
    fastcgi_temp_path nginx-temp/fastcgi;
    uwsgi_temp_path nginx-temp/uwsgi;
    scgi_temp_path nginx-temp/scgi;
    upstream bus { server 127.0.0.1:$upstream; keepalive 64; }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://bus;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
CONF
exec "$here/start.sh" nginx "$dir" "$port" "$timeout" "$nginx" -e "$dir/nginx-error.log" -p "$dir/" -c nginx.conf

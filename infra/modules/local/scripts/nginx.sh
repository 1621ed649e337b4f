#!/usr/bin/env bash
# nginx.sh STATE_DIR PORT UPSTREAM_PORT TIMEOUT_SECONDS NGINX
#
# Writes STATE_DIR/nginx.conf (nginx in the foreground, proxying
# 127.0.0.1:PORT to the event bus on 127.0.0.1:UPSTREAM_PORT, every path inside
# STATE_DIR) and starts it with start.sh.
set -euo pipefail
dir=$1 port=$2 upstream=$3 timeout=$4 nginx=$5
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir/nginx-temp"
cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $dir/nginx-master.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/nginx-temp/body;
    proxy_temp_path $dir/nginx-temp/proxy;
    fastcgi_temp_path $dir/nginx-temp/fastcgi;
    uwsgi_temp_path $dir/nginx-temp/uwsgi;
    scgi_temp_path $dir/nginx-temp/scgi;
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
exec "$here/start.sh" nginx "$dir" "$port" "$timeout" "$nginx" -e "$dir/nginx-error.log" -p "$dir" -c "$dir/nginx.conf"

#!/bin/sh
# capture.sh DEST TARGET_PID GENERATOR_PID: copies the /proc files hoststat reads
# into DEST/proc, renaming the processes to pids 4242 (target) and 4343
# (generator) and giving them 3 open fds each. Used once to make the fixtures;
# the numbers of each case are then edited by hand.
set -eu
dest=$1/proc; tp=$2; gp=$3
mkdir -p "$dest"
for f in stat meminfo pressure/cpu pressure/memory net/sockstat net/netstat net/stat/nf_conntrack \
	sys/fs/file-nr sys/fs/file-max sys/fs/nr_open sys/net/core/somaxconn sys/net/ipv4/ip_local_port_range \
	sys/net/ipv4/tcp_tw_reuse sys/net/ipv4/tcp_fin_timeout sys/net/ipv4/tcp_max_syn_backlog \
	sys/net/ipv4/tcp_max_tw_buckets sys/net/ipv4/tcp_syncookies \
	sys/net/netfilter/nf_conntrack_count sys/net/netfilter/nf_conntrack_max; do
	[ -r /proc/$f ] || continue
	mkdir -p "$dest/$(dirname $f)"
	cat /proc/$f > "$dest/$f"
done
for pair in "$tp:4242" "$gp:4343"; do
	src=${pair%%:*}; dst=${pair##*:}
	mkdir -p "$dest/$dst/fd"
	for f in stat status limits; do cat /proc/$src/$f > "$dest/$dst/$f"; done
	sed -i "s/^$src /$dst /" "$dest/$dst/stat"
	for i in 0 1 2; do : > "$dest/$dst/fd/$i"; done
done

#!/usr/bin/env bash
# stop.sh PIDFILE [TIMEOUT_SECONDS]
#
# Stops the process group (session) whose leader's pid is in PIDFILE: SIGTERM,
# then SIGKILL after TIMEOUT_SECONDS (default 10). A missing pid file or a
# group already gone is success: destroy must be safe to repeat.
set -uo pipefail
pidfile=$1 timeout=${2:-10}
if [ ! -s "$pidfile" ]; then
	echo "no pid file $pidfile: nothing to stop"
	exit 0
fi
pg=$(cat "$pidfile")
case $pg in '' | *[!0-9]*)
	echo "pid file $pidfile holds no pid: '$pg'" >&2
	exit 1
	;;
esac

group_alive() { # a member of process group $pg that is not a zombie
	local f s st _ppid pgrp
	# No member at all, zombie or not: done without reading /proc.
	kill -0 -- "-$pg" 2>/dev/null || return 1
	for f in /proc/[0-9]*/stat; do
		{ read -r s <"$f"; } 2>/dev/null || continue
		s=${s##*) }
		read -r st _ppid pgrp _ <<<"$s"
		if [ "$pgrp" = "$pg" ] && [ "$st" != Z ] && [ "$st" != X ]; then
			return 0
		fi
	done
	return 1
}

kill -TERM -- "-$pg" 2>/dev/null || true
for ((i = 0; i < timeout * 10; i++)); do
	if ! group_alive; then
		rm -f "$pidfile"
		echo "stopped process group $pg"
		exit 0
	fi
	sleep 0.1
done
kill -KILL -- "-$pg" 2>/dev/null || true
for ((i = 0; i < 50; i++)); do
	group_alive || break
	sleep 0.1
done
rm -f "$pidfile"
echo "killed process group $pg after ${timeout}s"

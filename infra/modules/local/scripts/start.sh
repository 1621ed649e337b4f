#!/usr/bin/env bash
# start.sh NAME STATE_DIR READY_PORT TIMEOUT_SECONDS COMMAND [ARGS...]
#
# Starts COMMAND detached from Terraform (its own session, stdio to
# STATE_DIR/NAME.log), writes its pid to STATE_DIR/NAME.pid and waits until it
# accepts TCP connections on 127.0.0.1:READY_PORT. If it exits or is not ready
# in time, whatever it started is stopped and the script fails, so a failed
# create leaves nothing behind (Terraform runs no destroy provisioner for a
# resource whose create failed).
set -euo pipefail
umask 077 # the process's files are the run's: private, like the run directory
name=$1 dir=$2 port=$3 timeout=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
pidfile="$dir/$name.pid"
log="$dir/$name.log"

alive() { # pid: running and not a zombie
	local s
	{ read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
	s=${s##*) }
	[ "${s%% *}" != Z ]
}

if [ -s "$pidfile" ] && alive "$(cat "$pidfile")"; then
	echo "$name: already running with pid $(cat "$pidfile") ($pidfile)" >&2
	exit 1
fi
# setsid: its own session and process group, so Terraform does not wait for it
# and stop.sh can signal everything it forks.
setsid "$@" >>"$log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$pidfile"
# Its identity beside the pid: the start time (clock ticks after boot,
# /proc/PID/stat field 22) and the boot id. stop.sh signals the group only
# while the pid is still this process (or what it left in its group), never a
# process that reused the pid. Read now: until this shell waits for it, the
# pid cannot be reused.
{ read -r stat <"/proc/$pid/stat"; } 2>/dev/null || stat=""
read -ra f <<<"${stat##*) }"
echo "${f[19]:-0} $(cat /proc/sys/kernel/random/boot_id 2>/dev/null)" >"$dir/$name.start"
deadline=$((SECONDS + timeout))
while :; do
	if ! alive "$pid"; then
		echo "$name: exited during startup; its log $log:" >&2
		if [ "$(wc -l <"$log")" -le 25 ]; then
			cat "$log" >&2
		else
			head -n 5 "$log" >&2
			echo "..." >&2
			tail -n 15 "$log" >&2
		fi
		"$here/stop.sh" "$pidfile" 2 >/dev/null
		exit 1
	fi
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "$name: ready on 127.0.0.1:$port (pid $pid)"
		exit 0
	fi
	if [ "$SECONDS" -ge "$deadline" ]; then
		echo "$name: not accepting connections on 127.0.0.1:$port after ${timeout}s; stopping it" >&2
		"$here/stop.sh" "$pidfile" 2 >/dev/null
		exit 1
	fi
	sleep 0.1
done

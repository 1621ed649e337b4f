#!/usr/bin/env bash
# agent.sh DIR NAME TIMEOUT_SECONDS LOADRAMP
#
# Starts `LOADRAMP agent` on a free loopback port, detached from Terraform
# (its own session, output to DIR/agent.log, pid to DIR/agent.pid), waits
# until it says where it listens and writes its URL to DIR/url, which the
# module's agents output reads. The agent's token comes from the
# environment (LOADRAMP_AGENT_TOKEN), never from an argument. If the agent
# exits or does not say where it listens in time, it is stopped and the
# script fails, so a failed create leaves nothing behind.
set -euo pipefail
umask 077
dir=$1 name=$2 timeout=$3 loadramp=$4
case $timeout in '' | *[!0-9]*)
	echo "agent.sh: timeout '$timeout' is not a whole number" >&2
	exit 2
	;;
esac
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
pidfile="$dir/agent.pid"
log="$dir/agent.log"
rm -f "$dir/url"

alive() { # pid: running and not a zombie
	local s
	{ read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
	s=${s##*) }
	[ "${s%% *}" != Z ]
}

if [ -s "$pidfile" ] && alive "$(cat "$pidfile")"; then
	echo "$name: an agent already runs with pid $(cat "$pidfile") ($pidfile)" >&2
	exit 1
fi
: >>"$log" # exists before the agent writes to it: the loop reads it at once
setsid "$loadramp" agent --listen 127.0.0.1:0 --name "$name" --log-format json >>"$log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$pidfile"
deadline=$((SECONDS + timeout))
while :; do
	if ! alive "$pid"; then
		echo "$name: the agent exited during startup; its log $log:" >&2
		tail -n 20 "$log" >&2
		"$here/stop.sh" "$pidfile" 2 >/dev/null
		exit 1
	fi
	addr=$(sed -n 's/^agent [^ ]* listening on \([^ ]*\).*$/\1/p' "$log" | tail -n 1)
	if [ -n "$addr" ]; then
		printf 'http://%s\n' "$addr" >"$dir/url"
		echo "$name: agent listening on $addr (pid $pid)"
		exit 0
	fi
	if [ "$SECONDS" -ge "$deadline" ]; then
		echo "$name: the agent did not say where it listens after ${timeout}s; stopping it" >&2
		"$here/stop.sh" "$pidfile" 2 >/dev/null
		exit 1
	fi
	sleep 0.1
done

#!/usr/bin/env bash
# stop.sh PIDFILE [TIMEOUT_SECONDS]
#
# Stops the process group (session) whose leader's pid is in PIDFILE: SIGTERM,
# then SIGKILL after TIMEOUT_SECONDS (default 10). A missing pid file or a
# group already gone is success: destroy must be safe to repeat.
#
# Only the group start.sh made is signalled: the leader's identity (start time
# and boot id, in NAME.start beside NAME.pid) must still match, or, once the
# leader has exited, every live member of its group must have started after
# it. A pid that is another process's now (a reboot, a wrap of the pid space)
# is reported and left alone.
set -uo pipefail
pidfile=$1 timeout=${2:-10}
idfile=${pidfile%.pid}.start
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

why=""
owned() { # the group is still the one start.sh made; else sets why
	local rec_start rec_boot boot f s
	local -a a
	if ! read -r rec_start rec_boot 2>/dev/null <"$idfile" || [ -z "$rec_start" ] || [ "$rec_start" = 0 ]; then
		why="no identity recorded in $idfile, so pid $pg cannot be told apart from a process that reused it"
		return 1
	fi
	boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)
	if [ -n "$rec_boot" ] && [ -n "$boot" ] && [ "$boot" != "$rec_boot" ]; then
		why="pid $pg was recorded before the machine rebooted"
		return 1
	fi
	if { read -r s <"/proc/$pg/stat"; } 2>/dev/null; then
		read -ra a <<<"${s##*) }"
		if [ "${a[19]}" != "$rec_start" ]; then
			why="pid $pg is another process now (started at tick ${a[19]}, not $rec_start)"
			return 1
		fi
		return 0
	fi
	# The leader has exited: what is left in its group must be younger.
	for f in /proc/[0-9]*/stat; do
		{ read -r s <"$f"; } 2>/dev/null || continue
		read -ra a <<<"${s##*) }"
		if [ "${a[2]}" = "$pg" ] && [ "${a[0]}" != Z ] && [ "${a[0]}" != X ] && [ "${a[19]}" -lt "$rec_start" ]; then
			why="process group $pg holds ${f%/stat} started before its recorded leader: not the group start.sh made"
			return 1
		fi
	done
	return 0
}

leave() {
	echo "process group $pg: gone, not signalled: $why"
	rm -f "$pidfile" "$idfile"
	exit 0
}

if group_alive && ! owned; then
	leave
fi
kill -TERM -- "-$pg" 2>/dev/null || true
for ((i = 0; i < timeout * 10; i++)); do
	if ! group_alive; then
		rm -f "$pidfile" "$idfile"
		echo "stopped process group $pg"
		exit 0
	fi
	sleep 0.1
done
if ! owned; then
	leave
fi
kill -KILL -- "-$pg" 2>/dev/null || true
for ((i = 0; i < 50; i++)); do
	group_alive || break
	sleep 0.1
done
rm -f "$pidfile" "$idfile"
echo "killed process group $pg after ${timeout}s"

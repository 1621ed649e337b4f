package hoststat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// This file reads what loadramp needs to know about processes beyond their
// samples: who their children are, their command line, their process group,
// and where an nginx master keeps its configuration. Every read is under a
// procfs root (DefaultRoot on a live host, a fixture tree in tests).

// ProcStat is the part of /proc/PID/stat loadramp reads.
type ProcStat struct {
	Pid   int
	Comm  string
	State string // R, S, D, Z, X...
	PPid  int
	PGrp  int
	// Start is when the process started, in clock ticks after boot (field
	// 22); 0 when the line is too short to hold it.
	Start uint64
}

// Gone reports whether the process has exited (a zombie waiting to be reaped,
// or dead).
func (s ProcStat) Gone() bool { return s.State == "Z" || s.State == "X" }

// ParseProcStat parses the first fields of a /proc/PID/stat line:
// "pid (comm) state ppid pgrp ...". comm may hold spaces and parentheses, so
// it ends at the last ')'.
func ParseProcStat(b []byte) (ProcStat, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return ProcStat{}, fmt.Errorf("stat: no (comm) in %q", truncate(b))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return ProcStat{}, fmt.Errorf("stat: pid: %w", err)
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 3 {
		return ProcStat{}, fmt.Errorf("stat: %d fields after comm, want at least 3", len(f))
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	if err := errors.Join(err1, err2); err != nil {
		return ProcStat{}, fmt.Errorf("stat: %w", err)
	}
	st := ProcStat{Pid: pid, Comm: string(b[open+1 : end]), State: f[0], PPid: ppid, PGrp: pgrp}
	if len(f) >= 20 {
		start, err := strconv.ParseUint(f[19], 10, 64)
		if err != nil {
			return ProcStat{}, fmt.Errorf("stat: start time: %w", err)
		}
		st.Start = start
	}
	return st, nil
}

func truncate(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

func rootOr(root string) string {
	if root == "" {
		return DefaultRoot
	}
	return root
}

// ReadProcStat reads /proc/PID/stat under root.
func ReadProcStat(root string, pid int) (ProcStat, error) {
	b, err := os.ReadFile(filepath.Join(rootOr(root), strconv.Itoa(pid), "stat"))
	if err != nil {
		return ProcStat{}, err
	}
	return ParseProcStat(b)
}

// Processes returns the stat of every process under root, in pid order;
// processes that exit while being read are left out.
func Processes(root string) ([]ProcStat, error) {
	pids, err := Pids(root)
	if err != nil {
		return nil, err
	}
	var out []ProcStat
	for _, pid := range pids {
		if st, err := ReadProcStat(root, pid); err == nil {
			out = append(out, st)
		}
	}
	return out, nil
}

// Pids lists the processes under root, in pid order.
func Pids(root string) ([]int, error) {
	entries, err := os.ReadDir(rootOr(root))
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids, nil
}

// Children lists the pids whose parent is pid, in order.
func Children(root string, pid int) []int {
	all, _ := Processes(root)
	var out []int
	for _, p := range all {
		if p.PPid == pid {
			out = append(out, p.Pid)
		}
	}
	return out
}

// GroupLive reports whether process group pgid has a member that has not
// exited (zombies do not count). When the process list cannot be read it
// says true: the caller then assumes the worst.
func GroupLive(root string, pgid int) bool {
	all, err := Processes(root)
	if err != nil {
		return true
	}
	for _, p := range all {
		if p.PGrp == pgid && !p.Gone() {
			return true
		}
	}
	return false
}

// LeadsGroup reports whether pid is alive and leads its own process group
// (a recorded pid that was reused by another process does not).
func LeadsGroup(root string, pid int) bool {
	st, err := ReadProcStat(root, pid)
	return err == nil && st.PGrp == pid && !st.Gone()
}

// Comm is a process's name (/proc/PID/comm).
func Comm(root string, pid int) (string, error) {
	b, err := os.ReadFile(filepath.Join(rootOr(root), strconv.Itoa(pid), "comm"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// PidsByComm lists the processes whose /proc/PID/comm is name, in pid order.
func PidsByComm(root, name string) ([]int, error) {
	all, err := Pids(root)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, pid := range all {
		if c, err := Comm(root, pid); err == nil && c == name {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Cmdline reads a process's command line. nginx rewrites its own (the
// "nginx: master process /usr/sbin/nginx -c ..." title) into one string with
// spaces: such a title is split on blanks.
func Cmdline(root string, pid int) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(rootOr(root), strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return nil, fmt.Errorf("command line of pid %d: %w", pid, err)
	}
	var args []string
	for _, a := range bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0}) {
		args = append(args, string(a))
	}
	if len(args) == 1 && strings.HasPrefix(args[0], "nginx: ") {
		args = strings.Fields(args[0])
	}
	return args, nil
}

// DebianNginxConf is the configuration Debian's nginx reads without -c.
const DebianNginxConf = "/etc/nginx/nginx.conf"

// NginxConf returns the configuration file of nginx process pid, from its
// command line: -c FILE, relative to the -p prefix (itself relative to the
// process's working directory), or Debian's default without -c. ok is false
// when pid is not nginx; conf is "" for a worker or cache process (its title
// no longer holds the master's flags).
func NginxConf(root string, pid int) (conf string, ok bool, err error) {
	args, err := Cmdline(root, pid)
	if err != nil {
		return "", false, err
	}
	isNginx := false
	start := 0
	for i, a := range args {
		if strings.HasPrefix(a, "-") {
			break
		}
		if filepath.Base(a) == "nginx" || a == "nginx:" {
			isNginx, start = true, i+1
		}
	}
	if !isNginx || len(args) == 0 {
		return "", false, nil
	}
	if args[0] == "nginx:" && (len(args) < 2 || args[1] != "master") {
		return "", true, nil
	}
	var prefix, file string
	for i := start; i < len(args); i++ {
		switch a := args[i]; {
		case (a == "-p" || a == "-c") && i+1 < len(args):
			if a == "-p" {
				prefix = args[i+1]
			} else {
				file = args[i+1]
			}
			i++
		case strings.HasPrefix(a, "-p") && len(a) > 2:
			prefix = a[2:]
		case strings.HasPrefix(a, "-c") && len(a) > 2:
			file = a[2:]
		}
	}
	if file == "" {
		return DebianNginxConf, true, nil
	}
	if filepath.IsAbs(file) {
		return filepath.Clean(file), true, nil
	}
	if prefix == "" {
		// Without -p, a relative -c is relative to the compiled-in prefix.
		return filepath.Join(filepath.Dir(DebianNginxConf), file), true, nil
	}
	if !filepath.IsAbs(prefix) {
		cwd, err := os.Readlink(filepath.Join(rootOr(root), strconv.Itoa(pid), "cwd"))
		if err != nil {
			return "", true, fmt.Errorf("working directory of pid %d (for the relative prefix %q): %w", pid, prefix, err)
		}
		prefix = filepath.Join(cwd, prefix)
	}
	return filepath.Join(prefix, file), true, nil
}

// KernelRelease is the running kernel's release (sys/kernel/osrelease), ""
// when it cannot be read.
func KernelRelease(root string) string {
	b, err := os.ReadFile(filepath.Join(rootOr(root), "sys", "kernel", "osrelease"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

package hoststat

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MemoryFor returns how much memory process pid may use: the machine's
// (MemTotal in meminfo under root) or, when lower, its cgroup v2's limit
// (memory.max of the cgroup /proc/PID/cgroup names, under cgroupRoot,
// usually /sys/fs/cgroup). 0 when neither can be read.
func MemoryFor(root, cgroupRoot string, pid int) int64 {
	total := memTotal(root)
	if lim := cgroupMemoryMax(root, cgroupRoot, pid); lim > 0 && (total == 0 || lim < total) {
		return lim
	}
	return total
}

func memTotal(root string) int64 {
	b, err := os.ReadFile(filepath.Join(rootOr(root), "meminfo"))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// cgroupMemoryMax is the memory.max of pid's cgroup v2 ("0::/path" in
// /proc/PID/cgroup), 0 when unlimited ("max") or unreadable.
func cgroupMemoryMax(root, cgroupRoot string, pid int) int64 {
	b, err := os.ReadFile(filepath.Join(rootOr(root), strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		path, ok := strings.CutPrefix(line, "0::")
		if !ok {
			continue
		}
		m, err := os.ReadFile(filepath.Join(cgroupRoot, filepath.Clean("/"+path), "memory.max"))
		if err != nil {
			return 0
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(m)), 10, 64)
		if err != nil {
			return 0 // "max"
		}
		return n
	}
	return 0
}

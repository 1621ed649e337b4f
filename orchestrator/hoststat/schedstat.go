package hoststat

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RunDelay returns the time the threads of process pid (0: this process)
// have spent runnable but waiting for a CPU, summed over its threads
// (/proc/PID/task/*/schedstat, second field). A process sharing its CPUs with
// a busy neighbour shows it here while its own CPU share stays low. Threads
// that exited take their wait with them, so judge the delta over a window of
// a process whose threads live on (a Go process's do).
func RunDelay(root string, pid int) (time.Duration, error) {
	if root == "" {
		root = DefaultRoot
	}
	p := "self"
	if pid > 0 {
		p = strconv.Itoa(pid)
	}
	tasks, err := os.ReadDir(filepath.Join(root, p, "task"))
	if err != nil {
		return 0, fmt.Errorf("run delay: %w", err)
	}
	var sum int64
	read := 0
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(root, p, "task", t.Name(), "schedstat"))
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || v < 0 {
			continue
		}
		sum += v
		read++
	}
	if read == 0 {
		return 0, fmt.Errorf("run delay: no schedstat under %s (kernel without schedstats?)", filepath.Join(root, p, "task"))
	}
	return time.Duration(sum), nil
}

package hoststat

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Identity tells one process apart from any later process that reuses its
// pid: the pid, when the process started (clock ticks after boot, from
// /proc/PID/stat) and in which boot (/proc/sys/kernel/random/boot_id). A pid
// and a start time name one process for the life of a boot: reusing a pid
// takes a wrap of the whole pid space, not one clock tick.
//
// Exe is the executable the process ran when its identity was read, for
// messages only: a process that exec'd another program (a shell script that
// execs nginx) is still the same process, and a binary upgraded on disk reads
// as "... (deleted)".
type Identity struct {
	Pid   int
	Start uint64
	Boot  string
	Exe   string
}

// String describes the identity for messages: "pid 4242 (/usr/sbin/nginx)".
func (id Identity) String() string {
	if id.Exe == "" {
		return fmt.Sprintf("pid %d", id.Pid)
	}
	return fmt.Sprintf("pid %d (%s)", id.Pid, id.Exe)
}

// Known reports whether the identity can be checked (it has a start time).
func (id Identity) Known() bool { return id.Pid > 0 && id.Start > 0 }

// BootID is the kernel's boot id under root ("" when it cannot be read).
func BootID(root string) string {
	b, err := os.ReadFile(filepath.Join(rootOr(root), "sys", "kernel", "random", "boot_id"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Exe is the executable of process pid ("" when it cannot be read: a zombie,
// a kernel thread, or no permission).
func Exe(root string, pid int) string {
	p, err := os.Readlink(filepath.Join(rootOr(root), strconv.Itoa(pid), "exe"))
	if err != nil {
		return ""
	}
	return p
}

// ReadIdentity reads the identity of the live process pid.
func ReadIdentity(root string, pid int) (Identity, error) {
	st, err := ReadProcStat(root, pid)
	if err != nil {
		return Identity{}, fmt.Errorf("identity of pid %d: %w", pid, err)
	}
	if st.Start == 0 {
		return Identity{}, fmt.Errorf("identity of pid %d: its stat has no start time", pid)
	}
	return Identity{Pid: pid, Start: st.Start, Boot: BootID(root), Exe: Exe(root, pid)}, nil
}

// Match is what CheckIdentity found at a recorded pid.
type Match int

// What CheckIdentity finds.
const (
	// Same: the recorded process is still there (possibly a zombie).
	Same Match = iota
	// Gone: no process has the pid any more (or the machine rebooted).
	Gone
	// Other: the pid now belongs to another process.
	Other
)

// CheckIdentity says whether the process id was read from is still the one
// at id.Pid, and describes what is there when it is not. An identity without
// a start time (!id.Known()) never matches: nothing proves it is the same.
func CheckIdentity(root string, id Identity) (Match, string) {
	if !id.Known() {
		return Other, fmt.Sprintf("pid %d: no start time recorded, so it cannot be told apart from a process that reused the pid", id.Pid)
	}
	if boot := BootID(root); id.Boot != "" && boot != "" && boot != id.Boot {
		return Gone, fmt.Sprintf("%s was recorded before the machine rebooted", id)
	}
	st, err := ReadProcStat(root, id.Pid)
	if errors.Is(err, fs.ErrNotExist) {
		return Gone, fmt.Sprintf("%s has exited", id)
	}
	if err != nil {
		// Unreadable: assume the worst, it is not ours.
		return Other, fmt.Sprintf("%s cannot be checked: %v", id, err)
	}
	if st.Start != id.Start {
		exe := Exe(root, id.Pid)
		if exe == "" {
			exe = st.Comm
		}
		return Other, fmt.Sprintf("%s has exited; pid %d is now another process (%s, started %d ticks after boot, not %d)",
			id, id.Pid, exe, st.Start, id.Start)
	}
	if st.Gone() {
		return Same, fmt.Sprintf("%s has exited and awaits its parent (a zombie)", id)
	}
	return Same, fmt.Sprintf("%s is running", id)
}

// GroupMembers returns the stat of every live member of process group pgid
// (zombies left out), in pid order.
func GroupMembers(root string, pgid int) ([]ProcStat, error) {
	all, err := Processes(root)
	if err != nil {
		return nil, err
	}
	var out []ProcStat
	for _, p := range all {
		if p.PGrp == pgid && !p.Gone() {
			out = append(out, p)
		}
	}
	return out, nil
}

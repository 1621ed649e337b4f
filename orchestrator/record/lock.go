package record

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LockFile is the lock file inside a run directory. The process that owns the
// run (run, resume, destroy) holds an exclusive flock on it and writes its pid
// into it. The kernel drops the lock when the process dies, however it dies,
// so a held lock means a live owner.
const LockFile = ".lock"

// lockRetry is how long Lock keeps trying while another process holds the
// lock: `loadramp runs` takes it, shared, for an instant to tell a live run
// from a dead one, and must not make a resume fail.
const lockRetry = 250 * time.Millisecond

// LockedError is returned by Lock when another live process owns the run
// directory.
type LockedError struct {
	Dir string
	// PID is the owner's pid, or 0 if it had not yet written it.
	PID int
}

func (e *LockedError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = "process " + strconv.Itoa(e.PID)
		if cmd := cmdline(e.PID); cmd != "" {
			who += " (" + cmd + ")"
		}
	}
	return fmt.Sprintf("run directory %s is in use by %s: a run, resume or destroy of it is still going; wait for it to end or stop it first", e.Dir, who)
}

// RunLock is a held lock on a run directory; Release gives it up.
type RunLock struct {
	f *os.File
}

// Lock takes the run directory's lock (creating LockFile if needed) and
// records this process's pid in it. If another live process holds it, Lock
// returns a *LockedError naming that process.
func Lock(dir string) (*RunLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock run directory %s: %w", dir, err)
	}
	deadline := time.Now().Add(lockRetry)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock run directory %s: %w", dir, err)
		}
		if time.Now().After(deadline) {
			pid := readLockPID(f)
			f.Close()
			return nil, &LockedError{Dir: dir, PID: pid}
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The pid is for the message a second taker gets; the lock itself is
	// the flock, so a stale pid left by a dead owner misleads nobody.
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock run directory %s: write the owner's pid: %w", dir, err)
	}
	return &RunLock{f: f}, nil
}

// Release gives the lock up. It is safe to call more than once, and on nil.
func (l *RunLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	// Closing the only descriptor releases the flock. The pid stays in the
	// file: removing a lock file races with the next taker's open.
	err := l.f.Close()
	l.f = nil
	return err
}

func readLockPID(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// cmdline is the owner's command line, for the message; "" if unreadable.
func cmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// LockHolder reports whether a live process holds dir's lock, and its pid
// (0 when unknown). A run directory without a lock file has no owner: every
// loadramp that writes one takes the lock before it writes run.json.
func LockHolder(dir string) (held bool, pid int) {
	f, err := os.Open(filepath.Join(dir, LockFile))
	if err != nil {
		return false, 0
	}
	defer f.Close()
	// A shared lock, given up at once: it fails only while an owner holds
	// the exclusive one.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return true, readLockPID(f)
		}
		return false, 0
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false, 0
}

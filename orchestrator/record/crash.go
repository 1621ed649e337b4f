package record

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// CrashFile receives what the Go runtime prints when loadramp crashes during
// a run (an unrecovered panic, a fatal error such as the runtime running out
// of memory), besides stderr: such a crash ends the process with exit code
// 2, which nothing inside it can change, and leaves run.json "running" (`loadramp
// runs` shows it interrupted, and crashed with this file's first line).
const CrashFile = "crash.log"

// CaptureCrashes makes the run directory receive the runtime's crash output
// (debug.SetCrashOutput, one file per process: the run started last gets
// it) until release, which stops it and removes the file if nothing crashed.
func (d *Dir) CaptureCrashes() (release func()) {
	path := filepath.Join(d.path, CrashFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return func() {}
	}
	defer f.Close() // SetCrashOutput keeps its own descriptor
	if debug.SetCrashOutput(f, debug.CrashOptions{}) != nil {
		_ = os.Remove(path)
		return func() {}
	}
	return func() {
		_ = debug.SetCrashOutput(nil, debug.CrashOptions{})
		if st, err := os.Stat(path); err == nil && st.Size() == 0 {
			_ = os.Remove(path)
		}
	}
}

// Crash returns the first line of a run directory's crash output ("fatal
// error: runtime: out of memory", "panic: ..."), "" when it has none.
func Crash(dir string) string {
	f, err := os.Open(filepath.Join(dir, CrashFile))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			return line
		}
	}
	return ""
}

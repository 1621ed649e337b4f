package infra

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

const (
	logTailLines = 10
	logTailBytes = 16 << 10
)

// readLogTail returns up to n last lines of the file at path (read from its
// last 16 KiB), or nil if it cannot be read.
func readLogTail(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil
	}
	off := max(st.Size()-logTailBytes, 0)
	buf, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return nil
	}
	if off > 0 {
		// Drop the partial first line.
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	lines := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// formatTail renders log lines for an error message.
func formatTail(path string, lines []string) string {
	if len(lines) == 0 {
		return fmt.Sprintf("log %s is empty", path)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "last lines of %s:", path)
	for _, l := range lines {
		b.WriteString("\n\t| ")
		b.WriteString(l)
	}
	return b.String()
}

// appendLogLine appends one loadramp marker line to a process log, so the log
// tells when loadramp started or saw the end of the process.
func appendLogLine(path, format string, args ...any) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "loadramp: %s "+format+"\n", append([]any{time.Now().UTC().Format(time.RFC3339Nano)}, args...)...)
}

package diagnose

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// KernelLog is the Source.Path of the kernel log ring buffer.
const KernelLog = "/dev/kmsg"

// Source is a log to scan for signatures.
type Source struct {
	// Name is how evidence names the log ("eventbus output", "nginx error.log", "kernel").
	Name string
	// Path is the file to read, or KernelLog.
	Path string
	// Process is the watched process the log belongs to; "" for host-wide logs.
	Process string
	// Side is "target" or "generator"; "" for host-wide logs.
	Side string
}

// LogMatch is the lines of one source that matched one rule.
type LogMatch struct {
	Rule    string   `json:"rule"`
	Source  string   `json:"source"`
	Process string   `json:"process,omitempty"`
	Side    string   `json:"side,omitempty"`
	Lines   []string `json:"lines"` // the first MaxLinesKept matching lines
	Count   int      `json:"count"` // every matching line
	// Warmup is true for lines logged during the step's warmup: they explain
	// the step, but a limit reached before its hold is not the hold's (the
	// previous, heavier step's connections draining, say), so they do not
	// make a finding LimitReached.
	Warmup bool `json:"warmup,omitempty"`
}

// MaxLinesKept is how many matching lines a LogMatch keeps as evidence.
const MaxLinesKept = 5

// maxScanBytes bounds what one Scan reads from one file; older bytes are skipped.
const maxScanBytes = 64 << 20

// Scanner reads the lines appended to logs since it last looked. The zero value
// is not usable; call NewScanner. It is safe for concurrent use.
type Scanner struct {
	mu      sync.Mutex
	offsets map[string]int64  // file path -> byte offset of the first unread line
	kmsg    map[string]uint64 // kernel log path -> last sequence number seen
}

// NewScanner returns a Scanner that has read nothing yet.
func NewScanner() *Scanner {
	return &Scanner{offsets: map[string]int64{}, kmsg: map[string]uint64{}}
}

// Mark skips everything already in the sources, so the next Scan sees only lines
// written after it (call it as a step starts). Unreadable sources are skipped.
func (s *Scanner) Mark(ctx context.Context, sources []Source) {
	for _, src := range sources {
		if ctx.Err() != nil {
			return
		}
		if src.Path == KernelLog || strings.HasPrefix(src.Path, "/dev/kmsg") {
			recs, err := readKmsg(src.Path, 0)
			if err != nil {
				continue
			}
			s.mu.Lock()
			for _, r := range recs {
				s.kmsg[src.Path] = max(s.kmsg[src.Path], r.seq)
			}
			s.mu.Unlock()
			continue
		}
		if fi, err := os.Stat(src.Path); err == nil {
			s.mu.Lock()
			s.offsets[src.Path] = fi.Size()
			s.mu.Unlock()
		}
	}
}

// Scan reads the complete lines appended to each source since the last Mark or
// Scan and returns those matching a signature, grouped by source and rule.
// Sources that cannot be read (missing, permission denied) are listed in skipped
// with the reason; they are not an error.
func (s *Scanner) Scan(ctx context.Context, sources []Source) (matches []LogMatch, skipped []string) {
	for _, src := range sources {
		if ctx.Err() != nil {
			skipped = append(skipped, src.Name+": "+ctx.Err().Error())
			continue
		}
		var lines []string
		var err error
		if src.Path == KernelLog || strings.HasPrefix(src.Path, "/dev/kmsg") {
			lines, err = s.kernelLines(src.Path)
		} else {
			lines, err = s.fileLines(src.Path)
		}
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", src.Name, err))
			continue
		}
		matches = append(matches, matchLines(src, lines)...)
	}
	return matches, skipped
}

func matchLines(src Source, lines []string) []LogMatch {
	var out []LogMatch
	idx := map[string]int{}
	for _, line := range lines {
		rule, ok := MatchLine(line)
		if !ok {
			continue
		}
		i, seen := idx[rule]
		if !seen {
			i = len(out)
			idx[rule] = i
			out = append(out, LogMatch{Rule: rule, Source: src.Name, Process: src.Process, Side: src.Side})
		}
		m := &out[i]
		m.Count++
		if len(m.Lines) < MaxLinesKept {
			if len(line) > maxLine {
				line = line[:maxLine]
			}
			m.Lines = append(m.Lines, line)
		}
	}
	return out
}

func (s *Scanner) fileLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	s.mu.Lock()
	off := s.offsets[path]
	s.mu.Unlock()
	if fi.Size() < off { // truncated or rotated: start again
		off = 0
	}
	if fi.Size()-off > maxScanBytes {
		off = fi.Size() - maxScanBytes
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seek: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, fi.Size()-off))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	// Keep a partial last line for the next scan: its writer is still writing it.
	end := bytes.LastIndexByte(data, '\n') + 1
	s.mu.Lock()
	s.offsets[path] = off + int64(end)
	s.mu.Unlock()
	return splitLines(data[:end]), nil
}

func splitLines(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		if l := strings.TrimRight(sc.Text(), "\r"); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func (s *Scanner) kernelLines(path string) ([]string, error) {
	s.mu.Lock()
	since := s.kmsg[path]
	s.mu.Unlock()
	recs, err := readKmsg(path, since)
	if err != nil {
		return nil, err
	}
	lines := make([]string, 0, len(recs))
	for _, r := range recs {
		since = max(since, r.seq)
		lines = append(lines, r.msg)
	}
	s.mu.Lock()
	s.kmsg[path] = since
	s.mu.Unlock()
	return lines, nil
}

type kmsgRecord struct {
	seq uint64
	msg string
}

// readKmsg reads every record of the kernel ring buffer newer than sequence
// number since. /dev/kmsg returns one record per read and EAGAIN at the end
// when opened non-blocking.
func readKmsg(path string, since uint64) ([]kmsgRecord, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer syscall.Close(fd)
	var out []kmsgRecord
	buf := make([]byte, 16*1024)
	for range 1 << 20 { // the ring holds far fewer records; bounds a misbehaving device
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.EINTR) {
			continue // EPIPE: the record was overwritten while we read; go on
		}
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("read %s: %w", path, err)
		}
		if n == 0 {
			break
		}
		if r, ok := parseKmsg(buf[:n]); ok && r.seq > since {
			out = append(out, r)
		}
	}
	return out, nil
}

// parseKmsg parses "prio,seq,usec,flags[,...];message\n[ KEY=value\n]...".
func parseKmsg(b []byte) (kmsgRecord, bool) {
	head, rest, ok := bytes.Cut(b, []byte{';'})
	if !ok {
		return kmsgRecord{}, false
	}
	f := bytes.Split(head, []byte{','})
	if len(f) < 2 {
		return kmsgRecord{}, false
	}
	seq, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return kmsgRecord{}, false
	}
	msg, _, _ := bytes.Cut(rest, []byte{'\n'})
	return kmsgRecord{seq: seq, msg: string(msg)}, true
}

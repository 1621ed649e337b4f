package infra

import (
	"bytes"
	"sync"

	"github.com/rs/zerolog"
)

// maxLineLog bounds a line kept while waiting for its end.
const maxLineLog = 64 << 10

// lineLog is an io.Writer that logs each line written to it as one event, so
// terraform's output lands in the run's events.log line by line.
type lineLog struct {
	log    zerolog.Logger
	stream string

	mu  sync.Mutex
	buf []byte
}

func newLineLog(log zerolog.Logger, stream string) *lineLog {
	return &lineLog{log: log, stream: stream}
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > maxLineLog {
		l.emit(l.buf)
		l.buf = nil
	}
	if len(l.buf) == 0 {
		l.buf = nil // let a large buffer go
	}
	return len(p), nil
}

func (l *lineLog) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	l.log.Info().Str("terraform", l.stream).Msg(string(line))
}

package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
)

// Error classes of an engine's ErrorClasses (result.EngineResult). The gen_*
// classes are the generator's own failures, never the target's: they count in
// generator.errors.*, and the others in errors.*.
const (
	ClassHTTP4xx = "http_4xx"
	ClassHTTP5xx = "http_5xx"
	ClassTimeout = "timeout"
	ClassRefused = "refused"
	ClassReset   = "reset"
	ClassOther   = "other"
	// ClassIncomplete: due in the hold but never sent before it ended.
	ClassIncomplete = "incomplete"
	// ClassSubscribe: a subscription the target refused or failed.
	ClassSubscribe = "subscribe"
	// ClassCheck: an answer that failed its request's response check (an
	// unexpected status, a body without the expected text or JSON value).
	ClassCheck = "check"

	ClassEMFILE        = "gen_emfile"
	ClassENFILE        = "gen_enfile"
	ClassEADDRNOTAVAIL = "gen_eaddrnotavail"
	// ClassInflight: a publish over the generator's in-flight bound, not sent.
	ClassInflight = "gen_inflight"
)

// GeneratorClassPrefix starts the name of every generator-side error class.
const GeneratorClassPrefix = "gen_"

// IsGeneratorClass reports whether class is the generator's own failure.
func IsGeneratorClass(class string) bool { return strings.HasPrefix(class, GeneratorClassPrefix) }

// ErrorClass maps a dial, write or read error to its class: the generator's
// own limits (EMFILE, ENFILE, EADDRNOTAVAIL) apart from the target's refusals,
// resets and timeouts.
func ErrorClass(err error) string {
	switch {
	case errors.Is(err, syscall.EMFILE):
		return ClassEMFILE
	case errors.Is(err, syscall.ENFILE):
		return ClassENFILE
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return ClassEADDRNOTAVAIL
	case errors.Is(err, syscall.ECONNREFUSED):
		return ClassRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ClassReset
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return ClassTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ClassTimeout
	}
	return ClassOther
}

// StatusClass is the class of an HTTP status: "" for anything below 400.
func StatusClass(status int) string {
	switch {
	case status >= 500:
		return ClassHTTP5xx
	case status >= 400:
		return ClassHTTP4xx
	}
	return ""
}

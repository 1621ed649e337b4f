package loadgen

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// Error classes of a Window's ErrorClasses. The gen_* classes are the generator's own
// failures (GeneratorErrors), never the target's; the others count in Errors.
const (
	ClassHTTP4xx    = "http_4xx"
	ClassHTTP5xx    = "http_5xx"
	ClassTimeout    = "timeout"
	ClassRefused    = "refused"
	ClassReset      = "reset"
	ClassOther      = "other"
	ClassIncomplete = "incomplete" // due in the hold but never sent before it ended
	ClassEMFILE     = "gen_emfile"
	ClassENFILE     = "gen_enfile"
	ClassAddrNotAv  = "gen_eaddrnotavail"
)

// class is an outcome's error class as a small integer, so counting is an array
// increment on the hot path.
type class uint8

const (
	clsOK class = iota
	clsHTTP4xx
	clsHTTP5xx
	clsTimeout
	clsRefused
	clsReset
	clsOther
	clsIncomplete
	clsEMFILE
	clsENFILE
	clsAddrNotAvail
	numClasses
)

var classNames = [numClasses]string{
	clsOK:           "",
	clsHTTP4xx:      ClassHTTP4xx,
	clsHTTP5xx:      ClassHTTP5xx,
	clsTimeout:      ClassTimeout,
	clsRefused:      ClassRefused,
	clsReset:        ClassReset,
	clsOther:        ClassOther,
	clsIncomplete:   ClassIncomplete,
	clsEMFILE:       ClassEMFILE,
	clsENFILE:       ClassENFILE,
	clsAddrNotAvail: ClassAddrNotAv,
}

// generatorSide reports whether c is the generator's own failure.
func (c class) generatorSide() bool { return c >= clsEMFILE }

// answered reports whether the target sent a response (any status).
func (c class) answered() bool { return c <= clsHTTP5xx }

func classifyStatus(status int) class {
	switch {
	case status >= 500:
		return clsHTTP5xx
	case status >= 400:
		return clsHTTP4xx
	default:
		return clsOK
	}
}

// classifyErr maps a dial, write or read error to its class.
func classifyErr(err error) class {
	switch {
	case errors.Is(err, syscall.EMFILE):
		return clsEMFILE
	case errors.Is(err, syscall.ENFILE):
		return clsENFILE
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return clsAddrNotAvail
	case errors.Is(err, syscall.ECONNREFUSED):
		return clsRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return clsReset
	case errors.Is(err, os.ErrDeadlineExceeded):
		return clsTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return clsTimeout
	}
	return clsOther
}

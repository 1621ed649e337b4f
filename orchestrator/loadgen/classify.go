package loadgen

import "github.com/loadramp/loadramp/orchestrator/metrics"

// class is an outcome's error class as a small integer, so counting is an array
// increment on the hot path.
type class uint8

const (
	clsOK class = iota
	clsHTTP4xx
	clsHTTP5xx
	clsCheck // answered, but the request's response check failed
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

// classNames are the classes' names in a Window's ErrorClasses (metrics.Class*).
var classNames = [numClasses]string{
	clsOK:           "",
	clsHTTP4xx:      metrics.ClassHTTP4xx,
	clsHTTP5xx:      metrics.ClassHTTP5xx,
	clsCheck:        metrics.ClassCheck,
	clsTimeout:      metrics.ClassTimeout,
	clsRefused:      metrics.ClassRefused,
	clsReset:        metrics.ClassReset,
	clsOther:        metrics.ClassOther,
	clsIncomplete:   metrics.ClassIncomplete,
	clsEMFILE:       metrics.ClassEMFILE,
	clsENFILE:       metrics.ClassENFILE,
	clsAddrNotAvail: metrics.ClassEADDRNOTAVAIL,
}

// classByName maps a class name back to its number.
var classByName = func() map[string]class {
	m := make(map[string]class, numClasses)
	for c, name := range classNames {
		m[name] = class(c)
	}
	return m
}()

// generatorSide reports whether c is the generator's own failure.
func (c class) generatorSide() bool { return c >= clsEMFILE }

// answered reports whether the target sent a response (any status).
func (c class) answered() bool { return c <= clsCheck }

// classifyStatus is the class of an answer: clsOK below 400, at no cost on
// the hot path.
func classifyStatus(status int) class {
	if status < 400 {
		return clsOK
	}
	return classByName[metrics.StatusClass(status)]
}

// classifyErr maps a dial, write or read error to its class.
func classifyErr(err error) class { return classByName[metrics.ErrorClass(err)] }

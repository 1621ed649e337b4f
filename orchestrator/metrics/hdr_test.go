package metrics

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestPutQuantiles(t *testing.T) {
	h := NewHistogram(HistDigits)
	for i := 1; i <= 100; i++ {
		RecordDuration(h, time.Duration(i)*time.Millisecond)
	}
	RecordDuration(h, 2*time.Minute) // clamped to 60 s
	m := Metrics{}
	m.PutQuantiles(h, Latency)
	for name, want := range map[string]float64{LatencyP50: 0.051, LatencyP99: 0.100, LatencyMax: 60} {
		if got := m[name]; got < want*0.99 || got > want*1.01 {
			t.Errorf("%s = %g, want about %g", name, got, want)
		}
	}
	if _, ok := m[LatencyMean]; !ok || len(m) != len(Latency) {
		t.Errorf("metrics %v, want every latency.* name", m)
	}
	empty := Metrics{}
	empty.PutQuantiles(nil, Latency)
	if len(empty) != 0 {
		t.Errorf("a nil histogram set %v", empty)
	}
	if p50, p99 := SecondQuantiles(NewHistogram(2)); p50 != 0 || p99 != 0 {
		t.Errorf("empty second: %g %g", p50, p99)
	}
}

func TestErrorClass(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("socket", syscall.EMFILE)}, ClassEMFILE},
		{fmt.Errorf("dial: %w", syscall.ENFILE), ClassENFILE},
		{fmt.Errorf("dial: %w", syscall.EADDRNOTAVAIL), ClassEADDRNOTAVAIL},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), ClassRefused},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), ClassReset},
		{os.ErrDeadlineExceeded, ClassTimeout},
		{errors.New("something else"), ClassOther},
	} {
		if got := ErrorClass(tt.err); got != tt.want {
			t.Errorf("ErrorClass(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
	for _, c := range []string{ClassEMFILE, ClassENFILE, ClassEADDRNOTAVAIL, ClassInflight} {
		if !IsGeneratorClass(c) {
			t.Errorf("%s is the generator's", c)
		}
	}
	if IsGeneratorClass(ClassTimeout) || StatusClass(200) != "" || StatusClass(404) != ClassHTTP4xx || StatusClass(503) != ClassHTTP5xx {
		t.Error("status or target classes misnamed")
	}
}

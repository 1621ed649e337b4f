package wiring

import (
	"strings"
	"testing"

	"github.com/loadramp/loadramp/orchestrator"
)

func TestParseMemoryLimit(t *testing.T) {
	for in, want := range map[string]orchestrator.MemoryLimit{
		"": {}, "off": {Off: true}, "OFF": {Off: true}, "75%": {Share: 0.75}, "100%": {Share: 1},
		"512MiB": {Bytes: 512 << 20}, "2GiB": {Bytes: 2 << 30}, "1.5GB": {Bytes: 1.5e9}, "1000000": {Bytes: 1e6}, "64 KiB": {Bytes: 64 << 10},
	} {
		if got, err := ParseMemoryLimit(in); err != nil || got != want {
			t.Errorf("ParseMemoryLimit(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"0", "-1GiB", "150%", "0%", "lots", "2 PB", "1e30GiB"} {
		if _, err := ParseMemoryLimit(bad); err == nil || !strings.Contains(err.Error(), "memory_limit") {
			t.Errorf("ParseMemoryLimit(%q): %v, want an error naming memory_limit", bad, err)
		}
	}
}

package wiring

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/loadramp/loadramp/orchestrator"
)

var memoryLimitRe = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B|B|%)?$`)

// ParseMemoryLimit reads a memory_limit setting: "" (the default share),
// "off", a share of the memory available ("75%") or a size ("512MiB",
// "2GiB", "1.5GB", "1000000" bytes).
func ParseMemoryLimit(s string) (orchestrator.MemoryLimit, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "":
		return orchestrator.MemoryLimit{}, nil
	case "off":
		return orchestrator.MemoryLimit{Off: true}, nil
	}
	m := memoryLimitRe.FindStringSubmatch(s)
	if m == nil {
		return orchestrator.MemoryLimit{}, fmt.Errorf("memory_limit %q: give a size (512MiB, 2GiB), a share of the memory available (75%%) or off", s)
	}
	x, err := strconv.ParseFloat(m[1], 64)
	if err != nil || !(x > 0) {
		return orchestrator.MemoryLimit{}, fmt.Errorf("memory_limit %q: must be > 0", s)
	}
	if m[2] == "%" {
		if x > 100 {
			return orchestrator.MemoryLimit{}, fmt.Errorf("memory_limit %q: a share is at most 100%%", s)
		}
		return orchestrator.MemoryLimit{Share: x / 100}, nil
	}
	unit := map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	b := x * unit
	if b >= math.MaxInt64 {
		return orchestrator.MemoryLimit{}, fmt.Errorf("memory_limit %q: too large", s)
	}
	return orchestrator.MemoryLimit{Bytes: int64(b)}, nil
}

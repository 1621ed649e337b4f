//go:build !linux

package hoststat

func firstAllowedCPU() (int, bool) { return 0, false }
func pin(cpu int) error            { return nil }

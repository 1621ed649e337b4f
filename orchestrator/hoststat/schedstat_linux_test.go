//go:build linux

package hoststat

import "golang.org/x/sys/unix"

// firstAllowedCPU returns a CPU this process may run on.
func firstAllowedCPU() (int, bool) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, false
	}
	for i := range 1024 {
		if set.IsSet(i) {
			return i, true
		}
	}
	return 0, false
}

// pin pins the calling thread (locked by the caller) to cpu.
func pin(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	return unix.SchedSetaffinity(0, &set)
}

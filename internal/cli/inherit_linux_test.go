//go:build linux

package cli

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestInheritedDescriptorsStayWithLoadramp: a descriptor open without
// close-on-exec (as one loadramp inherits) reaches a child process until
// markInheritedCloseOnExec, and not after.
func TestInheritedDescriptorsStayWithLoadramp(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	childHas := func(fd int) bool {
		t.Helper()
		out, err := exec.Command("ls", "/proc/self/fd").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.Fields(string(out)) {
			if f == strconv.Itoa(fd) {
				return true
			}
		}
		return false
	}
	if !childHas(p[0]) {
		t.Fatalf("the child does not see fd %d before the change: the test proves nothing", p[0])
	}
	markInheritedCloseOnExec()
	if childHas(p[0]) || childHas(p[1]) {
		t.Errorf("the child still holds the pipe's fds %v", p)
	}
}

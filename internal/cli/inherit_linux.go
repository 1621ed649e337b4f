//go:build linux

package cli

import (
	"os"
	"strconv"
	"syscall"
)

// markInheritedCloseOnExec marks every descriptor open now beyond stdin,
// stdout and stderr close-on-exec. Called as loadramp starts, it keeps the
// descriptors loadramp inherited (a pipe the shell that started it left open,
// say) from the processes it starts: a local fleet's target, Terraform, an
// agent. Go's os/exec does not close them, so a target under --nofile 128
// read "129 of 128" files. Descriptors given on purpose to a child
// (exec.Cmd.ExtraFiles) are duplicated for it and not affected.
func markInheritedCloseOnExec() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return // no /proc: leave them
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

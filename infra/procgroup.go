package infra

import (
	"errors"
	"syscall"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// groupLive reports whether process group pgid has a live member. Zombies
// do not count: a child orphaned by the group leader is reaped by init, which
// may take a while, and a zombie holds no resources worth waiting for.
func groupLive(pgid int) bool {
	// Cheap check first: no member at all, zombie or not.
	if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		return false
	}
	return hoststat.GroupLive(hoststat.DefaultRoot, pgid)
}

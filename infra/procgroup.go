package infra

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// groupLive reports whether process group pgid has a live member. Zombies
// do not count: a child orphaned by the group leader is reaped by init, which
// may take a while, and a zombie holds no resources worth waiting for.
func groupLive(pgid int) bool {
	// Cheap check first: no member at all, zombie or not.
	if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		return false
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return true // cannot tell; assume the worst
	}
	want := strconv.Itoa(pgid)
	for _, d := range dirs {
		if d.Name()[0] < '0' || d.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) >= 3 && f[2] == want && f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return false
}

//go:build unix

package eventbus

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// SetNofile sets this process's RLIMIT_NOFILE soft limit to n, raising the
// hard limit too when it is lower than n (which needs privilege). It
// returns the soft and hard limits in force before. Go raises the soft limit to the hard
// one when a program starts, so call it from main, after that.
func SetNofile(n uint64) (soft, hard uint64, err error) {
	var before unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &before); err != nil {
		return 0, 0, fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
	}
	lim := unix.Rlimit{Cur: n, Max: max(before.Max, n)}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return before.Cur, before.Max, fmt.Errorf("setting RLIMIT_NOFILE to %d (hard limit %d): %w", n, before.Max, err)
	}
	return before.Cur, before.Max, nil
}

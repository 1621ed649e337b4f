package infra

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// How StopGroup ended.
const (
	GroupAlreadyGone = "already gone"
	GroupStopped     = "stopped (SIGTERM)"
	GroupKilled      = "killed (SIGKILL)"
)

// StopOptions refine StopGroup for a group whose leader is a child of this
// process (a local fleet's process).
type StopOptions struct {
	// Exited, if set, is closed once the group's leader has exited and been
	// waited for: StopGroup then waits for the leader rather than for the
	// whole group, and kills whatever the leader left in its group.
	Exited <-chan struct{}
	// Signal, if set, is called with every signal sent to the group (to reach
	// a leader that left its group with setsid).
	Signal func(syscall.Signal)
	// Log receives what StopGroup had to do beyond SIGTERM.
	Log zerolog.Logger
}

// GroupStop says how StopGroup stopped a group.
type GroupStop struct {
	// How is GroupAlreadyGone, GroupStopped or GroupKilled.
	How string
	// Leftovers: the leader had exited, and the members it left in its group
	// were killed.
	Leftovers bool
}

// StopGroup stops process group pgid: SIGTERM to the group, up to grace (or
// until ctx is done) for it to exit, then SIGKILL and up to killWait more.
// A group that has no live member is left alone. It is the one way loadramp
// stops a process group: local-fleet teardown and `loadramp destroy` both
// use it.
func StopGroup(ctx context.Context, pgid int, grace time.Duration, o StopOptions) (GroupStop, error) {
	if pgid <= 1 {
		return GroupStop{}, fmt.Errorf("process group %d is not one loadramp started", pgid)
	}
	gone := func() bool {
		if o.Exited == nil {
			return !groupLive(pgid)
		}
		select {
		case <-o.Exited:
			return true
		default:
			return false
		}
	}
	signal := func(sig syscall.Signal) error {
		err := syscall.Kill(-pgid, sig)
		if o.Signal != nil {
			o.Signal(sig)
		}
		if err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("%v to process group %d: %w", sig, pgid, err)
		}
		return nil
	}
	if gone() {
		return GroupStop{How: GroupAlreadyGone, Leftovers: killLeftovers(pgid, o)}, nil
	}
	if err := signal(syscall.SIGTERM); err != nil {
		return GroupStop{}, err
	}
	switch waitGone(ctx, o.Exited, gone, grace) {
	case nil:
		return GroupStop{How: GroupStopped, Leftovers: killLeftovers(pgid, o)}, nil
	case ctx.Err():
		o.Log.Warn().Int("pgid", pgid).Msg("stop cancelled; sending SIGKILL")
	default:
		o.Log.Warn().Int("pgid", pgid).Dur("stop_timeout", grace).Msg("still running after SIGTERM; sending SIGKILL")
	}
	if err := signal(syscall.SIGKILL); err != nil {
		return GroupStop{}, err
	}
	if waitGone(context.Background(), o.Exited, gone, killWait) != nil {
		return GroupStop{}, fmt.Errorf("process group %d did not exit %s after SIGKILL", pgid, killWait)
	}
	waitGroupDead(pgid)
	return GroupStop{How: GroupKilled}, nil
}

// errStillThere is waitGone's timeout.
var errStillThere = errors.New("still running")

// waitGone waits until gone says so (exited, when set, wakes it at once), d
// passes (errStillThere) or ctx is done (ctx.Err()).
func waitGone(ctx context.Context, exited <-chan struct{}, gone func() bool, d time.Duration) error {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(stopPollInterval)
	defer tick.Stop()
	for !gone() {
		select {
		case <-exited:
		case <-tick.C:
		case <-deadline.C:
			if gone() {
				return nil
			}
			return errStillThere
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// killLeftovers kills what an exited leader left running in its group, and
// reports whether there was anything.
func killLeftovers(pgid int, o StopOptions) bool {
	if o.Exited == nil || !groupLive(pgid) {
		return false
	}
	o.Log.Warn().Int("pgid", pgid).Msg("process exited but left processes in its group; sending them SIGKILL")
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	waitGroupDead(pgid)
	return true
}

// waitGroupDead waits, briefly, until SIGKILL has taken effect on the whole
// group; delivery is asynchronous.
func waitGroupDead(pgid int) {
	end := time.Now().Add(killGroupWait)
	for groupLive(pgid) && time.Now().Before(end) {
		time.Sleep(stopPollInterval)
	}
}

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

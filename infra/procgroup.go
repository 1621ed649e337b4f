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
	// GroupReplaced: the recorded process is gone and its pid (or process
	// group) is another process's now, which is left alone.
	GroupReplaced = "gone (its pid is another process now; not signalled)"
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
	// Identity, if set, is the group leader's identity as recorded when it
	// started: before any signal StopGroup checks that the pid is still that
	// process (hoststat.CheckIdentity), and leaves the group alone when it is
	// not (GroupReplaced). Once the leader has exited, what is left in its
	// group is signalled only if every member started after the leader, in
	// the same boot: a group whose number was handed to another process
	// holds members that are not loadramp's.
	Identity *hoststat.Identity
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
	// Why says what was found at the recorded pid when it was not signalled
	// (GroupReplaced), or that the leader had exited.
	Why string
}

// StopGroup stops process group pgid: SIGTERM to the group, up to grace (or
// until ctx is done) for it to exit, then SIGKILL and up to killWait more.
// A group that has no live member is left alone, and so is one that is not
// the recorded process's any more (o.Identity). It is the one way loadramp
// stops a process group: local-fleet teardown and `loadramp destroy` both
// use it.
func StopGroup(ctx context.Context, pgid int, grace time.Duration, o StopOptions) (GroupStop, error) {
	if pgid <= 1 {
		return GroupStop{}, fmt.Errorf("process group %d is not one loadramp started", pgid)
	}
	if o.Identity != nil && o.Identity.Pid != pgid {
		return GroupStop{}, fmt.Errorf("process group %d: the identity given is of pid %d", pgid, o.Identity.Pid)
	}
	// Checked before every signal to the group: after SIGTERM the leader may
	// exit, and its pid be reused, before the SIGKILL.
	owned := func() (bool, string) {
		if o.Identity == nil {
			return true, ""
		}
		return groupOwned(pgid, *o.Identity)
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
	if ok, why := owned(); !ok {
		o.Log.Warn().Int("pgid", pgid).Str("found", why).Msg("not signalling a process group that is no longer loadramp's")
		return GroupStop{How: GroupReplaced, Why: why}, nil
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
	if ok, why := owned(); !ok {
		// The leader exited after SIGTERM and what is there now is not ours.
		o.Log.Warn().Int("pgid", pgid).Str("found", why).Msg("not sending SIGKILL to a process group that is no longer loadramp's")
		return GroupStop{How: GroupStopped, Why: why}, nil
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
	if o.Identity != nil {
		if ok, why := groupOwned(pgid, *o.Identity); !ok {
			o.Log.Warn().Int("pgid", pgid).Str("found", why).Msg("the process exited; its group number is another's now: left alone")
			return false
		}
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

// groupOwned reports whether process group pgid is still the one whose
// leader had identity id: the leader itself is there, or it has exited and
// every live member of the group started after it, in the same boot (the
// kernel does not hand out a pid that still numbers a group, so a leader's
// group outlives it only with members it left). Otherwise it says what is
// there instead.
func groupOwned(pgid int, id hoststat.Identity) (bool, string) {
	m, why := hoststat.CheckIdentity(hoststat.DefaultRoot, id)
	switch m {
	case hoststat.Same:
		return true, ""
	case hoststat.Other:
		return false, why
	}
	if hoststat.BootID(hoststat.DefaultRoot) != id.Boot && id.Boot != "" {
		return false, why
	}
	members, err := hoststat.GroupMembers(hoststat.DefaultRoot, pgid)
	if err != nil {
		return false, fmt.Sprintf("%s; its group cannot be listed: %v", why, err)
	}
	for _, p := range members {
		if p.Start < id.Start {
			return false, fmt.Sprintf("%s; process group %d holds pid %d (%s), which started before it: not the group it led", why, pgid, p.Pid, p.Comm)
		}
	}
	return true, why
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

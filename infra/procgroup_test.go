package infra

import (
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// startGroup starts sh -c script as the leader of a process group of its own
// and reaps it in the background, as a process loadramp no longer waits for.
func startGroup(t *testing.T, script string) int {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }()
	pgid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
	if !waitFor(5*time.Second, func() bool { return groupAlive(pgid) }) {
		t.Fatalf("group %d never came up", pgid)
	}
	return pgid
}

func TestStopGroup(t *testing.T) {
	// A group that stops on SIGTERM, child included.
	pgid := startGroup(t, "sleep 100 & wait")
	st, err := StopGroup(context.Background(), pgid, 5*time.Second, StopOptions{})
	if err != nil || st.How != GroupStopped || groupAlive(pgid) {
		t.Errorf("StopGroup = %+v, %v; group alive %v", st, err, groupAlive(pgid))
	}
	// Stopping it again finds it gone.
	if st, err := StopGroup(context.Background(), pgid, time.Second, StopOptions{}); err != nil || st.How != GroupAlreadyGone {
		t.Errorf("second StopGroup = %+v, %v", st, err)
	}

	// A group that ignores SIGTERM is killed after the grace.
	pgid = startGroup(t, `trap "" TERM; sleep 100 & sleep 100 & wait`)
	start := time.Now()
	var sigs []string
	st, err = StopGroup(context.Background(), pgid, 300*time.Millisecond, StopOptions{Signal: func(s syscall.Signal) { sigs = append(sigs, s.String()) }})
	if err != nil || st.How != GroupKilled || groupAlive(pgid) {
		t.Errorf("StopGroup = %+v, %v; group alive %v", st, err, groupAlive(pgid))
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("killed after %s, before the grace", d)
	}
	if got := strings.Join(sigs, ","); got != "terminated,killed" {
		t.Errorf("signals %s", got)
	}

	for _, bad := range []int{0, 1, -5} {
		if _, err := StopGroup(context.Background(), bad, time.Second, StopOptions{}); err == nil {
			t.Errorf("StopGroup(%d): no error", bad)
		}
	}
}

func TestStopGroupKillsWhatAnExitedLeaderLeft(t *testing.T) {
	// The leader exits at once and leaves a child in its group.
	cmd := exec.Command("sh", "-c", "sleep 100 & exit 0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	<-exited
	if !groupAlive(pgid) {
		t.Fatal("the leftover child is not running")
	}
	st, err := StopGroup(context.Background(), pgid, time.Second, StopOptions{Exited: exited})
	if err != nil || st.How != GroupAlreadyGone || !st.Leftovers || groupAlive(pgid) {
		t.Errorf("StopGroup = %+v, %v; group alive %v", st, err, groupAlive(pgid))
	}
}

func TestStopGroupChecksTheLeadersIdentity(t *testing.T) {
	pgid := startGroup(t, "sleep 100 & wait")
	id, err := hoststat.ReadIdentity("", pgid)
	if err != nil {
		t.Fatal(err)
	}
	// Recorded for another process that had the pid: left alone.
	other := id
	other.Start--
	var sigs []syscall.Signal
	st, err := StopGroup(context.Background(), pgid, time.Second, StopOptions{Identity: &other, Signal: func(s syscall.Signal) { sigs = append(sigs, s) }})
	if err != nil || st.How != GroupReplaced || !strings.Contains(st.Why, "another process") || len(sigs) > 0 || !groupAlive(pgid) {
		t.Errorf("StopGroup with another process's identity = %+v, %v; signals %v; group alive %v", st, err, sigs, groupAlive(pgid))
	}
	// An identity of another pid is a caller's mistake.
	wrong := id
	wrong.Pid++
	if _, err := StopGroup(context.Background(), pgid, time.Second, StopOptions{Identity: &wrong}); err == nil {
		t.Error("StopGroup with the identity of another pid: no error")
	}
	// Its own identity: stopped.
	st, err = StopGroup(context.Background(), pgid, 5*time.Second, StopOptions{Identity: &id})
	if err != nil || st.How != GroupStopped || groupAlive(pgid) {
		t.Errorf("StopGroup with the leader's identity = %+v, %v; group alive %v", st, err, groupAlive(pgid))
	}
}

func TestStopGroupLeavesAGroupThatOutlivedItsLeaderOnlyIfItIsOurs(t *testing.T) {
	// The leader exits at once and leaves a child in its group; nobody
	// waits for the leader here, as after a kill -9 of loadramp.
	pgid := startGroup(t, "sleep 100 & exit 0")
	if !waitFor(5*time.Second, func() bool { _, err := hoststat.ReadProcStat("", pgid); return err != nil }) {
		t.Fatal("the leader did not exit")
	}
	// Recorded with a start time after the leftover's: the group is not
	// the one the recorded leader made.
	members, err := hoststat.GroupMembers("", pgid)
	if err != nil || len(members) != 1 {
		t.Fatalf("group members %+v, %v", members, err)
	}
	later := hoststat.Identity{Pid: pgid, Start: members[0].Start + 1, Boot: hoststat.BootID("")}
	st, err := StopGroup(context.Background(), pgid, time.Second, StopOptions{Identity: &later})
	if err != nil || st.How != GroupReplaced || !groupAlive(pgid) {
		t.Errorf("StopGroup of a group older than its recorded leader = %+v, %v; alive %v", st, err, groupAlive(pgid))
	}
	mine := hoststat.Identity{Pid: pgid, Start: members[0].Start, Boot: hoststat.BootID("")}
	st, err = StopGroup(context.Background(), pgid, 5*time.Second, StopOptions{Identity: &mine})
	if err != nil || st.How != GroupStopped || groupAlive(pgid) {
		t.Errorf("StopGroup of the leftovers of the recorded leader = %+v, %v; alive %v", st, err, groupAlive(pgid))
	}
}

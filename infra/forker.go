package infra

import (
	"context"
	"os/exec"
	"runtime"
)

// forker starts child processes from one dedicated OS thread.
//
// Children are started with Pdeathsig, and Linux sends that signal when the
// *thread* that forked the child exits, not the process. Go may retire an OS
// thread whenever a goroutine that locked it returns, so forking from an
// arbitrary goroutine would let a healthy fleet be SIGKILLed behind our back.
// The forker's goroutine locks its thread while it forks, so no goroutine
// that might exit locked (and so retire the thread) runs on it. When the
// forker closes it unlocks before returning: returning locked would retire
// the thread, and with it every child any goroutine ever forked on that
// thread with Pdeathsig (terraform-exec starts terraform that way), not only
// the forker's own. When the whole loadramp process dies (kill -9), its
// threads die with it and the kernel kills the children.
type forker struct {
	reqs chan forkReq
	done chan struct{}
}

type forkReq struct {
	cmd  *exec.Cmd
	errc chan error
}

func newForker() *forker {
	f := &forker{reqs: make(chan forkReq), done: make(chan struct{})}
	go f.loop()
	return f
}

func (f *forker) loop() {
	defer close(f.done)
	runtime.LockOSThread()
	// Unlock before returning, so Go keeps the thread instead of retiring it.
	defer runtime.UnlockOSThread()
	for r := range f.reqs {
		r.errc <- r.cmd.Start()
	}
}

// start runs cmd.Start on the forker's thread.
func (f *forker) start(ctx context.Context, cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	select {
	case f.reqs <- forkReq{cmd: cmd, errc: errc}:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Start itself is quick and not cancellable; once sent, wait for it.
	return <-errc
}

// close ends the forker's goroutine and waits for it; its thread lives on.
func (f *forker) close() {
	close(f.reqs)
	<-f.done
}

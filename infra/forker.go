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
// The forker's goroutine locks its thread and never unlocks it: the thread
// lives exactly as long as the forker, which a Local closes only after its
// children are stopped. When the whole loadramp process dies (kill -9), the
// thread dies with it and the kernel kills the children.
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
	// Never unlocked on purpose: returning while locked makes Go terminate
	// the thread instead of reusing it for other goroutines.
	runtime.LockOSThread()
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

// close ends the forker's thread and waits for it. Any child still alive then
// receives its Pdeathsig.
func (f *forker) close() {
	close(f.reqs)
	<-f.done
}

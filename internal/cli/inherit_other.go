//go:build !linux

package cli

// markInheritedCloseOnExec is a no-op off Linux (see inherit_linux.go).
func markInheritedCloseOnExec() {}

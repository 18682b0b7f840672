//go:build unix

package workspace

import (
	"os"
	"syscall"
)

// interrupt asks a service's process group to stop, as Ctrl-C in a
// terminal would.
func interrupt(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGINT) }

// kill ends a service's whole process group: the service and anything it
// started that is still in its group.
func kill(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	_ = p.Kill()
}

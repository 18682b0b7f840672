//go:build !unix

package workspace

import (
	"os"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

// interrupt cannot deliver Ctrl-C to a process here, so it kills it.
func interrupt(p *os.Process) { _ = p.Kill() }

func kill(p *os.Process) { _ = p.Kill() }

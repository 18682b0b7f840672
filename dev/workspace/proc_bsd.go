//go:build unix && !linux

package workspace

import "syscall"

// sysProcAttr starts a service in a process group of its own, so that
// stopping it reaches whatever it started. (Only Linux can kill the children
// of a supervisor that was killed itself.)
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

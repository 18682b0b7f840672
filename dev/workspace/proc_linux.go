package workspace

import "syscall"

// sysProcAttr starts a service in a process group of its own, so that
// stopping it reaches whatever it started, and has Linux kill it if the
// supervisor dies without stopping it (even by SIGKILL). Pdeathsig fires
// when the thread that started the child ends; the Go runtime does not end
// its threads while the program runs, so in practice that is the process.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

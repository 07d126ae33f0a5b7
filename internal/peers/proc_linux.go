package peers

import "syscall"

// sysProcAttr puts the server in a process group of its own, and has the kernel kill it if
// the process that started it dies first (a test binary killed by a timeout), so that no
// server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the process group led by pid.
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }

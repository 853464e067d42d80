package sandbox

import "syscall"

// dieWithParent has the kernel kill a sandbox server when the process
// that started it dies, so a killed test leaves no server behind.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

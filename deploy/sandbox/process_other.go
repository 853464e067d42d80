//go:build !linux

package sandbox

import "syscall"

// dieWithParent does nothing here: only Linux has a parent-death signal,
// and the sandbox servers are stopped by Stop and test cleanups alone.
func dieWithParent(*syscall.SysProcAttr) {}

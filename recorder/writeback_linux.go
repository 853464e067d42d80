package recorder

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing f to disk now, so the
// fsync at the end of the flush interval finds little left to do.
func startWriteback(f *os.File) {
	_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE) // best effort: fsync follows
}

// rename is os.Rename without the stat of newpath it makes first (to
// refuse replacing a directory): a syscall per rename, and every caller
// renames onto a name that is its own.
func rename(oldpath, newpath string) error {
	if err := unix.Rename(oldpath, newpath); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}

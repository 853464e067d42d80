//go:build !linux

package recorder

import "os"

// startWriteback is a no-op where sync_file_range does not exist; the
// fsync at the end of the flush interval does all the work.
func startWriteback(*os.File) {}

// rename is os.Rename.
func rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

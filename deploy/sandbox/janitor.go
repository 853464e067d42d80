package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ownerFile in a sandbox dir names the process that made it, so that a
// later start can remove the dirs of processes that died without Stop (a
// test binary killed at its timeout). Their servers died with them
// (Pdeathsig), but on /dev/shm their tens of megabytes would hold memory.
const ownerFile = "sandbox.owner"

// sandboxPrefix starts the name of every sandbox dir.
const sandboxPrefix = "sallyport-"

// markOwner records this process, with its start time against pid reuse.
func markOwner(dir string) error {
	me, ok := readProc(os.Getpid())
	if !ok {
		return nil // no /proc: nothing can be swept either
	}
	content := fmt.Sprintf("%d %d\n", me.pid, me.start)
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(content), 0o644); err != nil {
		return fmt.Errorf("mark sandbox dir owner: %w", err)
	}
	return nil
}

// sweepStale removes sandbox dirs in base whose owner is gone. Dirs without
// an owner file (being made right now, or the template cache) are kept.
func sweepStale(base string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), sandboxPrefix) {
			continue
		}
		dir := filepath.Join(base, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err == nil && !ownerAlive(string(b)) {
			os.RemoveAll(dir)
		}
	}
}

// ownerAlive reports whether the process an owner file names still runs.
func ownerAlive(content string) bool {
	var pid int
	var start uint64
	if _, err := fmt.Sscan(content, &pid, &start); err != nil {
		return true // unreadable: keep rather than remove something in use
	}
	now, ok := readProc(pid)
	return ok && now.start == start && now.live()
}

// Package sandbox starts throwaway real servers from installed binaries:
// PostgreSQL (initdb into a temp dir), OpenSSH sshd, MariaDB and an in-process
// S3 endpoint. Each listens on a free loopback port, keeps its files in its own
// temp dir and is removed again by Stop.
//
// It serves the tests, `sallyport demo` and the benchmarks. It is never for
// production: passwords are random but kept in memory and the servers trade
// durability for start-up speed (fsync off, small buffers).
//
// Sandbox dirs go to /dev/shm when it is usable. PostgreSQL and MariaDB
// start from a data dir their installer made once per machine, user and
// server build, kept in /dev/shm/sallyport-sandbox-cache-UID (or under
// os.TempDir()); each sandbox copies it and sets its own random password
// before serving any login, so a start takes a fraction of a second.
//
// When a binary is missing, Start* returns an error wrapping ErrNotInstalled
// that names the binary and the Debian package to install. Tests use the
// *T helpers (PostgresT, SSHDT, MariaDBT, S3T), which skip loudly on a
// developer machine and fail when the environment variable CI is set.
package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNotInstalled is wrapped by the error of a Start function whose server
// binary cannot be found; the message names the binary and the Debian package.
var ErrNotInstalled = errors.New("not installed")

// missing returns an error wrapping ErrNotInstalled that says what to install.
func missing(binary, searched, pkg string) error {
	return fmt.Errorf("%s not found in %s: install the Debian package %s: %w",
		binary, searched, pkg, ErrNotInstalled)
}

// lookBinary finds name in the given directories, then in PATH.
func lookBinary(name string, dirs ...string) (string, bool) {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", false
	}
	abs, err := filepath.Abs(p)
	return abs, err == nil
}

// versionDirs expands a glob such as /usr/lib/postgresql/*/bin and orders
// the matches newest version first.
func versionDirs(glob string) []string {
	dirs, _ := filepath.Glob(glob)
	sort.Slice(dirs, func(i, j int) bool {
		return versionOf(dirs[i]) > versionOf(dirs[j])
	})
	return dirs
}

// versionOf reads the numeric major version out of a path like
// /usr/lib/postgresql/15/bin; paths without one sort last.
func versionOf(path string) float64 {
	for _, part := range strings.Split(path, string(filepath.Separator)) {
		if v, err := strconv.ParseFloat(part, 64); err == nil {
			return v
		}
	}
	return -1
}

// randomSecret returns 32 hex characters from crypto/rand: safe in URLs,
// DSNs and config files without quoting.
func randomSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux.
	return hex.EncodeToString(b)
}

// isRoot reports whether the process runs as root, where servers that refuse
// root (PostgreSQL) must run as their system user.
func isRoot() bool { return os.Geteuid() == 0 }

// systemUser resolves a system account to its numeric ids.
func systemUser(name string) (uid, gid uint32, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("look up system user %s: %w", name, err)
	}
	id, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("parse uid of %s: %w", name, err)
	}
	g, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("parse gid of %s: %w", name, err)
	}
	return uint32(id), uint32(g), nil
}

// memoryTempDir is tried first for sandbox dirs: on tmpfs, initdb and
// mariadb-install-db write their tens of megabytes several times faster.
const memoryTempDir = "/dev/shm"

// makeBaseDir creates the sandbox's own temp dir under base (zero:
// memoryTempDir if usable, else the system temp dir) with mode 0755, so that
// a server running as another system user can traverse it (t.TempDir()
// parents are 0700).
func makeBaseDir(base, pattern string) (string, error) {
	if base == "" {
		if dir, err := makeOwnedDir(memoryTempDir, pattern); err == nil {
			return dir, nil
		}
	}
	return makeOwnedDir(base, pattern)
}

// makeOwnedDir sweeps stale sandbox dirs from base, then makes a new one
// marked with its owner.
func makeOwnedDir(base, pattern string) (string, error) {
	if base == "" {
		base = os.TempDir()
	}
	sweepStale(base)
	dir, err := os.MkdirTemp(base, pattern)
	if err != nil {
		return "", fmt.Errorf("create sandbox dir: %w", err)
	}
	if err = os.Chmod(dir, 0o755); err == nil {
		err = markOwner(dir)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("prepare sandbox dir %s: %w", dir, err)
	}
	return dir, nil
}

// chownTree gives a directory tree to uid:gid.
func chownTree(root string, uid, gid uint32) error {
	return filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(uid), int(gid))
	})
}

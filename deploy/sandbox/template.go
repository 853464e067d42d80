package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Database servers start from a template: a data dir their installer
// (initdb, mariadb-install-db) made once per machine, user and server
// build, kept in a cache dir between runs. Copying it takes a fraction of
// a second where the installer takes seconds. Each copy is given its own
// credentials before it first listens.

// cachedTemplate returns the dir of the template called name, calling
// build(dir) to make it when missing. The key covers the binaries, so an
// upgraded server gets a fresh template. Concurrent makers each build
// their own and the first rename wins, so a template is never half made.
func cachedTemplate(name string, binaries []string, build func(dir string) error) (string, error) {
	key, err := templateKey(name, binaries)
	if err != nil {
		return "", err
	}
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	final := filepath.Join(cache, key)
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	tmp, err := os.MkdirTemp(cache, key+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("create template dir: %w", err)
	}
	defer os.RemoveAll(tmp) // nothing left to remove once renamed
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("make template dir traversable: %w", err)
	}
	if err := build(tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil && !errors.Is(err, os.ErrExist) && !errors.Is(err, syscall.ENOTEMPTY) {
		return "", fmt.Errorf("store template: %w", err)
	}
	return final, nil
}

// templateKey names a template after its kind and the binaries that made it.
func templateKey(name string, binaries []string) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, name, os.Geteuid())
	for _, p := range binaries {
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("inspect %s: %w", p, err)
		}
		fmt.Fprintln(h, p, st.Size(), st.ModTime().UnixNano())
	}
	return name + "-" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// cacheDir is the per-user dir that keeps templates between runs, on
// memory when possible.
func cacheDir() (string, error) {
	name := fmt.Sprintf("sallyport-sandbox-cache-%d", os.Geteuid())
	var err error
	for _, base := range []string{memoryTempDir, os.TempDir()} {
		dir := filepath.Join(base, name)
		if err = os.MkdirAll(dir, 0o755); err == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("create sandbox cache dir: %w", err)
}

// copyTree copies a template data dir with owners and modes kept.
func copyTree(ctx context.Context, src, dst string) error {
	out, err := exec.CommandContext(ctx, "cp", "-a", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("copy template %s: %w: %s", src, err, strings.TrimSpace(string(out)))
	}
	return nil
}

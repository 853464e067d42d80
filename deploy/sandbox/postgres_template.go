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

// postgresTemplateVersion changes whenever the initdb flags below change,
// so that older cached templates are not used.
const postgresTemplateVersion = "1"

// A template cluster is made by initdb once per machine, user and
// PostgreSQL build and kept in a cache dir; each sandbox copies it, which
// takes a tenth of an initdb. The template's superuser has no password and
// its pg_hba.conf trusts everyone, but it never runs: every copy gets the
// SCRAM-only pg_hba.conf and its own random password before it starts.

// postgresTemplate returns the data dir of the template cluster, making it
// if needed. Concurrent makers each build their own and the first rename wins.
func postgresTemplate(ctx context.Context, bins postgresBins, cred *syscall.Credential) (string, error) {
	key, err := postgresTemplateKey(bins)
	if err != nil {
		return "", err
	}
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	final := filepath.Join(cache, "postgres-"+key)
	if _, err := os.Stat(filepath.Join(final, "data", "PG_VERSION")); err == nil {
		return filepath.Join(final, "data"), nil
	}
	tmp, err := os.MkdirTemp(cache, "postgres-"+key+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("create postgres template dir: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := initTemplate(ctx, bins, cred, tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil && !errors.Is(err, os.ErrExist) && !errors.Is(err, syscall.ENOTEMPTY) {
		return "", fmt.Errorf("store postgres template: %w", err)
	}
	return filepath.Join(final, "data"), nil
}

// initTemplate runs initdb into dir/data.
func initTemplate(ctx context.Context, bins postgresBins, cred *syscall.Credential, dir string) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("make postgres template dir traversable: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("give postgres template dir to %s: %w", postgresSystemUser, err)
		}
	}
	cmd := exec.Command(bins.initdb, "-D", filepath.Join(dir, "data"), "-U", postgresSuperuser,
		"--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return runLogged(ctx, "initdb", cmd, filepath.Join(dir, "initdb.log"))
}

// postgresTemplateKey names a template after the binaries that made it,
// so an upgraded PostgreSQL gets a fresh one.
func postgresTemplateKey(bins postgresBins) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, postgresTemplateVersion, os.Geteuid())
	for _, p := range []string{bins.initdb, bins.postgres} {
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("inspect %s: %w", p, err)
		}
		fmt.Fprintln(h, p, st.Size(), st.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
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

// copyCluster copies the template data dir with owners and modes kept.
func copyCluster(ctx context.Context, template, dst string) error {
	out, err := exec.CommandContext(ctx, "cp", "-a", template, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("copy postgres template: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// setSuperuserPassword sets the copy's own password in single-user mode,
// before the server listens; the password travels on stdin, not argv.
func (pg *Postgres) setSuperuserPassword(ctx context.Context, bins postgresBins, cred *syscall.Credential) error {
	cmd := exec.Command(bins.postgres, "--single", "-D", pg.dataDir(),
		"-c", "password_encryption=scram-sha-256", "-c", "fsync=off", "postgres")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Stdin = strings.NewReader(fmt.Sprintf("ALTER ROLE %s PASSWORD '%s';\n", postgresSuperuser, pg.Password))
	logPath := filepath.Join(pg.Dir, "setup.log")
	if err := runLogged(ctx, "postgres --single", cmd, logPath); err != nil {
		return err
	}
	// Single-user mode exits 0 even when a statement failed.
	if b, _ := os.ReadFile(logPath); strings.Contains(string(b), "ERROR:") {
		return fmt.Errorf("set postgres superuser password: statement failed%s", tailOf(logPath))
	}
	return nil
}

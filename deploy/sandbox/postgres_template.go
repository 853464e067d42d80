package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// postgresTemplateName changes whenever the initdb flags below change,
// so that older cached templates are not used.
const postgresTemplateName = "postgres-v1"

// A template cluster is made by initdb once per machine, user and
// PostgreSQL build (see cachedTemplate); each sandbox copies it, which takes
// a tenth of an initdb. The template's superuser has no password and its
// pg_hba.conf trusts everyone, but it never runs: every copy gets the
// SCRAM-only pg_hba.conf and its own random password before it starts.

// postgresTemplate returns the data dir of the template cluster.
func postgresTemplate(ctx context.Context, bins postgresBins, cred *syscall.Credential) (string, error) {
	dir, err := cachedTemplate(postgresTemplateName, []string{bins.initdb, bins.postgres},
		func(dir string) error { return initTemplate(ctx, bins, cred, dir) })
	if err != nil {
		return "", fmt.Errorf("postgres template: %w", err)
	}
	return filepath.Join(dir, "data"), nil
}

// initTemplate runs initdb into dir/data.
func initTemplate(ctx context.Context, bins postgresBins, cred *syscall.Credential, dir string) error {
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

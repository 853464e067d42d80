package sandbox

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// mariadbTemplateName changes whenever the install flags or bootstrap SQL
// below change, so that older cached templates are not used.
const mariadbTemplateName = "mariadb-v2"

// mariadbBootstrapSQL creates the admin account and removes the
// password-less root and anonymous accounts (and root's proxy grant)
// install-db made, so nothing
// answers on the TCP port without a password. Grant statements are refused
// while bootstrapping (grant tables are skipped), so the account is
// inserted directly with all privilege bits and a mysql_native_password
// hash. The template's hash is of a random password thrown away at once;
// every copy gets its own through mariadbInitSQL.
const mariadbBootstrapSQL = `INSERT INTO mysql.global_priv (Host, User, Priv) VALUES ('%%', '%s',
  JSON_OBJECT('access', 18446744073709551615, 'plugin', 'mysql_native_password',
    'authentication_string', '%s', 'password_last_changed', UNIX_TIMESTAMP()));
DELETE FROM mysql.global_priv WHERE User IN ('root', '');
DELETE FROM mysql.proxies_priv WHERE User IN ('root', '');
`

// mariadbInitSQL sets a copy's admin password. The hash alone lets one log
// in, so the file is 0600 and removed once the server is up.
const mariadbInitSQL = "ALTER USER '%s'@'%%' IDENTIFIED BY PASSWORD '%s';\n"

// nativePasswordHash is mysql_native_password's stored form of password.
func nativePasswordHash(password string) string {
	first := sha1.Sum([]byte(password))
	second := sha1.Sum(first[:])
	return "*" + strings.ToUpper(hex.EncodeToString(second[:]))
}

// prepare copies the template datadir and writes the init file.
func (m *MariaDB) prepare(ctx context.Context, bins mariadbBins) error {
	dir, err := cachedTemplate(mariadbTemplateName, []string{bins.install, bins.server},
		func(dir string) error { return installTemplate(ctx, bins.install, dir) })
	if err != nil {
		return fmt.Errorf("mariadb template: %w", err)
	}
	if err := copyTree(ctx, filepath.Join(dir, "data"), m.dataDir()); err != nil {
		return err
	}
	if err := os.Mkdir(m.tmpDir(), 0o700); err != nil {
		return fmt.Errorf("create mariadb tmpdir: %w", err)
	}
	sqlText := fmt.Sprintf(mariadbInitSQL, m.User, nativePasswordHash(m.Password))
	if err := os.WriteFile(m.initFile(), []byte(sqlText), 0o600); err != nil {
		return fmt.Errorf("write mariadb init file: %w", err)
	}
	return nil
}

// installTemplate runs mariadb-install-db into dir/data.
func installTemplate(ctx context.Context, bin, dir string) error {
	extra, tmp := filepath.Join(dir, "bootstrap.sql"), filepath.Join(dir, "tmp")
	sqlText := fmt.Sprintf(mariadbBootstrapSQL, mariadbAdmin, nativePasswordHash(randomSecret()))
	if err := os.WriteFile(extra, []byte(sqlText), 0o600); err != nil {
		return fmt.Errorf("write mariadb bootstrap file: %w", err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("create mariadb tmpdir: %w", err)
	}
	args := append([]string{"--no-defaults", "--datadir=" + filepath.Join(dir, "data"),
		"--auth-root-authentication-method=normal", "--skip-test-db",
		"--extra-file=" + extra, "--tmpdir=" + tmp}, mariadbUserArgs()...)
	args = append(args, "--innodb-buffer-pool-size=8M", "--innodb-log-file-size=8M")
	return runLogged(ctx, "mariadb-install-db", exec.Command(bin, args...), filepath.Join(dir, "install.log"))
}

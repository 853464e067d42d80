package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
)

// editConfig replaces old by new in the env's config file.
func editConfig(t *testing.T, e *env, old, new string) {
	t.Helper()
	data, err := os.ReadFile(e.config)
	require.NoError(t, err)
	require.Contains(t, string(data), old)
	require.NoError(t, os.WriteFile(e.config, bytes.Replace(data, []byte(old), []byte(new), 1), 0o600))
}

// exportCert runs `ca export --type typ` into a file under the env's
// directory, as a client's operator would, and returns its path.
func exportCert(t *testing.T, e *env, typ string) string {
	t.Helper()
	out := e.ok("ca", "export", "--type", typ)
	block, rest := pem.Decode([]byte(out))
	require.NotNil(t, block, "ca export --type %s prints PEM: %q", typ, out)
	require.Equal(t, "CERTIFICATE", block.Type)
	require.Empty(t, bytes.TrimSpace(rest), "one certificate")
	path := filepath.Join(e.dir, "bastion-"+typ+".pem")
	require.NoError(t, os.WriteFile(path, []byte(out), 0o644))
	return path
}

// openGrant opens a break-glass grant for identity on target.
func openGrant(e *env, identity, target string) {
	e.ok("breakglass", "open", identity, "--target", target, "--by", "carol@example.com",
		"--reason", "INC-17 verify the bastion's certificate", "--for", "15m")
}

// psqlConninfo runs the real psql with a connection string naming how it
// reaches and verifies the bastion.
func psqlConninfo(t *testing.T, conninfo, password, sql string) e2eResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, psqlBinary(t), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql, conninfo+" connect_timeout=10")
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PSQLRC=/dev/null")
	return e2eRun(t, cmd)
}

// mariadbVerifying runs the real mariadb client against host:port,
// verifying the server's certificate against caFile.
func mariadbVerifying(t *testing.T, host string, port int, caFile, user, password, sql string) e2eResult {
	t.Helper()
	if _, err := exec.LookPath("mariadb"); err != nil {
		sandbox.Need(t, fmt.Errorf("mariadb not in PATH: install mariadb-client: %w", sandbox.ErrNotInstalled))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mariadb", "--no-defaults", "-N", "-B", "--protocol=TCP", "-h", host,
		"-P", strconv.Itoa(port), "-u", user, "-D", "billing", "--connect-timeout=10",
		"--ssl-ca="+caFile, "--ssl-verify-server-cert", "-e", sql)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+password)
	return e2eRun(t, cmd)
}

// TestPostgresVerifyFull: psql with sslmode=verify-full and the certificate
// `ca export --type postgres-tls` printed (before serve ever ran) reaches
// the bastion by its listen IP, by localhost and by a tls_hosts name, and
// fails for a name the certificate does not carry.
func TestPostgresVerifyFull(t *testing.T) {
	e := newEnv(t, "")
	port := e2ePsqlEnv(t, e)
	listen := fmt.Sprintf(`postgres: {listen: "127.0.0.1:%d"`, port)
	editConfig(t, e, listen, listen+", tls_hosts: [bastion.example.test]")
	rootCert := exportCert(t, e, "postgres-tls")
	_, logs := revServe(t, e)
	e.ok("iga", "apply", "-f", e.registry)
	token := strings.TrimSpace(e.ok("token", "issue", "bg-db", "--ttl", "15m"))
	openGrant(e, "bg-db", "analytics")

	conninfo := func(host string) string {
		return fmt.Sprintf("%s port=%d user=bg-db dbname=analytics sslmode=verify-full sslrootcert=%s", host, port, rootCert)
	}
	for _, host := range []string{"host=127.0.0.1", "host=localhost", "host=bastion.example.test hostaddr=127.0.0.1"} {
		t.Run(host, func(t *testing.T) {
			res := psqlConninfo(t, conninfo(host), token, "SELECT count(*) FROM orders")
			require.Equalf(t, 0, res.code, "psql verify-full: %s; logs: %s", res.stderr, logs)
			assert.Equal(t, "1000", strings.TrimSpace(res.stdout))
		})
	}
	res := psqlConninfo(t, conninfo("host=elsewhere.example.test hostaddr=127.0.0.1"), token, "SELECT 1")
	assert.NotEqual(t, 0, res.code, "a name the certificate lacks fails verify-full")
	assert.Contains(t, res.stderr, `does not match host name "elsewhere.example.test"`)

	data, err := os.ReadFile(rootCert)
	require.NoError(t, err)
	assert.Equal(t, string(data), e.ok("ca", "export", "--type", "postgres-tls"), "serve kept the certificate ca export made")
}

// TestMySQLVerifyServerCert: mariadb with --ssl-verify-server-cert and the
// certificate `ca export --type mysql-tls` printed reaches the bastion by
// its listen IP and by localhost; another certificate is refused.
func TestMySQLVerifyServerCert(t *testing.T) {
	e := newEnv(t, "")
	port := e2eMySQLEnv(t, e)
	_, logs := revServe(t, e)
	caFile := exportCert(t, e, "mysql-tls")
	e.ok("iga", "apply", "-f", e.registry)
	token := strings.TrimSpace(e.ok("token", "issue", "bg-my", "--ttl", "15m"))
	openGrant(e, "bg-my", "billing")

	for _, host := range []string{"127.0.0.1", "localhost"} {
		t.Run(host, func(t *testing.T) {
			res := mariadbVerifying(t, host, port, caFile, "bg-my", token, "SELECT COUNT(*) FROM orders")
			require.Equalf(t, 0, res.code, "mariadb --ssl-verify-server-cert: %s; logs: %s", res.stderr, logs)
			assert.Equal(t, "1000", strings.TrimSpace(res.stdout))
		})
	}
	other, _ := operatorCert(t, "127.0.0.1", "localhost")
	res := mariadbVerifying(t, "127.0.0.1", port, other, "bg-my", token, "SELECT 1")
	assert.NotEqual(t, 0, res.code, "a certificate other than the exported one does not verify")
	assert.Contains(t, res.stderr, "ERROR 2026", "a TLS error, not a refusal by the bastion")
}

// TestDatabaseListenersServeOperatorCertificate: with tls_cert_file set,
// ca export prints the operator's certificate, and verifying clients see
// it: a name it carries passes, the listen IP (which a generated
// certificate would name) fails.
func TestDatabaseListenersServeOperatorCertificate(t *testing.T) {
	certFile, keyFile := operatorCert(t, "bastion.example.test", "localhost")
	e := newEnv(t, "")
	pgPort, myPort := freePort(t), freePort(t)
	editConfig(t, e, `postgres: {listen: "127.0.0.1:0"}`,
		fmt.Sprintf(`postgres: {listen: "127.0.0.1:%d", tls_cert_file: %q, tls_key_file: %q}`, pgPort, certFile, keyFile))
	editConfig(t, e, `mysql: {listen: "127.0.0.1:0"}`,
		fmt.Sprintf(`mysql: {listen: "127.0.0.1:%d", tls_cert_file: %q, tls_key_file: %q}`, myPort, certFile, keyFile))
	editConfig(t, e, "targets:\n", "targets:\n  - {name: billing, kind: mysql, address: \"127.0.0.1:1\", admin_dsn_env: UNSET_ADMIN_DSN}\n")
	_, logs := revServe(t, e)
	operator, err := os.ReadFile(certFile)
	require.NoError(t, err)
	for _, typ := range []string{"postgres-tls", "mysql-tls"} {
		assert.Equal(t, string(operator), e.ok("ca", "export", "--type", typ), "ca export --type %s", typ)
	}
	assert.NoFileExists(t, filepath.Join(e.dir, "data", "keys", "postgres_tls.crt"), "nothing generated")

	conninfo := func(host string) string {
		return fmt.Sprintf("%s port=%d user=svc-nobody dbname=analytics sslmode=verify-full sslrootcert=%s", host, pgPort, certFile)
	}
	for _, host := range []string{"host=localhost", "host=bastion.example.test hostaddr=127.0.0.1"} {
		res := psqlConninfo(t, conninfo(host), "not-a-token", "SELECT 1")
		assert.Containsf(t, res.stderr, "sallyport:", "psql %s gets past TLS to the bastion's refusal; logs: %s", host, logs)
	}
	res := psqlConninfo(t, conninfo("host=127.0.0.1"), "not-a-token", "SELECT 1")
	assert.Contains(t, res.stderr, `server certificate for "bastion.example.test"`)
	assert.Contains(t, res.stderr, `does not match host name "127.0.0.1"`)

	res = mariadbVerifying(t, "localhost", myPort, certFile, "svc-nobody", "not-a-token", "SELECT 1")
	assert.Containsf(t, res.stderr, "ERROR 1045 (28000): sallyport:", "mariadb gets past TLS to the bastion's refusal; logs: %s", logs)
	res = mariadbVerifying(t, "127.0.0.1", myPort, certFile, "svc-nobody", "not-a-token", "SELECT 1")
	assert.Contains(t, res.stderr, "ERROR 2026", "127.0.0.1 is not in the operator's certificate")
}

// TestListenerCertificateFollowsConfig: when tls_hosts gains a name, the
// generated certificate is made anew for it and the change is logged;
// while the names stay, the same certificate is served.
func TestListenerCertificateFollowsConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "postgres_tls.crt"), filepath.Join(dir, "postgres_tls.key")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	l := DBListenerConfig{Listen: "127.0.0.1:6432"}
	first, err := listenerCertificate("postgres", l, certFile, keyFile, log)
	require.NoError(t, err)
	assert.Contains(t, logs.String(), `level=INFO msg="generated the postgres listener certificate"`)
	assert.Contains(t, logs.String(), `names="localhost, 127.0.0.1"`)

	logs.Reset()
	same, err := listenerCertificate("postgres", l, certFile, keyFile, log)
	require.NoError(t, err)
	assert.Equal(t, first.Certificate, same.Certificate)
	assert.Empty(t, logs.String())

	l.TLSHosts = []string{"bastion.example.test", "10.0.0.5"}
	changed, err := listenerCertificate("postgres", l, certFile, keyFile, log)
	require.NoError(t, err)
	assert.NotEqual(t, first.Certificate, changed.Certificate)
	assert.NoError(t, changed.Leaf.VerifyHostname("bastion.example.test"))
	assert.NoError(t, changed.Leaf.VerifyHostname("10.0.0.5"))
	assert.Contains(t, logs.String(), `level=INFO msg="replaced the postgres listener certificate`)
	assert.Contains(t, logs.String(), `missing="bastion.example.test, 10.0.0.5"`)
}

// TestTLSHostsConfig: tls_hosts entries are host names or IPs, and only
// for a generated certificate.
func TestTLSHostsConfig(t *testing.T) {
	tests := []struct{ yaml, says string }{
		{"postgres: {tls_hosts: [db.example.com, 10.0.0.5, '*.db.example.com']}\n", ""},
		{"mysql: {tls_hosts: ['db.example.com:3307']}\n", `mysql.tls_hosts[0]: "db.example.com:3307" is neither an IP address nor a DNS name`},
		{"postgres: {tls_hosts: [db.example.com], tls_cert_file: /etc/db.crt, tls_key_file: /etc/db.key}\n",
			"postgres.tls_hosts: names the hosts of the generated certificate; the one in postgres.tls_cert_file names its own"},
	}
	for _, tc := range tests {
		_, err := ParseConfig("sallyport.yaml", []byte(tc.yaml))
		if tc.says == "" {
			assert.NoError(t, err, tc.yaml)
			continue
		}
		require.Error(t, err, tc.yaml)
		assert.Contains(t, err.Error(), tc.says)
	}
}

package sandbox

import (
	"context"
	"errors"
	"os"
	"testing"
)

// Need applies the project's policy for a server a test cannot do without.
// A nil err does nothing. An err wrapping ErrNotInstalled skips the test
// loudly when the environment variable CI is empty (a developer machine)
// and fails it when CI is set; any other err fails the test.
//
// Reading CI here is the one exception to "library packages never read the
// environment": the policy belongs to every test alike.
func Need(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, ErrNotInstalled) && os.Getenv("CI") == "" {
		t.Skipf("SKIPPED, real server missing (with CI set this fails): %v", err)
	}
	t.Fatalf("sandbox: %v", err)
}

// PostgresClientT is the path of the PostgreSQL program name (psql,
// pgbench): the newest Debian install's, as the sandbox server is, else
// PATH's; Need's policy applies when there is none.
func PostgresClientT(t testing.TB, name string) string {
	t.Helper()
	p, ok := lookBinary(name, versionDirs(postgresBinDirs)...)
	if !ok {
		Need(t, missing(name, postgresBinDirs+" or PATH", "postgresql"))
	}
	return p
}

// PostgresT starts a PostgreSQL sandbox for the test and stops it in
// t.Cleanup, applying Need's policy when it cannot start.
func PostgresT(t testing.TB, opts ...PostgresOptions) *Postgres {
	t.Helper()
	pg, err := StartPostgres(context.Background(), first(opts))
	Need(t, err)
	t.Cleanup(func() { stopT(t, pg.Stop) })
	return pg
}

// first returns the optional options argument of the *T helpers.
func first[O any](opts []O) O {
	var o O
	if len(opts) > 0 {
		o = opts[0]
	}
	return o
}

// stopT reports a failed stop as a test error: a leftover server would
// make later tests lie.
func stopT(t testing.TB, stop func() error) {
	t.Helper()
	if err := stop(); err != nil {
		t.Errorf("sandbox: %v", err)
	}
}

// SSHDT starts an sshd sandbox for the test and stops it in t.Cleanup,
// applying Need's policy when it cannot start.
func SSHDT(t testing.TB, opts SSHDOptions) *SSHD {
	t.Helper()
	s, err := StartSSHD(context.Background(), opts)
	Need(t, err)
	t.Cleanup(func() { stopT(t, s.Stop) })
	return s
}

// MariaDBT starts a MariaDB sandbox for the test and stops it in
// t.Cleanup, applying Need's policy when it cannot start.
func MariaDBT(t testing.TB, opts ...MariaDBOptions) *MariaDB {
	t.Helper()
	m, err := StartMariaDB(context.Background(), first(opts))
	Need(t, err)
	t.Cleanup(func() { stopT(t, m.Stop) })
	return m
}

// S3T starts an S3 sandbox for the test and stops it in t.Cleanup.
func S3T(t testing.TB, opts ...S3Options) *S3 {
	t.Helper()
	s, err := StartS3(context.Background(), first(opts))
	Need(t, err)
	t.Cleanup(func() { stopT(t, s.Stop) })
	return s
}

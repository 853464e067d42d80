package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordTB stands in for a test so Need's skip and fail can be observed.
type recordTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recordTB) Helper() {}

func (r *recordTB) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordTB) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestNeed(t *testing.T) {
	notInstalled := missing("initdb", "/usr/lib/postgresql/*/bin", "postgresql")
	tests := []struct {
		name               string
		ci                 string
		err                error
		wantSkip, wantFail bool
		wantMsgContains    string
	}{
		{name: "nil error passes", err: nil},
		{name: "missing binary skips without CI", err: notInstalled, wantSkip: true, wantMsgContains: "install the Debian package postgresql"},
		{name: "missing binary fails with CI", ci: "true", err: notInstalled, wantFail: true, wantMsgContains: "initdb not found"},
		{name: "other error fails without CI", err: errors.New("port taken"), wantFail: true, wantMsgContains: "port taken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recordTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				Need(r, tt.err)
			}()
			<-done
			assert.Equal(t, tt.wantSkip, r.skipped, "skipped: got %v, want %v", r.skipped, tt.wantSkip)
			assert.Equal(t, tt.wantFail, r.failed, "failed: got %v, want %v", r.failed, tt.wantFail)
			assert.Contains(t, r.msg, tt.wantMsgContains)
		})
	}
}

// assertGone checks what a user would notice after Stop: no process of the
// server's group, no listener on its port, no files left.
func assertGone(t *testing.T, pgid int, addr, dir string) {
	t.Helper()
	assert.False(t, groupAlive(pgid), "process group %d: got processes still running, want none", pgid)
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
	}
	assert.Error(t, err, "dial %s after Stop: got a listener, want connection refused", addr)
	_, err = os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "sandbox dir %s after Stop: got %v, want it removed", dir, err)
}

// ctxT is a context for one test's server calls.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// timed reports how long a server took to start, for the CI budget.
func timed[S any](t *testing.T, name string, start func() (S, error)) (S, error) {
	began := time.Now()
	s, err := start()
	t.Logf("%s started in %s", name, time.Since(began).Round(time.Millisecond))
	return s, err
}

// dumpLogOnFailure registers a cleanup, to run before Stop's, that shows
// the server log when the test failed.
func dumpLogOnFailure(t *testing.T, logPath string) {
	t.Cleanup(func() { logIfFailed(t, logPath) })
}

// logIfFailed shows the server log if t failed so far.
func logIfFailed(t *testing.T, logPath string) {
	if t.Failed() {
		t.Logf("server log%s", tailOf(logPath))
	}
}

func lines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }

// A machine without the server's package gets an error naming the binary
// and the Debian package, which Need turns into a skip or, under CI, a failure.
func TestMissingBinaryNamesPackage(t *testing.T) {
	nowhere := t.TempDir()
	tests := []struct {
		name        string
		hide        func()
		start       func(context.Context) error
		wantBinary  string
		wantPackage string
	}{
		{name: "postgres", hide: func() { postgresBinDirs = nowhere + "/*/bin" },
			start:      func(ctx context.Context) error { _, err := StartPostgres(ctx, PostgresOptions{}); return err },
			wantBinary: "initdb", wantPackage: "postgresql"},
		{name: "sshd", hide: func() { sshdSearch = []string{nowhere} },
			start:      func(ctx context.Context) error { _, err := StartSSHD(ctx, SSHDOptions{}); return err },
			wantBinary: "sshd", wantPackage: "openssh-server"},
		{name: "mariadb", hide: func() { mariadbSearch = []string{nowhere} },
			start:      func(ctx context.Context) error { _, err := StartMariaDB(ctx, MariaDBOptions{}); return err },
			wantBinary: "mariadb-install-db", wantPackage: "mariadb-server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pgDirs, sshDirs, mariaDirs := postgresBinDirs, sshdSearch, mariadbSearch
			t.Cleanup(func() { postgresBinDirs, sshdSearch, mariadbSearch = pgDirs, sshDirs, mariaDirs })
			tt.hide()
			t.Setenv("PATH", nowhere)
			err := tt.start(ctxT(t))
			require.Error(t, err, "start without %s: got a server, want an error", tt.wantBinary)
			assert.ErrorIs(t, err, ErrNotInstalled)
			assert.Contains(t, err.Error(), tt.wantBinary+" not found")
			assert.Contains(t, err.Error(), "install the Debian package "+tt.wantPackage)
		})
	}
}

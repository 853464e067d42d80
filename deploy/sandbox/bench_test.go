package sandbox

import (
	"context"
	"testing"
)

// The start-up benchmarks show what each sandbox adds to a test run: one
// iteration is a start that answers and a Stop.

func BenchmarkStartPostgres(b *testing.B) {
	benchStart(b, func(ctx context.Context) (func() error, error) {
		pg, err := StartPostgres(ctx, PostgresOptions{})
		if err != nil {
			return nil, err
		}
		return pg.Stop, nil
	})
}

func BenchmarkStartMariaDB(b *testing.B) {
	benchStart(b, func(ctx context.Context) (func() error, error) {
		m, err := StartMariaDB(ctx, MariaDBOptions{})
		if err != nil {
			return nil, err
		}
		return m.Stop, nil
	})
}

func BenchmarkStartSSHD(b *testing.B) {
	benchStart(b, func(ctx context.Context) (func() error, error) {
		s, err := StartSSHD(ctx, SSHDOptions{})
		if err != nil {
			return nil, err
		}
		return s.Stop, nil
	})
}

func BenchmarkStartS3(b *testing.B) {
	benchStart(b, func(ctx context.Context) (func() error, error) {
		s, err := StartS3(ctx, S3Options{})
		if err != nil {
			return nil, err
		}
		return s.Stop, nil
	})
}

// benchStart starts and stops a server per iteration.
func benchStart(b *testing.B, start func(context.Context) (func() error, error)) {
	ctx := context.Background()
	for b.Loop() {
		stop, err := start(ctx)
		Need(b, err)
		if err := stop(); err != nil {
			b.Fatalf("stop: %v", err)
		}
	}
}

// Package fuzzseed keeps the seed corpus of fuzz targets as files under
// testdata/fuzz, where `go test` runs them as regression inputs even when
// nobody fuzzes. Tests declare the seeds in code, so a protocol change that
// makes a seed stale fails loudly; -update-corpus rewrites the files.
package fuzzseed

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Corpus maps a fuzz target's name to its seeds, each a file name and the
// target's arguments.
type Corpus map[string]map[string][]any

// Check compares every seed's file under testdata/fuzz with what the
// seed marshals to, or writes them all when update is set.
func Check(t *testing.T, c Corpus, update bool) {
	t.Helper()
	for target, seeds := range c {
		for name, args := range seeds {
			path := filepath.Join("testdata", "fuzz", target, name)
			want := Marshal(args...)
			if update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("seed %s missing (run go test -run TestFuzzCorpus -update-corpus): %v", path, err)
				continue
			}
			if string(got) != string(want) {
				t.Errorf("seed %s is stale: run go test -run TestFuzzCorpus -update-corpus", path)
			}
		}
	}
}

// Marshal writes a corpus file as the go command does, for the argument
// types the fuzz targets here take.
func Marshal(args ...any) []byte {
	b := []byte("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			b = fmt.Appendf(b, "[]byte(%q)\n", v)
		case byte:
			b = fmt.Appendf(b, "byte(%q)\n", v)
		case uint16:
			b = fmt.Appendf(b, "uint16(%d)\n", v)
		case bool:
			b = fmt.Appendf(b, "bool(%v)\n", v)
		default:
			panic(fmt.Sprintf("fuzzseed: seed of type %T", a))
		}
	}
	return b
}

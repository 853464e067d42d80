package leaktest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestLeaksLooksInsideChunks holds the finder to what the proxies' tests
// need of it: a secret in a compressed chunk, a plain file or the log is
// found, and one that is nowhere is not.
func TestLeaksLooksInsideChunks(t *testing.T) {
	dir := t.TempDir()
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	fmt.Fprintln(w, `{"type":"query","sql":"ALTER ROLE a PASSWORD 'in-a-chunk'"}`)
	w.Close()
	chunk := fmt.Sprintf(`{"sallyport":"chunk/2","seq":1,"stream":"events.jsonl","encoding":"gzip","size":%d}`+"\n", z.Len())
	for name, b := range map[string][]byte{
		"a/000001.chunk": append([]byte(chunk), z.Bytes()...),
		"b/session.json": []byte(`{"note":"in-a-file"}`),
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got := Leaks(t, []string{dir}, []byte("level=INFO msg=in-the-log"), []string{"in-a-chunk", "in-a-file", "in-the-log", "nowhere"})
	want := []string{
		filepath.Join(dir, "a/000001.chunk") + " (decompressed): in-a-chunk",
		filepath.Join(dir, "b/session.json") + ": in-a-file",
		"log: in-the-log",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

package leaktest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestLeaksLooksInsideChunks holds the finder to what the proxies' tests
// need of it: a secret in a compressed chunk (zstd, as the recorder
// writes, or gzip, as it did), a plain file or the log is found, and one
// that is nowhere is not.
func TestLeaksLooksInsideChunks(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{"c/session.json": []byte(`{"note":"in-a-file"}`)}
	for name, enc := range map[string]string{"a": "zstd", "b": "gzip"} {
		var events bytes.Buffer // enough that the compressor codes the secret's bytes too
		for i := range 200 {
			fmt.Fprintf(&events, `{"type":"query","sql":"SELECT %d FROM accounts WHERE aid = %d"}`+"\n", i, i*7919)
			if i == 100 {
				fmt.Fprintf(&events, `{"type":"query","sql":"ALTER ROLE a PASSWORD 'in-a-%s-chunk'"}`+"\n", enc)
			}
		}
		z := compress(t, enc, events.Bytes())
		header := fmt.Sprintf(`{"sallyport":"chunk/2","seq":1,"stream":"events.jsonl","encoding":"%s","size":%d}`+"\n", enc, len(z))
		files[name+"/000001.chunk"] = append([]byte(header), z...)
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got := Leaks(t, []string{dir}, []byte("level=INFO msg=in-the-log"),
		[]string{"in-a-zstd-chunk", "in-a-gzip-chunk", "in-a-file", "in-the-log", "nowhere"})
	want := []string{
		filepath.Join(dir, "a/000001.chunk") + " (decompressed): in-a-zstd-chunk",
		filepath.Join(dir, "b/000001.chunk") + " (decompressed): in-a-gzip-chunk",
		filepath.Join(dir, "c/session.json") + ": in-a-file",
		"log: in-the-log",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func compress(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	if enc == "zstd" {
		w, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		return w.EncodeAll(b, nil)
	}
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write(b)
	w.Close()
	return z.Bytes()
}

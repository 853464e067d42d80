package recorder

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestCutSQL: a statement past the cap keeps a prefix that ends on a whole
// character, and the length and SHA-256 of all of it.
func TestCutSQL(t *testing.T) {
	long := "insert into t values ('" + strings.Repeat("é", 100) + "')"
	for _, tc := range []struct {
		name, sql string
		max       int
		want      string
		cut       bool
	}{
		{"short", "select 1", 64, "select 1", false},
		{"exactly max", "select 1", 8, "select 1", false},
		{"no cap", long, 0, long, false},
		{"ascii", "select 12345", 8, "select 1", true},
		{"inside a character", long, 24, long[:23], true}, // byte 24 is the middle of an é
		{"on a character", long, 25, long[:25], true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, cut := CutSQL(tc.sql, tc.max)
			assert.Equal(t, tc.want, got)
			assert.True(t, utf8.ValidString(got), "the prefix is valid UTF-8")
			if !tc.cut {
				assert.Nil(t, cut)
				return
			}
			if assert.NotNil(t, cut) {
				assert.Equal(t, &Cut{Bytes: int64(len(tc.sql)), SHA256: sum(tc.sql)}, cut, "length and hash of the whole statement")
			}
		})
	}
}

// TestCutParam: text and binary parameters past the cap become a prefix
// with the whole value's length and SHA-256; others stay as they are.
func TestCutParam(t *testing.T) {
	text := strings.Repeat("ü", 10) // 20 bytes
	bin := []byte("0123456789abcdef")
	assert.Equal(t, map[string]string{"prefix": "üü", "bytes": "20", "sha256": sum(text)}, CutParam(text, 5),
		"a text cut at a character boundary")
	assert.Equal(t, map[string]string{"base64_prefix": base64.StdEncoding.EncodeToString(bin[:4]), "bytes": "16", "sha256": sum(string(bin))},
		CutParam(bin, 4))
	b64 := map[string]string{"base64": base64.StdEncoding.EncodeToString(bin)}
	assert.Equal(t, CutParam(bin, 4), CutParam(b64, 4), "a {base64} parameter is cut as its bytes")
	assert.Equal(t, b64, CutParam(b64, 16))
	assert.Equal(t, text, CutParam(text, 20))
	assert.Equal(t, text, CutParam(text, 0), "0: no cap")
	assert.Equal(t, int64(1<<40), CutParam(int64(1<<40), 1))
}

// TestMaxStatementBytes: the configured cap as the proxies see it.
func TestMaxStatementBytes(t *testing.T) {
	for cfg, want := range map[int]int{0: DefaultMaxStatementBytes, -1: 0, 4096: 4096} {
		assert.Equal(t, want, (&Recorder{Config: Config{MaxStatementBytes: cfg}}).MaxStatementBytes(), "config %d", cfg)
	}
}

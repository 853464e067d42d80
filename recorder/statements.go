package recorder

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Transaction states (Event.Tx) and the ops of a transaction event.
const (
	TxIdle     = "idle"     // no transaction open: autocommit, or the last one ended
	TxIn       = "in"       // inside a transaction
	TxFailed   = "failed"   // inside a transaction that can only roll back
	TxCommit   = "commit"   // a transaction event: its statements were committed
	TxRollback = "rollback" // a transaction event: its statements were rolled back
)

// DefaultMaxStatementBytes is what Config.MaxStatementBytes zero means:
// a statement or parameter longer than 64 KiB keeps its first 64 KiB,
// its length and its SHA-256.
const DefaultMaxStatementBytes = 64 << 10

// MaxStatementBytes is how many bytes of a statement's text, and of each
// string or bytes parameter, the database proxies keep (pass it to CutSQL
// and CutParam); 0 means no cap.
func (s *Session) MaxStatementBytes() int { return s.rec.MaxStatementBytes() }

// MaxStatementBytes is the statement cap of the recorder's sessions
// (Config.MaxStatementBytes, or its default); 0 means no cap.
func (r *Recorder) MaxStatementBytes() int {
	switch n := r.Config.MaxStatementBytes; {
	case n < 0:
		return 0
	case n == 0:
		return DefaultMaxStatementBytes
	default:
		return n
	}
}

// sha256String is the hex SHA-256 of s, hashed where it lies: a statement
// past the cap may be a hundred megabytes, not worth a copy to hash it.
func sha256String(s string) string {
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(s), len(s)))
	return hex.EncodeToString(sum[:])
}

// CutSQL is the one rule both database proxies apply to a statement's
// text: a text longer than max bytes keeps its first max bytes (fewer, to
// end on a UTF-8 character boundary) and a Cut with the whole text's length
// and SHA-256, for Event.SQLCut. max 0 (no cap) or a short text returns
// sql and nil.
func CutSQL(sql string, max int) (string, *Cut) {
	if max <= 0 || len(sql) <= max {
		return sql, nil
	}
	return sql[:runeStart(sql, max)], &Cut{Bytes: int64(len(sql)), SHA256: sha256String(sql)}
}

// CutParam is the rule for one query parameter: a string, []byte or
// {"base64": ...} parameter longer than max bytes becomes
//
//	{"prefix": "<first max bytes>", "bytes": "<length>", "sha256": "<hex>"}
//
// for text (cut on a UTF-8 boundary), or the same with "base64_prefix"
// (the first max bytes, base64) for binary. The length and hash are of the
// whole value; the rest of it is not kept. Any other value, and any value
// when max is 0, is returned as it is.
func CutParam(v any, max int) any {
	if max <= 0 {
		return v
	}
	switch v := v.(type) {
	case string:
		if len(v) <= max {
			return v
		}
		return map[string]string{
			"prefix": v[:runeStart(v, max)],
			"bytes":  strconv.Itoa(len(v)),
			"sha256": sha256String(v),
		}
	case []byte:
		return cutBinary(v, max, v)
	case map[string]string:
		s, ok := v["base64"]
		if !ok || len(v) != 1 || base64.StdEncoding.DecodedLen(len(s)) <= max {
			return v
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return v
		}
		return cutBinary(b, max, v)
	}
	return v
}

func cutBinary(b []byte, max int, whole any) any {
	if len(b) <= max {
		return whole
	}
	sum := sha256.Sum256(b)
	return map[string]string{
		"base64_prefix": base64.StdEncoding.EncodeToString(b[:max]),
		"bytes":         strconv.Itoa(len(b)),
		"sha256":        hex.EncodeToString(sum[:]),
	}
}

// runeStart is the largest i <= max at which s can be cut without
// splitting a UTF-8 character (s longer than max).
func runeStart(s string, max int) int {
	i := max
	for i > 0 && i > max-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	if !utf8.RuneStart(s[i]) { // not UTF-8 there: cut at max
		return max
	}
	return i
}

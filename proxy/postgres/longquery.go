package postgres

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"hash"

	"github.com/sallyport/sallyport/proxy/sqlredact"
	"github.com/sallyport/sallyport/recorder"
)

// longQuery follows a simple Query too long to hold (its body is over the
// message limit, 64 MiB unless set) as it passes to the target, as
// PostgreSQL takes them (up to 1 GB): the bastion keeps a prefix of its
// text, as long as the statement cap, and hashes all of it. Its passwords
// are removed from the prefix; the length and SHA-256 are of the text as
// sent, since it was never held whole.
type longQuery struct {
	prefix []byte
	sum    hash.Hash
	n      int64
}

// longPart takes the next part of a long Query's body; end marks the
// last, which ends with the text's NUL. Called locked (scan).
func (a *audit) longPart(_ byte, _ int, part []byte, end bool) error {
	l := &a.long
	if l.sum == nil {
		l.sum = sha256.New()
	}
	text := part
	if end {
		if part[len(part)-1] != 0 {
			return errBadQuery
		}
		text = part[:len(part)-1]
	}
	if bytes.IndexByte(text, 0) >= 0 {
		return errBadQuery
	}
	l.sum.Write(text)
	l.n += int64(len(text))
	if room := a.keep() - len(l.prefix); room > 0 {
		l.prefix = append(l.prefix, text[:min(room, len(text))]...)
	}
	if end {
		a.units++
		a.longQueryDone()
		a.long = longQuery{}
	}
	return nil
}

// keep is how much of a long Query's text is kept: the statement cap, or
// without one, as much as a cap by default keeps.
func (a *audit) keep() int {
	if a.max > 0 {
		return a.max
	}
	return recorder.DefaultMaxStatementBytes
}

// longQueryDone queues the long Query whose whole text passed.
func (a *audit) longQueryDone() {
	l := &a.long
	text, red := sqlredact.Statement(sqlredact.PostgreSQL, string(l.prefix))
	q := query{kind: 'Q', red: red}
	if several(text) {
		q.pieces = a.split(text, false)
	}
	q.sql, _ = recorder.CutSQL(text, a.keep())
	q.cut = &recorder.Cut{Bytes: l.n, SHA256: hex.EncodeToString(l.sum.Sum(nil))}
	a.push(q)
}

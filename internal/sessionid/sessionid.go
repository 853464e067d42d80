// Package sessionid makes and reads sallyport's session ids. It is a leaf
// below every package that names sessions: the proxies make ids, the
// recorder files recordings under them, and the credential janitors in ca
// read their start time, without any of them importing another upward.
package sessionid

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// New returns a new session id: 8 hex digits of the start time in seconds
// (so ids sort by start) and 16 of randomness. It is safe in role names,
// object keys and file names.
func New(now time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], uint32(now.Unix()))
	if _, err := rand.Read(b[4:]); err != nil {
		panic(fmt.Sprintf("read random session id: %v", err)) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

// Started reads the start time New put at the front of a session id. ok
// is false for an id New did not make. The credential janitors use it to
// spare the credentials of sessions that are only just starting.
func Started(id string) (time.Time, bool) {
	if len(id) < 8 {
		return time.Time{}, false
	}
	b, err := hex.DecodeString(id[:8])
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(binary.BigEndian.Uint32(b)), 0), true
}

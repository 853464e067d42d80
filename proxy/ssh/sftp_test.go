package ssh

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// sftpPacket frames fields (byte, uint32, uint64 or string) as one packet.
func sftpPacket(fields ...any) []byte {
	var body []byte
	for _, f := range fields {
		switch v := f.(type) {
		case byte:
			body = append(body, v)
		case uint32:
			body = binary.BigEndian.AppendUint32(body, v)
		case uint64:
			body = binary.BigEndian.AppendUint64(body, v)
		case string:
			body = binary.BigEndian.AppendUint32(body, uint32(len(v)))
			body = append(body, v...)
		}
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// sftpOp is a recorded sftp event in short, for comparisons.
type sftpOp struct {
	Op, Path, To, Mode string
	Bytes              int64
	SHA256             string
	Outcome            string // "ok", "code: message", or "" for none
}

func summarizeSFTP(evs []recorder.Event) []sftpOp {
	var ops []sftpOp
	for _, ev := range evs {
		o := sftpOp{Op: ev.Op, Path: ev.Path, To: ev.To, Mode: ev.Mode, Bytes: ev.Bytes, SHA256: ev.SHA256}
		switch {
		case ev.Outcome == nil:
		case ev.Outcome.ErrorCode == "":
			o.Outcome = "ok"
		default:
			o.Outcome = ev.Outcome.ErrorCode + ": " + ev.Outcome.Error
		}
		ops = append(ops, o)
	}
	return ops
}

func status(id, code uint32, msg string) []byte {
	return sftpPacket(byte(sftpStatus), id, code, msg, "")
}

func TestSFTPParserRecordsOperations(t *testing.T) {
	big := string(make([]byte, 100000))
	client := [][]byte{
		sftpPacket(byte(1), uint32(3)), // init
		sftpPacket(byte(sftpOpen), uint32(1), "/srv/a.txt", uint32(0x1a), uint32(4), uint32(0o640)),
		sftpPacket(byte(sftpWrite), uint32(2), "h1", uint64(0), big),
		sftpPacket(byte(sftpWrite), uint32(3), "h1", uint64(100000), "tail"),
		sftpPacket(byte(sftpClose), uint32(4), "h1"),
		sftpPacket(byte(sftpOpen), uint32(5), "/etc/shadow", uint32(1), uint32(0)),
		sftpPacket(byte(sftpRename), uint32(6), "/srv/a.txt", "/srv/b.txt"),
		sftpPacket(byte(sftpRemove), uint32(7), "/srv/b.txt"),
		sftpPacket(byte(sftpExtended), uint32(8), "posix-rename@openssh.com", "/x", "/y"),
		sftpPacket(byte(sftpMkdir), uint32(9), "/srv", uint32(4), uint32(0o40755)),
		sftpPacket(byte(sftpSetstat), uint32(10), "/srv/c", uint32(0xd), uint64(7), uint32(0o100600), uint32(1), uint32(2)),
		sftpPacket(byte(sftpStat), uint32(11), "/srv/there"),
		sftpPacket(byte(sftpLstat), uint32(12), "/srv/missing"),
		sftpPacket(byte(sftpRmdir), uint32(13), "/srv/never-answered"),
	}
	server := [][]byte{
		sftpPacket(byte(sftpHandle), uint32(1), "h1"),
		status(2, 0, "Success"),
		status(3, 0, "Success"),
		status(5, 3, "Permission denied"),
		status(6, 0, "Success"),
		status(7, 2, "No such file"),
		status(8, 4, "Failure"),
		status(9, 4, "Failure"),
		status(10, 0, "Success"),
		sftpPacket(byte(105), uint32(11), uint32(0)), // ATTRS: stat of what exists is not recorded
		status(12, 2, "No such file"),
	}
	var got []recorder.Event
	p := newSFTPParser(func(ev recorder.Event) { got = append(got, ev) }, 0)
	// Requests and answers interleave as on the wire; feed in odd-sized pieces.
	p.fromClient(join(client[:2]))
	feedInPieces(p.fromServer, server[0], 3)
	feedInPieces(p.fromClient, join(client[2:6]), 7)
	feedInPieces(p.fromServer, join(server[1:4]), 5)
	p.fromClient(join(client[6:]))
	p.fromServer(join(server[4:]))
	p.flush()
	sum := sha256.Sum256([]byte(big + "tail"))
	assert.Equal(t, []sftpOp{
		{Op: "open", Path: "/srv/a.txt", Mode: "0640", Outcome: "ok"},
		{Op: "write", Path: "/srv/a.txt", Bytes: 100004, SHA256: hex.EncodeToString(sum[:]), Outcome: "ok"},
		{Op: "open", Path: "/etc/shadow", Outcome: "permission_denied: Permission denied"},
		{Op: "rename", Path: "/srv/a.txt", To: "/srv/b.txt", Outcome: "ok"},
		{Op: "remove", Path: "/srv/b.txt", Outcome: "no_such_file: No such file"},
		{Op: "rename", Path: "/x", To: "/y", Outcome: "failure: Failure"},
		{Op: "mkdir", Path: "/srv", Mode: "0755", Outcome: "failure: Failure"},
		{Op: "setstat", Path: "/srv/c", Mode: "0600", Outcome: "ok"},
		{Op: "lstat", Path: "/srv/missing", Outcome: "no_such_file: No such file"},
		{Op: "rmdir", Path: "/srv/never-answered"},
	}, summarizeSFTP(got))
	for _, ev := range got {
		if ev.Op == "write" {
			assert.Equal(t, "upload", ev.Direction)
		}
	}
}

// TestSFTPParserHashes: a file read or written whole and in order from
// offset 0 gets its SHA-256; any gap, overlap or reordering costs it.
func TestSFTPParserHashes(t *testing.T) {
	content := make([]byte, 70000) // more than one packet's capture per piece
	for i := range content {
		content[i] = byte(i * 7)
	}
	whole := sha256.Sum256(content)
	pieces := func(offsets ...int) [][2]int { // [from, to) of content
		var out [][2]int
		for i := 0; i+1 < len(offsets); i += 2 {
			out = append(out, [2]int{offsets[i], offsets[i+1]})
		}
		return out
	}
	tests := []struct {
		name   string
		read   bool
		pieces [][2]int
		eof    bool // the read ends on EOF at the end
		want   string
	}{
		{"write in order", false, pieces(0, 32768, 32768, 65536, 65536, 70000), false, hex.EncodeToString(whole[:])},
		{"write with a gap", false, pieces(0, 32768, 40000, 70000), false, ""},
		{"write not from 0", false, pieces(100, 70000), false, ""},
		{"write overlapping", false, pieces(0, 40000, 32768, 70000), false, ""},
		{"write out of order", false, pieces(32768, 70000, 0, 32768), false, ""},
		{"read to EOF", true, pieces(0, 32768, 32768, 65536, 65536, 70000), true, hex.EncodeToString(whole[:])},
		{"read without EOF", true, pieces(0, 32768, 32768, 70000), false, ""},
		{"read out of order", true, pieces(32768, 70000, 0, 32768), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []recorder.Event
			p := newSFTPParser(func(ev recorder.Event) { got = append(got, ev) }, 0)
			p.fromClient(sftpPacket(byte(sftpOpen), uint32(1), "/f", uint32(1), uint32(0)))
			p.fromServer(sftpPacket(byte(sftpHandle), uint32(1), "h"))
			id := uint32(2)
			for _, pc := range tt.pieces {
				data := string(content[pc[0]:pc[1]])
				if tt.read {
					p.fromClient(sftpPacket(byte(sftpRead), id, "h", uint64(pc[0]), uint32(len(data))))
					feedInPieces(p.fromServer, sftpPacket(byte(sftpData), id, data), 1000)
				} else {
					feedInPieces(p.fromClient, sftpPacket(byte(sftpWrite), id, "h", uint64(pc[0]), data), 1000)
					p.fromServer(status(id, 0, ""))
				}
				id++
			}
			if tt.eof {
				p.fromClient(sftpPacket(byte(sftpRead), id, "h", uint64(70000), uint32(32768)))
				p.fromClient(sftpPacket(byte(sftpRead), id+1, "h", uint64(70000+32768), uint32(32768)))
				p.fromServer(status(id, sftpEOF, "EOF"))
				p.fromServer(status(id+1, sftpEOF, "EOF"))
			}
			p.fromClient(sftpPacket(byte(sftpClose), uint32(99), "h"))
			require.Len(t, got, 2)
			assert.Equal(t, map[bool]string{true: "read", false: "write"}[tt.read], got[1].Op)
			assert.Equal(t, tt.want, got[1].SHA256)
		})
	}
}

// A file cut off in the middle of a write packet has no hash.
func TestSFTPParserCutWrite(t *testing.T) {
	var got []recorder.Event
	p := newSFTPParser(func(ev recorder.Event) { got = append(got, ev) }, 0)
	p.fromClient(sftpPacket(byte(sftpOpen), uint32(1), "/f", uint32(0x1a), uint32(0)))
	p.fromServer(sftpPacket(byte(sftpHandle), uint32(1), "h"))
	w := sftpPacket(byte(sftpWrite), uint32(2), "h", uint64(0), string(make([]byte, 30000)))
	p.fromClient(w[:20000])
	p.flush()
	require.Len(t, got, 2)
	assert.Equal(t, "write", got[1].Op)
	assert.Empty(t, got[1].SHA256)
}

func join(pkts [][]byte) []byte {
	var out []byte
	for _, p := range pkts {
		out = append(out, p...)
	}
	return out
}

func feedInPieces(feed func([]byte), b []byte, n int) {
	for len(b) > 0 {
		k := min(n, len(b))
		feed(b[:k])
		b = b[k:]
	}
}

// FuzzSFTPParser: any byte stream in either direction, cut anywhere, is
// parsed without panics and with bounded state.
func FuzzSFTPParser(f *testing.F) {
	f.Add(sftpPacket(byte(sftpOpen), uint32(1), "/a", uint32(0), uint32(0)), sftpPacket(byte(sftpHandle), uint32(1), "h"), 3)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 3}, []byte{0, 0, 0, 0}, 1)
	f.Fuzz(func(t *testing.T, cli, srv []byte, piece int) {
		if piece <= 0 {
			piece = 1
		}
		p := newSFTPParser(func(recorder.Event) {}, 0)
		feedInPieces(p.fromClient, cli, piece)
		feedInPieces(p.fromServer, srv, piece)
		if len(p.pending) > maxSFTPPending || p.held > maxSFTPPendingBytes || len(p.handles) > maxSFTPPending {
			t.Fatalf("%d pending requests holding %d bytes, %d handles", len(p.pending), p.held, len(p.handles))
		}
		p.flush()
		if len(p.cli.body) > sftpCapture || len(p.srv.body) > sftpCapture {
			t.Fatalf("captured %d/%d bytes, want <= %d", len(p.cli.body), len(p.srv.body), sftpCapture)
		}
		if len(p.pending) != 0 || p.held != 0 || len(p.handles) != 0 {
			t.Fatalf("after flush: %d pending requests holding %d bytes, %d handles", len(p.pending), p.held, len(p.handles))
		}
	})
}

func TestParseLogin(t *testing.T) {
	tests := []struct {
		user, identity, target, code string
	}{
		{"svc-a@web-01", "svc-a", "web-01", ""},
		{"svc-a+web-01", "svc-a", "web-01", ""},
		{"a@b@web", "a@b", "web", ""},
		{"svc-a", "", "", "unknown_target"},
		{"@web", "", "", "unknown_identity"},
		{"svc-a@", "", "", "unknown_target"},
		{"svc\x00@web", "", "", "unknown_identity"},
		{string(make([]byte, 300)) + "@web", "", "", "unknown_identity"},
	}
	for _, tt := range tests {
		t.Run(tt.identity+tt.code, func(t *testing.T) {
			id, target, err := parseLogin(tt.user)
			if tt.code != "" {
				assert.ErrorContains(t, err, "access denied ("+tt.code+")")
				return
			}
			assert.NoError(t, err)
			assert.Equal(t, tt.identity, id)
			assert.Equal(t, tt.target, target)
		})
	}
}

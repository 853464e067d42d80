package ssh

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"

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

func TestSFTPParserRecordsOperations(t *testing.T) {
	big := string(make([]byte, 100000))
	client := [][]byte{
		sftpPacket(byte(1), uint32(3)), // init
		sftpPacket(byte(sftpOpen), uint32(1), "/srv/a.txt", uint32(0x1a), uint32(0)),
		sftpPacket(byte(sftpWrite), uint32(2), "h1", uint64(0), big),
		sftpPacket(byte(sftpWrite), uint32(3), "h1", uint64(100000), "tail"),
		sftpPacket(byte(sftpClose), uint32(4), "h1"),
		sftpPacket(byte(sftpOpen), uint32(5), "/etc/shadow", uint32(1), uint32(0)),
		sftpPacket(byte(sftpRename), uint32(6), "/srv/a.txt", "/srv/b.txt"),
		sftpPacket(byte(sftpRemove), uint32(7), "/srv/b.txt"),
		sftpPacket(byte(sftpExtended), uint32(8), "posix-rename@openssh.com", "/x", "/y"),
	}
	server := [][]byte{
		sftpPacket(byte(sftpHandle), uint32(1), "h1"),
		sftpPacket(byte(sftpStatus), uint32(5), uint32(3), "Permission denied", ""),
	}
	var got []recorder.Event
	p := newSFTPParser(func(ev recorder.Event) { got = append(got, ev) }, 0)
	// Requests and answers interleave as on the wire; feed in odd-sized pieces.
	p.fromClient(join(client[:2]))
	feedInPieces(p.fromServer, server[0], 3)
	feedInPieces(p.fromClient, join(client[2:6]), 7)
	p.fromServer(server[1])
	p.fromClient(join(client[6:]))
	p.flush()
	type op struct {
		Op, Path, To string
		Bytes        int64
		Err          string
	}
	var ops []op
	for _, ev := range got {
		o := op{Op: ev.Op, Path: ev.Path, To: ev.To, Bytes: ev.Bytes}
		if ev.Outcome != nil {
			o.Err = ev.Outcome.Error
		}
		ops = append(ops, o)
	}
	assert.Equal(t, []op{
		{Op: "open", Path: "/srv/a.txt"},
		{Op: "write", Path: "/srv/a.txt", Bytes: 100004},
		{Op: "open", Path: "/etc/shadow", Err: "Permission denied"},
		{Op: "rename", Path: "/srv/a.txt", To: "/srv/b.txt"},
		{Op: "remove", Path: "/srv/b.txt"},
		{Op: "rename", Path: "/x", To: "/y"},
	}, ops)
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
		p.flush()
		if len(p.cli.body) > sftpCapture || len(p.srv.body) > sftpCapture {
			t.Fatalf("captured %d/%d bytes, want <= %d", len(p.cli.body), len(p.srv.body), sftpCapture)
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

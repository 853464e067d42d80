package mysql

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
)

// maxPacketPayload is the largest payload of one physical packet; a
// logical packet this long or longer continues in the next one.
const maxPacketPayload = 1<<24 - 1

// errPacketTooLarge is wrapped by errors for a packet over the limit.
var errPacketTooLarge = errors.New("packet too large")

// errSequence marks a packet whose sequence id is not the expected one.
var errSequence = errors.New("packet out of sequence")

// packetConn reads and writes the packets of one side of a connection
// during the handshake: length-prefixed, numbered, split at 16 MB.
type packetConn struct {
	conn net.Conn
	r    *bufio.Reader
	seq  byte // the sequence id of the next packet either way
	max  int  // largest logical payload accepted
}

func newPacketConn(conn net.Conn, max int) *packetConn {
	return &packetConn{conn: conn, r: bufio.NewReaderSize(conn, clientReadBuffer), max: max}
}

// read returns the next logical packet, joining continuation packets.
func (p *packetConn) read() ([]byte, error) {
	return readPacketInto(p.r, &p.seq, p.max, nil)
}

// readPacketInto reads one logical packet from r into dst[:0]'s storage,
// checking and advancing seq.
func readPacketInto(r io.Reader, seq *byte, max int, dst []byte) ([]byte, error) {
	out := dst[:0]
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, fmt.Errorf("read packet header: %w", err)
		}
		n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		if hdr[3] != *seq {
			return nil, fmt.Errorf("%w: got sequence id %d, want %d", errSequence, hdr[3], *seq)
		}
		*seq++
		if len(out)+n > max {
			return nil, fmt.Errorf("%w: over %d bytes", errPacketTooLarge, max)
		}
		start := len(out)
		out = slices.Grow(out, n)[:start+n]
		if _, err := io.ReadFull(r, out[start:]); err != nil {
			return nil, fmt.Errorf("read packet body: %w", err)
		}
		if n < maxPacketPayload {
			return out, nil
		}
	}
}

// write sends payload as one logical packet, in one write.
func (p *packetConn) write(payload []byte) error {
	_, err := p.conn.Write(appendPacket(nil, &p.seq, payload))
	return err
}

// appendPacket frames payload as packets numbered from *seq, splitting it
// at 16 MB (a payload that is a multiple of it ends with an empty packet).
func appendPacket(dst []byte, seq *byte, payload []byte) []byte {
	for {
		n := min(len(payload), maxPacketPayload)
		dst = append(dst, byte(n), byte(n>>8), byte(n>>16), *seq)
		dst = append(dst, payload[:n]...)
		*seq++
		payload = payload[n:]
		if n < maxPacketPayload {
			return dst
		}
	}
}

// lenenc reads a length-encoded integer; ok is false when b is too short
// or holds the NULL marker 0xFB.
func lenenc(b []byte) (v uint64, rest []byte, ok bool) {
	if len(b) == 0 {
		return 0, nil, false
	}
	switch c := b[0]; {
	case c < 0xfb:
		return uint64(c), b[1:], true
	case c == 0xfc && len(b) >= 3:
		return uint64(binary.LittleEndian.Uint16(b[1:])), b[3:], true
	case c == 0xfd && len(b) >= 4:
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, b[4:], true
	case c == 0xfe && len(b) >= 9:
		return binary.LittleEndian.Uint64(b[1:]), b[9:], true
	}
	return 0, nil, false
}

// lenencBytes reads a length-encoded string.
func lenencBytes(b []byte) (s, rest []byte, ok bool) {
	n, rest, ok := lenenc(b)
	if !ok || uint64(len(rest)) < n {
		return nil, nil, false
	}
	return rest[:n], rest[n:], true
}

func appendLenenc(b []byte, v uint64) []byte {
	switch {
	case v < 0xfb:
		return append(b, byte(v))
	case v < 1<<16:
		return append(b, 0xfc, byte(v), byte(v>>8))
	case v < 1<<24:
		return append(b, 0xfd, byte(v), byte(v>>8), byte(v>>16))
	}
	return binary.LittleEndian.AppendUint64(append(b, 0xfe), v)
}

// cstring reads a NUL-terminated string.
func cstring(b []byte) (s string, rest []byte, ok bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:], true
		}
	}
	return "", nil, false
}

// Packet headers.
const (
	hdrOK          = 0x00
	hdrLocalInfile = 0xfb
	hdrEOF         = 0xfe
	hdrErr         = 0xff
)

// Server status flags the audit reads.
const (
	statusAutocommit   = 0x0002
	statusMoreResults  = 0x0008
	statusCursorExists = 0x0040
)

// okPacket is an OK with no rows affected and the given status.
func okPacket(status uint16) []byte {
	return []byte{hdrOK, 0, 0, byte(status), byte(status >> 8), 0, 0}
}

// errPacket builds an ERR packet (protocol 4.1: with SQLSTATE).
func errPacket(code uint16, state, msg string) []byte {
	b := binary.LittleEndian.AppendUint16([]byte{hdrErr}, code)
	b = append(b, '#')
	b = append(b, state...)
	return append(b, msg...)
}

// parseErr reads the code, SQLSTATE and message of an ERR packet.
func parseErr(b []byte) (code uint16, state, msg string, ok bool) {
	if len(b) < 3 || b[0] != hdrErr {
		return 0, "", "", false
	}
	code, b = binary.LittleEndian.Uint16(b[1:]), b[3:]
	if len(b) >= 6 && b[0] == '#' {
		state, b = string(b[1:6]), b[6:]
	}
	return code, state, string(b), true
}

// parseOK reads the affected rows and status of an OK packet (header 0x00,
// or 0xFE when it replaces EOF).
func parseOK(b []byte) (affected uint64, status uint16, ok bool) {
	if len(b) < 1 {
		return 0, 0, false
	}
	affected, rest, ok := lenenc(b[1:])
	if !ok {
		return 0, 0, false
	}
	if _, rest, ok = lenenc(rest); !ok || len(rest) < 2 {
		return 0, 0, false
	}
	return affected, binary.LittleEndian.Uint16(rest), true
}

// parseEOF reads the status of an EOF packet (protocol 4.1).
func parseEOF(b []byte) (status uint16, ok bool) {
	if len(b) < 5 || b[0] != hdrEOF {
		return 0, false
	}
	return binary.LittleEndian.Uint16(b[3:]), true
}

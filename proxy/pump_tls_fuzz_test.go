package proxy

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// boundaries are where the records of stream end, as TLS reads them: a
// header claiming more than a record may hold ends its record at once.
func boundaries(stream []byte) map[int]bool {
	ends := map[int]bool{0: true}
	for pos := 0; pos+tlsHeaderLen <= len(stream); {
		body := int(binary.BigEndian.Uint16(stream[pos+3:]))
		if body > tlsMaxRecord {
			body = 0
		}
		pos += tlsHeaderLen + body
		ends[pos] = true
	}
	return ends
}

// FuzzTLSTransportRecords feeds a linked transport any ciphertext in any
// chunks and reads it with any buffer: every byte reaches TLS once and in
// order, no Read crosses a record's end, and the pump stops only when no
// whole record is left.
func FuzzTLSTransportRecords(f *testing.F) {
	f.Add([]byte{23, 3, 3, 0, 2, 'h', 'i', 23, 3, 3, 0, 1, '!'}, uint8(3), uint8(4))
	f.Add([]byte{23, 3, 3, 0xff, 0xff, 1, 2, 3}, uint8(1), uint8(200))
	f.Add([]byte{22, 3, 3, 0, 0, 23, 3, 3, 0, 3, 'a', 'b'}, uint8(7), uint8(1))
	f.Fuzz(func(t *testing.T, stream []byte, chunk, bufLen uint8) {
		ends := boundaries(stream)
		tr := &tlsTransport{linked: true}
		var got []byte
		buf := make([]byte, int(bufLen)+1)
		step := int(chunk) + 1
		for fed := 0; fed < len(stream); {
			next := min(fed+step, len(stream))
			tr.in = append(tr.in, stream[fed:next]...)
			fed = next
			for tr.recordEnd() >= 0 {
				n, err := tr.Read(buf)
				if err != nil || n == 0 {
					t.Fatalf("read with a whole record buffered: %d, %v", n, err)
				}
				got = append(got, buf[:n]...)
				if start := len(got) - n; !crossesNoEnd(ends, start, len(got)) {
					t.Fatalf("read [%d, %d) crosses a record's end", start, len(got))
				}
			}
			if fed == len(stream) {
				break
			}
		}
		if !bytes.Equal(got, stream[:len(got)]) {
			t.Fatal("bytes reached TLS out of order")
		}
		if len(got)+len(tr.in) != len(stream) {
			t.Fatalf("%d bytes handed and %d kept of %d", len(got), len(tr.in), len(stream))
		}
		for e := len(got) + 1; e <= len(stream); e++ {
			if ends[e] {
				t.Fatalf("the record ending at %d was left whole", e)
			}
		}
	})
}

// crossesNoEnd reports whether [start, end) has no record end inside it.
func crossesNoEnd(ends map[int]bool, start, end int) bool {
	for i := start + 1; i < end; i++ {
		if ends[i] {
			return false
		}
	}
	return true
}

package auditexport

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readFrames reads octet-counted syslog messages off c until it closes.
func readFrames(c net.Conn, out chan<- string) {
	br := bufio.NewReader(c)
	for {
		n, err := br.ReadString(' ')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil {
			out <- "bad frame " + n
			return
		}
		msg := make([]byte, size)
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		out <- string(msg)
	}
}

// TestSyslogSinkReconnects: RFC 5424 messages in octet-counting frames; a
// receiver that closed the connection gets the next batch on a new one
// instead of the batch being written into the closed one and lost.
func TestSyslogSinkReconnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	msgs, conns := make(chan string, 10), make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
			go readFrames(c, msgs)
		}
	}()
	s, err := NewSink(SinkConfig{Type: TypeSyslog, Address: ln.Addr().String()})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	rec := func(typ string, sev int) Record {
		return Record{UID: typ, Type: typ, Severity: sev, Time: testTime, JSON: []byte(`{"n":"` + typ + `"}`)}
	}
	require.NoError(t, s.Send(ctx, []Record{rec("decision", severityMedium), rec("apply", severityInformational)}))
	first := <-conns
	got := []string{<-msgs, <-msgs}
	assert.Regexp(t, `^<108>1 2026-12-07T16:00:00.000000Z \S+ sallyport \d+ decision - \{"n":"decision"\}$`, got[0],
		"facility 13 (log audit), severity warning for a failure")
	assert.Regexp(t, `^<110>1 .* apply - \{"n":"apply"\}$`, got[1], "severity informational")

	first.Close() // the receiver goes away and comes back
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, s.Send(ctx, []Record{rec("certify", severityInformational)}))
	select {
	case <-conns:
	case <-time.After(5 * time.Second):
		t.Fatal("the sink wrote into the closed connection instead of reconnecting")
	}
	assert.Contains(t, <-msgs, "certify")
}

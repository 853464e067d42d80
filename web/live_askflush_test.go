package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLiveFromStoreAsksFlush: a view of a session another replica runs
// asks, through the registry, for it to be flushed faster for the next
// 30 s (the replica that runs it reads that with its kill requests); a
// registry that refuses the ask costs the view nothing but speed.
func TestLiveFromStoreAsksFlush(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail bool
	}{{"asked", false}, {"the ask fails", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConsole(t)
			s := onReplicaB(t, c)
			c.ws.AskFlush = func(ctx context.Context, id string, until time.Time) error {
				if tc.fail {
					return errors.New("registry unreachable")
				}
				return c.store.RequestWatch(ctx, id, until)
			}
			aud, _, _ := c.signIn(auditor)
			code, _, page := getBody(t, aud, c.srv.URL+"/sessions/s-on-b")
			require.Equal(t, http.StatusOK, code)
			assert.Contains(t, page, "trails the session by a flush of the recording (every 250 ms while it is watched)", "the page says it asks")
			opened := time.Now()
			resp, err := aud.Get(c.srv.URL + "/sessions/s-on-b/live")
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			events := readSSE(resp)
			require.NoError(t, s.Output(0, []byte("tail -f /var/log/syslog\r\n")))
			var out struct{ Text string }
			require.NoError(t, json.Unmarshal([]byte(next(t, events, "output").data), &out))
			assert.Equal(t, "tail -f /var/log/syslog\r\n", out.Text, "the view works either way")

			var until time.Time
			asked := func() bool { // the ask runs beside the stream
				_, watched, err := c.store.SessionRequests(context.Background(), []string{"s-on-b"})
				require.NoError(t, err)
				until = watched["s-on-b"]
				return !until.IsZero()
			}
			if tc.fail {
				assert.False(t, asked(), "nothing was asked")
				return
			}
			require.Eventually(t, asked, 2*time.Second, 20*time.Millisecond, "the view asks for a faster flush")
			assert.WithinRange(t, until, opened.Add(29*time.Second), time.Now().Add(30*time.Second), "the replica is asked to flush faster for 30 s")
		})
	}
}

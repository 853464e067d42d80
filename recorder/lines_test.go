package recorder

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLineReaderLongLine: a line past maxWholeLine is copied through whole
// and comes back as JSON whose long strings keep their start, escapes and
// characters intact, with their true length; short lines around it come
// whole.
func TestLineReaderLongLine(t *testing.T) {
	// Escapes and multi-byte characters all along, so the cut lands among them.
	unit := "a\"b\\c\nd\u00e9\U0001F600\u2028<"
	sql := strings.Repeat(unit, 3*maxWholeLine/len(unit))
	long, err := json.Marshal(Event{Type: EventQuery, SQL: sql, Params: []any{"short", strings.Repeat("x", 2*maxShownString)}})
	require.NoError(t, err)
	in := "{\"type\":\"note\",\"text\":\"before\"}\n" + string(long) + "\n{\"type\":\"note\",\"text\":\"after\"}\n"

	lr := newLineReader(bufio.NewReaderSize(strings.NewReader(in), 4096))
	var raw bytes.Buffer
	var got []Event
	for {
		line, err := lr.next(&raw)
		if err == io.ErrUnexpectedEOF {
			break
		}
		require.NoError(t, err)
		var ev Event
		require.NoError(t, json.Unmarshal(line, &ev), "a shrunk line is JSON")
		got = append(got, ev)
		assert.LessOrEqual(t, len(line), maxWholeLine)
	}
	require.Len(t, got, 3)
	assert.Equal(t, string(long)+"\n", raw.String(), "the long line is copied through as it is, and only it")
	assert.Equal(t, "before", got[0].Text)
	assert.Equal(t, "after", got[2].Text)

	shown, note, ok := strings.Cut(got[1].SQL, "… (")
	require.True(t, ok, "the cut string says it was cut: %.100q", got[1].SQL)
	assert.True(t, strings.HasPrefix(sql, shown), "the shown part is the statement's start")
	assert.True(t, utf8.ValidString(shown))
	assert.Greater(t, len(shown), maxShownString/2, "about 64 KiB of JSON source, escapes included")
	assert.Equal(t, strconv.Itoa(len(sql))+" bytes, first "+sizeText(int64(len(shown)))+" shown)", note)
	assert.Equal(t, "short", got[1].Params[0])
	assert.Contains(t, got[1].Params[1], "… ("+strconv.Itoa(2*maxShownString)+" bytes, first 64 KiB shown)")
}

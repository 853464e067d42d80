package auditexport

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSinkNameHidesTokens: an http sink's default name, which logs,
// errors, metrics and the outbox show, holds the host but never the path
// or query a webhook's token sits in; sinks on one host still differ, and
// a name is the same each time (it keys the delivery state).
func TestSinkNameHidesTokens(t *testing.T) {
	slack := SinkConfig{Type: TypeHTTP, URL: "https://hooks.example.com/services/T000/B000/s3cr3tT0ken"}
	query := SinkConfig{Type: TypeHTTP, URL: "https://hooks.example.com/ingest?token=s3cr3tT0ken"}
	for _, c := range []SinkConfig{slack, query} {
		name := c.SinkName()
		assert.Contains(t, name, "http:hooks.example.com#")
		assert.NotContains(t, name, "s3cr3tT0ken")
		assert.Equal(t, name, c.SinkName(), "stable")
	}
	assert.NotEqual(t, slack.SinkName(), query.SinkName(), "two sinks on one host")
	assert.Equal(t, "http:siem.example.com", SinkConfig{Type: TypeHTTP, URL: "https://siem.example.com"}.SinkName())
	assert.Equal(t, "mine", SinkConfig{Type: TypeHTTP, Name: "mine", URL: slack.URL}.SinkName())
}

package sqlredact

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestStatementAndBound(t *testing.T) {
	sql, rm := Statement(PostgreSQL, "SELECT 1")
	assert.Equal(t, "SELECT 1", sql)
	assert.Nil(t, rm, "nothing removed: no bookkeeping")
	assert.Equal(t, "boom", rm.Scrub("boom"))

	sql, rm = Statement(PostgreSQL, "ALTER ROLE a PASSWORD $1")
	assert.Equal(t, "ALTER ROLE a PASSWORD $1", sql)
	values := []any{"hunter22", "kept"}
	exec := Bound(PostgreSQL, values, rm)
	assert.Equal(t, []any{Marker, "kept"}, values, "the value in the password position is replaced in place")
	assert.Equal(t, `role "a": [redacted] is bad`, exec.Scrub(`role "a": hunter22 is bad`))

	sql, rm = Statement(MySQL, "CREATE USER u IDENTIFIED BY 's3cret-pw'")
	assert.Equal(t, "CREATE USER u IDENTIFIED BY '[redacted]'", sql)
	assert.NotContains(t, rm.Scrub("near 's3cret-pw' at line 1"), "s3cret-pw")
}

package proxy

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPlausibleAndAuditName(t *testing.T) {
	for _, tc := range []struct {
		name      string
		plausible bool
		audit     string
	}{
		{"svc-backup", true, "svc-backup"},
		{"réporting", true, "réporting"},
		{"svc\nx", false, `"svc\nx"`},
		{"\x1b[31mred", false, `"\x1b[31mred"`},
		{"bad\xff", false, `"bad\xff"`},
		{strings.Repeat("a", MaxLoginName+1), false, `"` + strings.Repeat("a", MaxLoginName) + `"`},
	} {
		assert.Equal(t, tc.plausible, PlausibleName(tc.name), "PlausibleName(%q)", tc.name)
		assert.Equal(t, tc.audit, AuditName(tc.name), "AuditName(%q)", tc.name)
	}
}

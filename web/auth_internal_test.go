package web

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSafeReturn: after sign-in the browser goes back to a page of this
// site, never elsewhere.
func TestSafeReturn(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/sessions?identity=svc-a&page=2", "/sessions?identity=svc-a&page=2"},
		{"/", "/"},
		{"", "/"},
		{"https://evil.example/", "/"},
		{"//evil.example/", "/"},
		{"/\\evil.example/", "/"},
		{"/\t/evil.example/", "/"},
		{"/\n/evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"sessions", "/"},
	} {
		assert.Equal(t, tc.want, safeReturn(tc.in), "safeReturn(%q)", tc.in)
	}
}

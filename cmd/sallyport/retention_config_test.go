package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRetentionConfig: recordings.retention takes days like the other
// durations, and a bad object_lock block is an error that names the key.
func TestRetentionConfig(t *testing.T) {
	const s3 = `store: s3, s3: {endpoint: "s3:9000", bucket: b, access_key_env: A, secret_key_env: S`
	for _, tc := range []struct {
		name, block string
		want        string
	}{
		{"days", `recordings: {retention: 400d}`, ""},
		{"go duration", `recordings: {retention: 720h}`, ""},
		{"lock within retention", `recordings: {retention: 400d, ` + s3 + `, object_lock: {mode: COMPLIANCE, days: 400}}}`, ""},
		{"lock without retention", `recordings: {` + s3 + `, object_lock: {mode: GOVERNANCE, days: 30}}}`, ""},
		{"negative", `recordings: {retention: -1h}`, "negative"},
		{"lock longer than retention", `recordings: {retention: 30d, ` + s3 + `, object_lock: {mode: COMPLIANCE, days: 31}}}`,
			"object_lock.days (31) is longer than recordings.retention (30d)"},
		{"lock on the file store", `recordings: {s3: {object_lock: {mode: COMPLIANCE, days: 1}}}`, "needs store s3"},
		{"lowercase mode", `recordings: {` + s3 + `, object_lock: {mode: compliance, days: 1}}}`, `"compliance" is not GOVERNANCE or COMPLIANCE`},
		{"no days", `recordings: {` + s3 + `, object_lock: {mode: COMPLIANCE}}}`, "object_lock.days: 0"},
		{"unknown key", `recordings: {` + s3 + `, object_lock: {mode: COMPLIANCE, days: 1, years: 1}}}`, "unknown key years"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig("/etc/sallyport.yaml", []byte(tc.block+"\n"))
			if tc.want != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.want)
				return
			}
			require.NoError(t, err)
			assert.Positive(t, cfg.Recordings.Retention.D()+time.Duration(cfg.Recordings.S3.ObjectLock.Days))
		})
	}
}

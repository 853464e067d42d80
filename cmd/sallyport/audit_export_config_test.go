package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAuditExportConfig: a good audit block loads with its defaults, and
// each mistake is named with the sink it is in.
func TestAuditExportConfig(t *testing.T) {
	dir := t.TempDir()
	good := `audit:
  export:
    - {type: file, path: audit/audit.jsonl, max_size: 1MiB, keep: 3, format: native}
    - {type: syslog, address: "siem:6514", tls: true}
    - {type: http, url: "https://hec:8088/services/collector/raw?token=x", headers_env: {Authorization: HEC}}
`
	cfg, err := ParseConfig(filepath.Join(dir, "sallyport.yaml"), []byte("data_dir: "+dir+"\n"+good))
	require.NoError(t, err)
	require.Len(t, cfg.Audit.Export, 3)
	sc := cfg.Audit.Export[0].sinkConfig(cfg)
	assert.Equal(t, filepath.Join(dir, "audit", "audit.jsonl"), sc.Path, "a relative path is under data_dir")
	assert.EqualValues(t, 1<<20, sc.MaxSize)
	assert.Regexp(t, `^http:hec:8088#[0-9a-f]{8}$`, cfg.Audit.Export[2].sinkConfig(cfg).SinkName(),
		"the default name leaves the path and query (they may hold a token) out")

	t.Setenv("HEC", "")
	_, err = cfg.Audit.Export[2].exportConfig(cfg)
	assert.ErrorContains(t, err, "environment variable HEC (header Authorization) is empty", "serve refuses an unset header variable")

	for bad, want := range map[string]string{
		`{type: kafka}`:                              `sink type "kafka"`,
		`{type: file}`:                               "file sink: path is required",
		`{type: syslog, address: siem}`:              `address "siem": want host:port`,
		`{type: http, url: "ftp://x/"}`:              "want an http or https URL",
		`{type: file, path: a, format: cef}`:         `format "cef": want ocsf or native`,
		`{type: http, url: "https://x/", tls: true}`: "tls: only for syslog",
		`{type: http, url: "https://x/", headers_env: {Authorization: ""}}`: "headers_env.Authorization: name the environment variable",
		`{type: syslog, address: "siem:514", ca_file: ca.pem}`:              "ca_file: the sink does not use TLS",
		`{type: http, url: "http://x/", ca_file: ca.pem}`:                   "ca_file: the sink does not use TLS",
	} {
		_, err := ParseConfig(filepath.Join(dir, "sallyport.yaml"), []byte("data_dir: "+dir+"\naudit:\n  export:\n    - "+bad+"\n"))
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "audit.export[0]", bad)
		assert.Contains(t, err.Error(), want, bad)
	}
	_, err = ParseConfig(filepath.Join(dir, "sallyport.yaml"), []byte("data_dir: "+dir+"\naudit:\n  export:\n    - {type: file, path: a}\n    - {type: file, path: a}\n"))
	assert.ErrorContains(t, err, "audit.export[1]: same sink as audit.export[0]")
}

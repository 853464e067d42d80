package recorder

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestConfigValidate(t *testing.T) {
	s3 := S3Config{Endpoint: "minio:9000", Bucket: "b"}
	cases := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zero store means file", Config{DataDir: "/d"}, ""},
		{"s3", Config{DataDir: "/d", Store: StoreS3, S3: s3}, ""},
		{"unknown store", Config{DataDir: "/d", Store: "ftp"}, `recordings.store: "ftp" is not a store`},
		{"s3 without endpoint", Config{DataDir: "/d", Store: StoreS3, S3: S3Config{Bucket: "b"}}, "recordings.s3.endpoint: missing"},
		{"s3 without bucket", Config{DataDir: "/d", Store: StoreS3, S3: S3Config{Endpoint: "x"}}, "recordings.s3.bucket: missing"},
		{"half credentials", Config{DataDir: "/d", Store: StoreS3, S3: S3Config{Endpoint: "x", Bucket: "b", AccessKey: "a"}}, "given together"},
		{"negative flush", Config{DataDir: "/d", FlushInterval: -time.Second}, "flush_interval"},
		{"no compression", Config{DataDir: "/d", Compression: CompressionNone}, ""},
		{"zstd compression", Config{DataDir: "/d", Compression: CompressionZstd}, ""},
		{"gzip compression", Config{DataDir: "/d", Compression: CompressionGzip}, ""},
		{"unknown compression", Config{DataDir: "/d", Compression: "lz4"}, `recordings.compression: "lz4" is not zstd, gzip or none`},
		{"no data dir", Config{}, "data_dir is not set"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

func TestConfigFromYAML(t *testing.T) {
	src := `
store: s3
s3: {endpoint: "minio:9000", bucket: sallyport, region: eu-west-1, secure: false,
     access_key_env: S3_ACCESS_KEY, secret_key_env: S3_SECRET_KEY, prefix: recordings/}
flush_interval: 250ms
fail_closed: true
record_input: false
signing_key_file: /etc/sallyport/recording_ed25519
`
	var cfg Config
	dec := yaml.NewDecoder(stringsReader(src))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg))
	assert.Equal(t, 250*time.Millisecond, cfg.FlushInterval)
	assert.Equal(t, "S3_ACCESS_KEY", cfg.S3.AccessKeyEnv)
	assert.Equal(t, "recordings/", cfg.S3.Prefix)
	assert.True(t, cfg.FailClosed)
	assert.Equal(t, "/etc/sallyport/recording_ed25519", cfg.KeyFile())
	cfg.DataDir = "/var/lib/sallyport"
	assert.Equal(t, "/var/lib/sallyport/spool", cfg.SpoolDir())
	assert.Equal(t, time.Second, Config{}.flushInterval(), "zero flush_interval means 1s")
	assert.Equal(t, "/var/lib/sallyport/keys/recording_ed25519", Config{DataDir: "/var/lib/sallyport"}.KeyFile())
}

func TestSigningKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys", "recording_ed25519")
	key, err := LoadOrCreateSigningKey(path)
	require.NoError(t, err)
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "got mode %04o, want 0600", info.Mode().Perm())

	again, err := LoadOrCreateSigningKey(path)
	require.NoError(t, err)
	assert.True(t, key.Equal(again), "the second load returns the key created by the first")

	pub := key.Public().(ed25519.PublicKey)
	line := PublicKeyLine(pub)
	assert.Regexp(t, `^ssh-ed25519 AAAA\S+ sallyport-recording$`, line)
	parsed, err := ParsePublicKey([]byte(line))
	require.NoError(t, err)
	assert.True(t, pub.Equal(parsed))
	assert.Regexp(t, `^SHA256:`, Fingerprint(pub))

	require.NoError(t, os.Chmod(path, 0o644))
	_, err = LoadOrCreateSigningKey(path)
	require.Error(t, err, "a world-readable key must be refused")
	assert.Contains(t, err.Error(), "chmod 600")

	require.NoError(t, os.WriteFile(path, []byte("not a key"), 0o600))
	_, err = LoadOrCreateSigningKey(path)
	assert.Error(t, err)
}

func TestSigningKeyFromSSHKeygen(t *testing.T) {
	bin := lookPathOrSkip(t, "ssh-keygen")
	path := filepath.Join(t.TempDir(), "k")
	out, err := runCmd(bin, "-q", "-t", "ed25519", "-N", "", "-f", path)
	require.NoError(t, err, "ssh-keygen: %s", out)
	key, err := LoadOrCreateSigningKey(path)
	require.NoError(t, err)
	pubLine, err := os.ReadFile(path + ".pub")
	require.NoError(t, err)
	pub, err := ParsePublicKey(pubLine)
	require.NoError(t, err)
	assert.True(t, pub.Equal(key.Public()), "key loaded from an ssh-keygen file matches its .pub")
}

func TestSessionIDs(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"01JDX5Q3", true}, {"sess_1.a-b", true}, {"", false}, {"../etc", false}, {".hidden", false},
		{"a/b", false}, {"-x", false}, {string(make([]byte, 200)), false},
	} {
		t.Run(tc.id, func(t *testing.T) {
			err := validSessionID(tc.id)
			assert.Equal(t, tc.ok, err == nil, "validSessionID(%q) = %v", tc.id, err)
		})
	}
	assert.Equal(t, "2026/03/10/abc/", SessionDir("abc", time.Date(2026, 3, 9, 23, 30, 0, 0, time.FixedZone("x", -3600))), "the UTC date places the objects")
}

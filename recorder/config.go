package recorder

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// Store kinds accepted in Config.Store.
const (
	StoreFile = "file"
	StoreS3   = "s3"
)

// Chunk compressions accepted in Config.Compression.
const (
	CompressionZstd = "zstd"
	CompressionGzip = "gzip"
	CompressionNone = "none"
)

// defaultFlushInterval bounds the data at risk on a crash when the config
// leaves flush_interval unset (DESIGN §4).
const defaultFlushInterval = time.Second

// Config mirrors the `recordings:` block of the sallyport config file.
// Library code never reads the environment: cmd fills AccessKey, SecretKey
// and DataDir.
type Config struct {
	// Store is where finished objects go: "file" (a directory under DataDir)
	// or "s3". Zero means "file".
	Store string `yaml:"store"`
	// S3 configures the "s3" store; ignored for "file".
	S3 S3Config `yaml:"s3"`
	// FlushInterval is the longest time recorded data stays in memory before
	// it is written and fsync'd to the spool: the data at risk on a crash.
	// Zero means 1s.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// FailClosed ends a session that cannot be recorded: when true, Session
	// writes return ErrRecordingFailed once the spool fails or cannot keep
	// up. The YAML default is true; cmd sets it when the key is absent. Zero
	// (false) lets the session continue and marks the recording degraded.
	FailClosed bool `yaml:"fail_closed"`
	// RecordInput keeps keystrokes (asciicast "i" events). Zero (false) drops
	// them, because typed secrets would otherwise be kept.
	RecordInput bool `yaml:"record_input"`
	// Compression is how chunk payloads are stored: "zstd" (chunk/2, about
	// a fifth of the size for terminal output), "gzip" (chunk/2, what
	// recordings before zstd have; a little larger) or "none" (chunk/1:
	// more bytes to disk and store, less CPU). Readers take all three.
	// Zero means "zstd".
	Compression string `yaml:"compression"`
	// ExecCaptureLimit is how many bytes of each stream (stdin, stdout,
	// stderr) of an exec channel are kept; past it the stream is only
	// counted and hashed. Zero means DefaultExecCaptureLimit (16 MiB);
	// negative keeps none (the YAML's 0). cmd parses the YAML size.
	ExecCaptureLimit int64 `yaml:"-"`
	// ExecStdinOff keeps no exec stdin, only its count and hash (a pipeline
	// may pipe secrets in). Zero (false) keeps stdin like the other streams.
	ExecStdinOff bool `yaml:"-"`
	// ExecStdinOffTargets are targets whose exec stdin is never kept,
	// whatever ExecStdinOff says. Set by cmd from the targets' config.
	ExecStdinOffTargets []string `yaml:"-"`
	// MaxStatementBytes is how many bytes of a database statement's text,
	// and of each string or bytes parameter, a recording keeps; past it
	// only a prefix, the length and the SHA-256 of the whole are kept
	// (CutSQL, CutParam). Zero means DefaultMaxStatementBytes (64 KiB);
	// negative keeps statements whole (the YAML's 0). cmd parses the YAML
	// size.
	MaxStatementBytes int `yaml:"-"`
	// SigningKeyFile is the OpenSSH ed25519 private key that signs manifests.
	// Zero means DataDir/keys/recording_ed25519, created on first use.
	SigningKeyFile string `yaml:"signing_key_file"`
	// Retention is how long a stored recording is kept: the file store's
	// retention marker holds it that long, and serve's daily retention job
	// deletes it afterwards unless it is on legal hold. Zero keeps
	// recordings for ever. cmd parses the YAML duration ("400d").
	Retention time.Duration `yaml:"-"`
	// DataDir is the top-level data_dir; the spool lives in DataDir/spool and
	// the file store in DataDir/recordings. Required; set by cmd.
	DataDir string `yaml:"-"`
}

// S3Config configures the S3 store (minio-go, path-style addressing).
type S3Config struct {
	// Endpoint is host:port of the S3 service, without scheme. Required for s3.
	Endpoint string `yaml:"endpoint"`
	// Bucket holds the recordings; it must exist. Required for s3.
	Bucket string `yaml:"bucket"`
	// Region is the bucket's region. Zero means "us-east-1".
	Region string `yaml:"region"`
	// Secure selects https. Zero (false) means plain http, for MinIO inside
	// a cluster network.
	Secure bool `yaml:"secure"`
	// Prefix is prepended to every object key, e.g. "recordings/". Zero
	// means the bucket root.
	Prefix string `yaml:"prefix"`
	// AccessKeyEnv and SecretKeyEnv name the environment variables cmd reads
	// the credentials from.
	AccessKeyEnv string `yaml:"access_key_env"`
	SecretKeyEnv string `yaml:"secret_key_env"`
	// AccessKey and SecretKey are the credentials themselves, filled by cmd
	// from the variables above. Zero means anonymous access.
	AccessKey string `yaml:"-"`
	SecretKey string `yaml:"-"`
	// ObjectLock is the S3 Object Lock retention every upload carries
	// (objectlock.go). Zero means none.
	ObjectLock ObjectLock `yaml:"object_lock"`
}

// Validate reports the first thing wrong with the config, naming the YAML key.
func (c Config) Validate() error {
	switch c.Store {
	case "", StoreFile:
	case StoreS3:
		if err := c.S3.Validate(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("recordings.store: %q is not a store (want file or s3)", c.Store)
	}
	switch c.Compression {
	case "", CompressionZstd, CompressionGzip, CompressionNone:
	default:
		return fmt.Errorf("recordings.compression: %q is not zstd, gzip or none", c.Compression)
	}
	if c.FlushInterval < 0 {
		return fmt.Errorf("recordings.flush_interval: %s is negative", c.FlushInterval)
	}
	if c.DataDir == "" {
		return errors.New("recordings: data_dir is not set")
	}
	if c.Retention < 0 {
		return fmt.Errorf("recordings.retention: %s is negative", c.Retention)
	}
	if c.Store != StoreS3 && c.S3.ObjectLock.Enabled() {
		return errors.New("recordings.s3.object_lock: needs store s3 (the file store keeps a retention marker instead)")
	}
	return nil
}

// Validate reports the first thing wrong with the S3 settings.
func (c S3Config) Validate() error {
	if c.Endpoint == "" {
		return errors.New("recordings.s3.endpoint: missing")
	}
	if c.Bucket == "" {
		return errors.New("recordings.s3.bucket: missing")
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return errors.New("recordings.s3: access key and secret key must be given together")
	}
	return c.ObjectLock.Validate()
}

// encoding is the chunk/2 payload encoding new chunks get, or "" for
// plain chunk/1 chunks.
func (c Config) encoding() string {
	switch c.Compression {
	case CompressionNone:
		return ""
	case CompressionGzip:
		return encodingGzip
	}
	return encodingZstd
}

func (c Config) flushInterval() time.Duration {
	if c.FlushInterval == 0 {
		return defaultFlushInterval
	}
	return c.FlushInterval
}

// SpoolDir is where recordings wait for upload.
func (c Config) SpoolDir() string { return filepath.Join(c.DataDir, "spool") }

// FileStoreDir is the root of the "file" store.
func (c Config) FileStoreDir() string { return filepath.Join(c.DataDir, "recordings") }

// KeyFile is the signing key path: SigningKeyFile, or its default under DataDir.
func (c Config) KeyFile() string {
	if c.SigningKeyFile != "" {
		return c.SigningKeyFile
	}
	return filepath.Join(c.DataDir, "keys", "recording_ed25519")
}

package sandbox

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// minioClient is what the recorder's S3 store uses: minio-go, plain HTTP,
// path-style addressing.
func minioClient(t *testing.T, s *S3) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure:       false,
		Region:       s.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	require.NoError(t, err)
	return c
}

func put(ctx context.Context, c *minio.Client, bucket, key, body string) error {
	_, err := c.PutObject(ctx, bucket, key, bytes.NewReader([]byte(body)), int64(len(body)), minio.PutObjectOptions{})
	return err
}

func get(ctx context.Context, c *minio.Client, bucket, key string) (string, error) {
	obj, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return "", err
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	return string(b), err
}

func TestS3(t *testing.T) {
	ctx := ctxT(t)
	s, err := timed(t, "s3", func() (*S3, error) { return StartS3(ctx, S3Options{Bucket: "recordings"}) })
	Need(t, err)
	t.Cleanup(func() { _ = s.Stop() })
	c := minioClient(t, s)

	t.Run("bucket exists", func(t *testing.T) {
		ok, err := c.BucketExists(ctx, "recordings")
		require.NoError(t, err)
		assert.True(t, ok, "bucket recordings: got missing, want it created at start")
	})

	t.Run("put then get returns the object", func(t *testing.T) {
		require.NoError(t, put(ctx, c, s.Bucket, "sessions/a/chunk-0001", "hello"))
		got, err := get(ctx, c, s.Bucket, "sessions/a/chunk-0001")
		require.NoError(t, err)
		assert.Equal(t, "hello", got, "object body: got %q, want %q", got, "hello")
	})

	t.Run("stopped endpoint refuses, restart keeps port and objects", func(t *testing.T) {
		endpoint := s.Endpoint
		require.NoError(t, s.Stop())
		_, dialErr := net.DialTimeout("tcp", endpoint, time.Second)
		assert.Error(t, dialErr, "dial %s while stopped: got a listener, want connection refused", endpoint)
		down, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		assert.Error(t, put(down, c, s.Bucket, "sessions/a/chunk-0002", "lost?"), "put while stopped: got success, want an error")

		require.NoError(t, s.Restart(ctx))
		assert.Equal(t, endpoint, s.Endpoint, "endpoint after Restart: got %s, want %s", s.Endpoint, endpoint)
		got, err := get(ctx, c, s.Bucket, "sessions/a/chunk-0001")
		require.NoError(t, err)
		assert.Equal(t, "hello", got, "object after Restart: got %q, want %q", got, "hello")
		require.NoError(t, put(ctx, c, s.Bucket, "sessions/a/chunk-0002", "again"))
	})

	t.Run("restart while running keeps serving", func(t *testing.T) {
		require.NoError(t, s.Restart(ctx))
		got, err := get(ctx, c, s.Bucket, "sessions/a/chunk-0002")
		require.NoError(t, err)
		assert.Equal(t, "again", got, "object after second Restart: got %q, want %q", got, "again")
	})
}

func TestS3OptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    S3Options
		wantErr bool
	}{
		{name: "zero value", opts: S3Options{}},
		{name: "valid bucket", opts: S3Options{Bucket: "my-recordings"}},
		{name: "upper case bucket", opts: S3Options{Bucket: "Recordings"}, wantErr: true},
		{name: "too short bucket", opts: S3Options{Bucket: "ab"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			assert.Equal(t, tt.wantErr, err != nil, "Validate: got %v, want error %v", err, tt.wantErr)
		})
	}
}

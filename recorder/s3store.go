package recorder

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// defaultS3Region is used when the config leaves region empty.
const defaultS3Region = "us-east-1"

// s3MaxRetries turns off minio-go's own retry loop: the uploader retries
// with its backoff, and reports the outage in logs and metrics.
const s3MaxRetries = 1

// S3Store keeps objects in an S3 bucket below a key prefix.
type S3Store struct {
	client *minio.Client
	bucket string
	prefix string
	lock   ObjectLock // the retention every upload carries (objectlock.go)
	holds  LegalHolds // which sessions are on legal hold; nil: none (UseLegalHolds)
}

// NewS3Store connects (lazily: no request is made) to the bucket cfg names,
// with path-style addressing.
func NewS3Store(cfg S3Config) (*S3Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	region := cfg.Region
	if region == "" {
		region = defaultS3Region
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	} else {
		creds = credentials.New(&credentials.Static{})
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds: creds, Secure: cfg.Secure, Region: region, BucketLookup: minio.BucketLookupPath,
		MaxRetries: s3MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", cfg.Endpoint, err)
	}
	return &S3Store{client: client, bucket: cfg.Bucket, prefix: cfg.Prefix, lock: cfg.ObjectLock}, nil
}

// Put uploads with the size known up front, in one request for spool-sized
// objects. The payload is sent unsigned-but-MD5-checked: minio-go's
// streaming signature over plain http adds chunk framing that some S3
// implementations store verbatim, and the recording carries its own hashes.
func (s *S3Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	opts, err := s.putOptions(ctx, key)
	if err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, s.bucket, s.prefix+key, r, size, opts)
	if err != nil {
		return fmt.Errorf("put s3://%s/%s%s: %w", s.bucket, s.prefix, key, err)
	}
	return s.holdLate(ctx, key, opts)
}

// putOptions are the options of an upload of key: its Object Lock
// retention and, for a recording on legal hold, the legal hold
// (objectlock.go).
func (s *S3Store) putOptions(ctx context.Context, key string) (minio.PutObjectOptions, error) {
	opts := minio.PutObjectOptions{
		ContentType: "application/octet-stream", SendContentMd5: true, DisableContentSha256: true,
	}
	s.lock.apply(&opts, time.Now())
	held, err := s.heldAt(ctx, key)
	if held {
		opts.LegalHold = minio.LegalHoldEnabled
	}
	return opts, err
}

// Create uploads the object with If-None-Match: *, which S3 (since
// August 2024), MinIO and the tests' gofakes3 enforce atomically: of two
// creators the second is refused with 412 PreconditionFailed, and then
// compares the object there with its own (Creator). A store that ignores
// the header replaces the object, as Put does: such a store gets no more
// than the callers' check before they write.
func (s *S3Store) Create(ctx context.Context, key string, r io.Reader, size int64) error {
	data, err := io.ReadAll(io.LimitReader(r, size))
	if err != nil {
		return fmt.Errorf("create s3://%s/%s%s: %w", s.bucket, s.prefix, key, err)
	}
	opts, err := s.putOptions(ctx, key)
	if err != nil {
		return err
	}
	opts.SetMatchETagExcept("*")
	_, err = s.client.PutObject(ctx, s.bucket, s.prefix+key, bytes.NewReader(data), int64(len(data)), opts)
	switch minio.ToErrorResponse(err).Code {
	case "":
	case "PreconditionFailed", "ConditionalRequestConflict": // 409: a concurrent create of the key
		if err := existingObject(ctx, s, key, data); err != nil {
			return err
		}
	default:
		return fmt.Errorf("create s3://%s/%s%s: %w", s.bucket, s.prefix, key, err)
	}
	return s.holdLate(ctx, key, opts)
}

// Get opens the object; a missing key yields ErrNotFound (wrapped).
func (s *S3Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	full := s.prefix + key
	obj, err := s.client.GetObject(ctx, s.bucket, full, minio.GetObjectOptions{})
	if err == nil {
		_, err = obj.Stat() // GetObject is lazy; Stat makes the request
	}
	if err != nil {
		if obj != nil {
			obj.Close()
		}
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil, fmt.Errorf("get s3://%s/%s: %w", s.bucket, full, ErrNotFound)
		}
		return nil, fmt.Errorf("get s3://%s/%s: %w", s.bucket, full, err)
	}
	return obj, nil
}

// List returns the keys below prefix, relative to the store prefix.
func (s *S3Store) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	opts := minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}
	for info := range s.client.ListObjects(ctx, s.bucket, opts) {
		if info.Err != nil {
			return nil, fmt.Errorf("list s3://%s/%s%s: %w", s.bucket, s.prefix, prefix, info.Err)
		}
		keys = append(keys, info.Key[len(s.prefix):])
	}
	sort.Strings(keys)
	return keys, nil
}

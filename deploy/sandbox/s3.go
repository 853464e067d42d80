package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

const (
	// s3RebindTimeout bounds how long Restart retries binding the old port,
	// which the kernel may hold for a moment after the listener closed.
	s3RebindTimeout = 5 * time.Second
	// s3ReadHeaderTimeout keeps a stuck client from holding a server goroutine.
	s3ReadHeaderTimeout = 10 * time.Second
	// s3DefaultBucket is the bucket created when S3Options.Bucket is zero.
	s3DefaultBucket = "sallyport-recordings"
	// s3Region is the region clients should sign for; gofakes3 accepts any.
	s3Region = "us-east-1"
)

// S3Options configures StartS3. The zero value is ready to use.
type S3Options struct {
	// Bucket is created at start; zero means "sallyport-recordings".
	Bucket string
}

// Validate reports a bucket name S3 would refuse.
func (o S3Options) Validate() error {
	if o.Bucket == "" {
		return nil
	}
	if err := gofakes3.ValidateBucketName(o.Bucket); err != nil {
		return fmt.Errorf("s3 bucket name %q: %w", o.Bucket, err)
	}
	return nil
}

// S3 is an in-process S3 endpoint (gofakes3, in memory) serving plain HTTP
// on loopback with path-style addressing. Objects live as long as the S3
// value, across Stop and Restart.
type S3 struct {
	// Endpoint is host:port, as minio-go's New wants it (Secure: false).
	Endpoint string
	// Bucket exists from the start.
	Bucket string
	// Region is what clients should sign for.
	Region string
	// AccessKey and SecretKey are random credentials for clients that need
	// some; gofakes3 does not check signatures.
	AccessKey, SecretKey string

	handler http.Handler
	mu      sync.Mutex
	srv     *http.Server // nil while stopped
}

// StartS3 creates the bucket and serves S3 on a free loopback port.
func StartS3(ctx context.Context, opts S3Options) (*S3, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("start s3: %w", err)
	}
	bucket := opts.Bucket
	if bucket == "" {
		bucket = s3DefaultBucket
	}
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		return nil, fmt.Errorf("start s3: create bucket %s: %w", bucket, err)
	}
	s := &S3{
		Bucket: bucket, Region: s3Region,
		AccessKey: "sandbox-" + randomSecret()[:12], SecretKey: randomSecret(),
		handler: gofakes3.New(backend).Server(),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start s3: listen on loopback: %w", err)
	}
	s.Endpoint = ln.Addr().String()
	s.serve(ln)
	return s, nil
}

// serve runs an HTTP server on ln until Stop.
func (s *S3) serve(ln net.Listener) {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: s3ReadHeaderTimeout}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }() // returns ErrServerClosed on Stop
}

// URL is the endpoint as an http:// URL.
func (s *S3) URL() string { return "http://" + s.Endpoint }

// Port is the TCP port of Endpoint.
func (s *S3) Port() int {
	_, p, _ := net.SplitHostPort(s.Endpoint)
	n, _ := strconv.Atoi(p)
	return n
}

// Stop closes the listener and every open connection at once, as an
// outage would. Objects are kept for Restart. Stopping twice is fine.
func (s *S3) Stop() error {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	if err := srv.Close(); err != nil {
		return fmt.Errorf("stop s3 endpoint: %w", err)
	}
	return nil
}

// Restart stops the endpoint if it runs and serves again on the same port
// with the same objects.
func (s *S3) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s3RebindTimeout)
	defer cancel()
	var lc net.ListenConfig
	for {
		ln, err := lc.Listen(ctx, "tcp", s.Endpoint)
		if err == nil {
			s.serve(ln)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("restart s3 endpoint on %s: %w", s.Endpoint, errors.Join(err, ctx.Err()))
		case <-time.After(probeInterval):
		}
	}
}

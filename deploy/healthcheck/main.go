// Command sallyport-healthcheck is the container image's HEALTHCHECK: the
// runtime image has no shell, curl or wget, so this static binary asks
// sallyport's /healthz and exits 0 when it answers 200, 1 otherwise.
//
//	sallyport-healthcheck [URL]   (default http://127.0.0.1:8080/healthz)
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"time"
)

// defaultURL is web.listen's default port on the container's loopback.
const defaultURL = "http://127.0.0.1:8080/healthz"

// probeTimeout stays under the image's HEALTHCHECK --timeout (3s), so a
// hung bastion is reported by this probe, not killed by the engine.
const probeTimeout = 2500 * time.Millisecond

func main() {
	url := defaultURL
	if len(os.Args) > 1 {
		url = os.Args[1]
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	if err := probe(ctx, url); err != nil {
		fmt.Fprintf(os.Stderr, "sallyport-healthcheck: %v\n", err)
		cancel()
		os.Exit(1)
	}
}

// probe GETs url and succeeds on 200. An https URL is not verified: the
// probe asks the bastion's own loopback listener whether it is up, and its
// certificate names the public host, not 127.0.0.1.
func probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // loopback self-check, see above
	}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: status %s", url, resp.Status)
	}
	return nil
}

package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestProbe(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"status":"ok"}`))
	}))
	t.Cleanup(up.Close)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"status":"unavailable"}`, http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	tlsUp := httptest.NewTLSServer(up.Config.Handler)
	t.Cleanup(tlsUp.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()

	for _, tc := range []struct {
		name, url string
		ok        bool
	}{
		{"healthy", up.URL + "/healthz", true},
		{"healthy over tls", tlsUp.URL + "/healthz", true},
		{"unavailable", down.URL + "/healthz", false},
		{"not listening", closed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := probe(context.Background(), tc.url)
			if got := err == nil; got != tc.ok {
				t.Errorf("probe(%s) = %v, want ok=%v", tc.url, err, tc.ok)
			}
		})
	}
}

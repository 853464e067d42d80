package deploy

import (
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// serveSource holds serve's drain constants.
const serveSource = "../cmd/sallyport/cmd_serve.go"

// finaliseTimeout reads how long serve waits, after the grace, for
// recordings to be sealed and uploaded.
func finaliseTimeout(t *testing.T) time.Duration {
	t.Helper()
	m := regexp.MustCompile(`(?m)^const finaliseTimeout = (\d+) \* time\.Second`).FindSubmatch(readFile(t, serveSource))
	if m == nil {
		t.Fatalf("%s: no finaliseTimeout = N * time.Second", serveSource)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return time.Duration(n) * time.Second
}

// TestDrainFitsStopTimeout: each platform waits, before SIGKILL, longer
// than serve's drain takes (shutdown_grace, then sealing recordings, and on
// Kubernetes the preStop pause before SIGTERM), so a stop or rolling update
// never cuts a recording short.
func TestDrainFitsStopTimeout(t *testing.T) {
	schema := configSchema(t)
	finalise := finaliseTimeout(t)
	duration := func(name, s string) time.Duration {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("%s: %q: %v", name, s, err)
		}
		return d
	}
	compose := readYAML(t, filepath.Join(composeDir, "compose.yaml"))
	pod := get(k8sObject(t, "Deployment"), "spec", "template", "spec")
	preStop, _ := get(k8sContainer(t, pod, "sallyport"), "lifecycle", "preStop", "sleep", "seconds").(int)
	termination, _ := get(pod, "terminationGracePeriodSeconds").(int)
	tests := []struct {
		name   string
		config configFile
		before time.Duration // spent before SIGTERM
		kill   time.Duration // SIGKILL this long after the stop begins
	}{
		{"compose", composeConfig(t), 0, duration("stop_grace_period", str(get(compose, "services", "sallyport-a", "stop_grace_period")))},
		{"kubernetes", k8sConfig(t), time.Duration(preStop) * time.Second, time.Duration(termination) * time.Second},
		{"systemd", configFile{unitConfig, readFile(t, unitConfig)}, 0, duration("TimeoutStopSec", last(parseUnit(t, unitFile)["TimeoutStopSec"]))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := parseDeployConfig(t, schema, tc.config.name, tc.config.data)
			if c.ShutdownGrace == "" {
				t.Fatalf("%s: shutdown_grace not set; the platform's stop timeout is chosen against it", tc.config.name)
			}
			drain := tc.before + duration("shutdown_grace", c.ShutdownGrace) + finalise
			if drain >= tc.kill {
				t.Errorf("%s: drain takes up to %s (before SIGTERM %s, shutdown_grace %s, sealing %s), but SIGKILL comes after %s",
					tc.name, drain, tc.before, c.ShutdownGrace, finalise, tc.kill)
			}
		})
	}
}

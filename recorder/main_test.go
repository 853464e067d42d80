package recorder

import (
	"fmt"
	"os"
	"testing"
)

// TestMain lets the test binary double as the child processes some tests
// need: a bastion to SIGKILL, and a replay whose peak memory is measured.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		if err := crashChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
		}
		os.Exit(3)
	}
	if arg := os.Getenv(rssChildEnv); arg != "" {
		if err := rssChild(arg); err != nil {
			fmt.Fprintln(os.Stderr, "rss child:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

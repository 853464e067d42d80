// Command sallyport is the bastion: one binary that serves the SSH,
// PostgreSQL and MySQL proxies and the console, and administers the bundled
// IGA registry. This package parses flags, loads the config and wires the
// packages together; policy lives in iga, protocols in proxy.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes (docs/cli.md).
const (
	exitOK       = 0
	exitNegative = 1 // a denial, a failed verification, or a runtime error
	exitUsage    = 2 // bad flags or arguments, or a broken config file
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ex *exitError
	if errors.As(err, &ex) && ex.quiet {
		return ex.code
	}
	fmt.Fprintf(stderr, "sallyport: %v\n", err)
	return exitCode(err)
}

func exitCode(err error) int {
	var ex *exitError
	var ce *ConfigError
	switch {
	case errors.As(err, &ex):
		return ex.code
	case errors.As(err, &ce):
		return exitUsage
	case strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "unknown flag"):
		return exitUsage
	}
	return exitNegative
}

// exitError carries an exit code; quiet ones were already explained on
// stdout (a denial printed by iga check).
type exitError struct {
	code  int
	err   error
	quiet bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

// globals are the flags every command shares.
type globals struct {
	configPath string
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "sallyport",
		Short: "A bastion for privileged machine access, gated on an owned-and-certified registry",
		Long: `sallyport lets service accounts, pipelines, workloads and agents reach production
with stock ssh, scp, sftp, psql and mysql — but only identities its registry shows
as active, owned by an active person, certified and entitled. Every session gets
its own short-lived credential and is recorded.

Start with 'sallyport demo', then read 'sallyport iga --help'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.configPath, "config", "",
		"config file (default ./sallyport.yaml, then $SALLYPORT_CONFIG)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%v (see '%s --help')", err, c.CommandPath())
	})
	root.AddCommand(newServeCmd(g), newDemoCmd(g), newVersionCmd(), withGovernanceCmds(newIGACmd(g), g),
		newAuditCmd(g), newTokenCmd(g), newBreakglassCmd(g), newReplayCmd(g), newVerifyCmd(g),
		newRecordingCmd(g), newCACmd(g), newSessionsCmd(g), newReviewCmd(g))
	return root
}

// resolveConfigPath applies the documented order: --config, ./sallyport.yaml,
// then $SALLYPORT_CONFIG.
func (g *globals) resolveConfigPath() string {
	if g.configPath != "" {
		return g.configPath
	}
	if _, err := os.Stat("sallyport.yaml"); err == nil {
		return "sallyport.yaml"
	}
	if env := os.Getenv("SALLYPORT_CONFIG"); env != "" {
		return env
	}
	return "sallyport.yaml"
}

// args validates positional arguments as a usage error (exit 2).
func args(n int, names string) cobra.PositionalArgs {
	return func(c *cobra.Command, a []string) error {
		if len(a) != n {
			return usageErrorf("%s takes %s (see '%s --help')", c.CommandPath(), names, c.CommandPath())
		}
		return nil
	}
}

// requireFlags reports missing required flags as one usage error.
func requireFlags(c *cobra.Command, names ...string) error {
	var missing []string
	for _, n := range names {
		if !c.Flags().Changed(n) {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) > 0 {
		return usageErrorf("%s needs %s (see '%s --help')", c.CommandPath(), strings.Join(missing, ", "), c.CommandPath())
	}
	return nil
}

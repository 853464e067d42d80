package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/proxy/tlscert"
	"github.com/sallyport/sallyport/recorder"
)

// recording is a recording to read, and where the session index says it
// is: state is "" for a copied directory or a session the index lacks.
type recording struct {
	src   recorder.Source
	state recorder.State
}

// recordingSource resolves SESSION|PATH: an existing directory is read as a
// copied recording; anything else is a session id looked up in the
// configured store (never the local spool).
func (g *globals) recordingSource(ctx context.Context, arg string) (recording, error) {
	if fi, err := os.Stat(arg); err == nil && fi.IsDir() {
		src, err := recorder.DirSource(arg)
		return recording{src: src}, err
	}
	cfg, err := LoadConfig(g.resolveConfigPath())
	if err != nil {
		return recording{}, err
	}
	_, store, err := openRecordingStore(cfg)
	if err != nil {
		return recording{}, err
	}
	r, ok, err := lookupSession(ctx, cfg, arg)
	if err != nil {
		return recording{}, err
	}
	if ok && r.State == sqlstore.StateDeleted {
		return recording{}, fmt.Errorf("session %s: nothing to read, its %s", r.ID, r.Reason)
	}
	if ok {
		return recording{src: recorder.SessionSource(store, r.ID, r.StartedAt), state: recorder.State(r.State)}, nil
	}
	src, err := recorder.FindSession(ctx, store, arg)
	return recording{src: src}, err
}

// notThereYet explains a missing object of a recording on its way to the
// store, instead of a bare "object not found".
func (r recording) notThereYet(err error) error {
	if err == nil || !r.state.InTransit() || !errors.Is(err, recorder.ErrNotFound) {
		return err
	}
	return fmt.Errorf("%s: %w", r.later("its recording has not reached the store yet; run this"), err)
}

// later tells to do again in a moment what cannot be done while the
// recording is in transit.
func (r recording) later(what string) string {
	state := "still uploading"
	if r.state == recorder.StateLive {
		state = "still live"
	}
	return fmt.Sprintf("session %s is %s: %s again in a moment ('sallyport sessions list' shows it as stored then)",
		r.src.ID(), state, what)
}

func newReplayCmd(g *globals) *cobra.Command {
	var format, idle string
	var speed float64
	c := &cobra.Command{
		Use:   "replay SESSION|last|PATH [--speed N] [--idle-limit D] [--format pty|json|text]",
		Short: "Replay a recorded session from the store: a terminal, or a query timeline",
		Long: `replay reads the recording from the configured store (or a copied recording
directory) and streams it: memory stays flat however long the session was.
SESSION "last" is the newest session in the index.
  pty   plays the terminal in real time (--speed, --idle-limit)
  text  prints the session in time order: terminal output as a reader would see
        it, exec channels' stdin/stdout/stderr as "[ch0 stdout] …" lines
        (binary as its length and SHA-256), every event as a "# time" line
  json  prints the metadata and every record and event as JSON lines`,
		Example: `  sallyport replay last --format text
  sallyport replay 6745a1b2c3d4e5f6a7b8c9d0 --speed 2 --idle-limit 2s
  sallyport replay 6745a1b2c3d4e5f6a7b8c9d0 --format text | less`,
		Args: args(1, "SESSION or PATH"),
		RunE: func(c *cobra.Command, a []string) error {
			opts := recorder.ReplayOptions{Format: recorder.Format(format), Speed: speed}
			switch opts.Format {
			case recorder.FormatPTY, recorder.FormatText, recorder.FormatJSON:
			default:
				return usageErrorf("--format %q: want pty, json or text", format)
			}
			if idle != "" {
				d, err := ParseDuration(idle)
				if err != nil {
					return usageErrorf("--idle-limit: %v", err)
				}
				opts.IdleLimit = d
			}
			r, err := g.recordingSource(c.Context(), a[0])
			if err != nil {
				return err
			}
			return r.notThereYet(recorder.Replay(c.Context(), r.src, c.OutOrStdout(), opts))
		},
	}
	c.Flags().StringVar(&format, "format", "pty", "pty, json or text")
	c.Flags().Float64Var(&speed, "speed", 1, "playback speed for pty")
	c.Flags().StringVar(&idle, "idle-limit", "", "longest pause in pty playback, e.g. 2s")
	return c
}

func newVerifyCmd(g *globals) *cobra.Command {
	var pubFile string
	var asJSON bool
	c := &cobra.Command{
		Use:   "verify SESSION|PATH [--pubkey FILE] [--json]",
		Short: "Check a recording is whole and authentic (exit 0 intact, 1 otherwise)",
		Long: `verify checks the signed manifest, every object's size and SHA-256, and the hash
chain, reading from the configured store. It names the exact chunk and what is
wrong: flipped bytes, truncation, a missing or reordered chunk, a bad or foreign
signature. A recording of a session the bastion crashed during is reported
incomplete (authentic, but cut short), not tampered. A session the index shows
live or still uploading, whose only problem is objects not in the store yet, is
reported pending: verify it again once 'sallyport sessions list' shows it stored.
The trusted key is the bastion's recording key, or --pubkey (the line printed by
'sallyport ca export --type recording').`,
		Example: `  sallyport verify 6745a1b2c3d4e5f6a7b8c9d0
  sallyport verify ./copied-recording --pubkey recording.pub`,
		Args: args(1, "SESSION or PATH"),
		RunE: func(c *cobra.Command, a []string) error {
			pub, err := g.recordingPublicKey(pubFile)
			if err != nil {
				return err
			}
			r, err := g.recordingSource(c.Context(), a[0])
			if err != nil {
				return err
			}
			rep, err := recorder.Verify(c.Context(), r.src, pub)
			if err != nil {
				return err
			}
			rep.Pending(r.state)
			if asJSON {
				err = writeJSON(c.OutOrStdout(), rep)
			} else {
				_, err = fmt.Fprintln(c.OutOrStdout(), rep.String())
			}
			if err == nil && !asJSON {
				err = g.printHold(c.Context(), c.OutOrStdout(), r.src.ID())
			}
			if err == nil && rep.Status == recorder.StatusPending && !asJSON {
				_, err = fmt.Fprintln(c.OutOrStdout(), r.later("run verify"))
			}
			if err == nil && !rep.OK() {
				return &exitError{code: exitNegative, err: fmt.Errorf("recording %s", rep.Status), quiet: true}
			}
			return err
		},
	}
	c.Flags().StringVar(&pubFile, "pubkey", "", "trusted recording public key file (default: this bastion's)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return c
}

func (g *globals) recordingPublicKey(pubFile string) (ed25519.PublicKey, error) {
	if pubFile != "" {
		data, err := os.ReadFile(pubFile)
		if err != nil {
			return nil, fmt.Errorf("read --pubkey: %w", err)
		}
		return recorder.ParsePublicKey(data)
	}
	cfg, err := LoadConfig(g.resolveConfigPath())
	if err != nil {
		return nil, err
	}
	key, err := ca.LoadOrCreateKey(recordingKeyPath(cfg))
	if err != nil {
		return nil, fmt.Errorf("load recording key: %w", err)
	}
	return key.Public().(ed25519.PublicKey), nil
}

func newRecordingCmd(g *globals) *cobra.Command {
	var out, stream string
	var ch int
	export := &cobra.Command{
		Use:   "export SESSION|PATH -o FILE.cast | export SESSION|PATH --stream NAME -o FILE",
		Short: "Write one terminal of a session as an asciicast v2 file, or one exec stream's exact bytes",
		Long: `Without --stream, export writes the terminal of pty channel --channel as a plain
asciicast v2 file, as asciinema plays it.

--stream writes the exact bytes the recording keeps of one stream of an exec
channel (ssh host CMD, bash -s, scp, rsync, Ansible), checking the hash chain:
  exec-<channel>.stdin    what the client sent the command (kept unless
                          recordings.exec_capture_stdin is off)
  exec-<channel>.stdout   what the command printed
  exec-<channel>.stderr   its error output
The channel is the number the text replay shows ("[ch0 stdout]", "exec: …
(channel 0)"). Each stream is kept up to recordings.exec_capture_limit bytes;
the replay's exec_end line has every stream's whole length and SHA-256, kept or
not, so 'sha256sum' of an untruncated export matches it. A stream the recording
does not have is an error naming the streams it has.

-o - writes to standard output.`,
		Example: `  sallyport recording export 6745a1b2c3d4e5f6a7b8c9d0 -o session.cast && asciinema play session.cast
  sallyport recording export 6745a1b2c3d4e5f6a7b8c9d0 --stream exec-0.stdin -o script.sh
  sallyport recording export 6745a1b2c3d4e5f6a7b8c9d0 --stream exec-0.stdout -o - | sha256sum`,
		Args: args(1, "SESSION"),
		RunE: func(c *cobra.Command, a []string) error {
			if err := requireFlags(c, "output"); err != nil {
				return err
			}
			r, err := g.recordingSource(c.Context(), a[0])
			if err != nil {
				return err
			}
			write := func(w io.Writer) error { return recorder.ExportCast(c.Context(), r.src, w, ch) }
			if stream != "" {
				if err := checkStream(c.Context(), r, stream); err != nil {
					return err
				}
				write = func(w io.Writer) error { return recorder.ExportStream(c.Context(), r.src, w, stream) }
			}
			if out == "-" {
				return r.notThereYet(write(c.OutOrStdout()))
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return fmt.Errorf("create %w", err)
			}
			if err := write(f); err != nil {
				f.Close()
				os.Remove(out) // a partial export must not pass for the stream
				return r.notThereYet(err)
			}
			return f.Close()
		},
	}
	export.Flags().StringVarP(&out, "output", "o", "", "the file to write; - writes to standard output")
	export.Flags().IntVar(&ch, "channel", 0, "which pty channel of the session (without --stream)")
	export.Flags().StringVar(&stream, "stream", "", "an exec stream to write byte for byte: exec-<channel>.stdin|stdout|stderr")
	c := &cobra.Command{Use: "recording", Short: "Export recordings, put them on legal hold and release them"}
	c.AddCommand(export, newHoldCmd(g), newReleaseCmd(g))
	c.AddCommand(newReindexCmd(g))
	c.Aliases = append(c.Aliases, "recordings")
	return c
}

// checkStream fails, naming the exec streams the recording has, when it
// lacks stream.
func checkStream(ctx context.Context, r recording, stream string) error {
	names, err := recorder.StreamNames(ctx, r.src)
	if err != nil {
		return r.notThereYet(err)
	}
	var execs []string
	for _, n := range names {
		if n == stream {
			return nil
		}
		if strings.HasPrefix(n, "exec-") {
			execs = append(execs, n)
		}
	}
	have := "none: it recorded no exec channel, or kept nothing of it (see its exec_end in 'sallyport replay --format text')"
	if len(execs) > 0 {
		have = strings.Join(execs, ", ")
	}
	who := "the recording"
	if id := r.src.ID(); id != "" {
		who = "session " + id
	}
	return usageErrorf("--stream %q: %s has no such stream; its exec streams: %s", stream, who, have)
}

func newCACmd(g *globals) *cobra.Command {
	var typ string
	export := &cobra.Command{
		Use:   "export --type ssh-user|recording|ssh-host|postgres-tls|mysql-tls",
		Short: "Print a public key or certificate clients and targets pin: CAs, the recording key, the bastion's host key or its database listeners' TLS certificates",
		Long: `ssh-user prints the line for sshd's TrustedUserCAKeys on every target.
recording prints the public key that verifies recordings (sallyport verify --pubkey).
ssh-host prints the bastion's own SSH host key, for clients' known_hosts: every
replica behind a load balancer shares it (ssh.host_key_file), so one line pins them all.
The keys are created on first use under data_dir unless the config names a file.

postgres-tls and mysql-tls print the TLS certificate (PEM) the PostgreSQL or MySQL
listener presents, for clients that verify it (psql sslmode=verify-full with
sslrootcert, mariadb --ssl-verify-server-cert with --ssl-ca): the operator's
tls_cert_file when the config names one, otherwise the self-signed certificate
serve generates under data_dir. That one names the listen address (for a wildcard
listen such as ":6432": the machine's host name, localhost, 127.0.0.1, ::1 and its
interface addresses) and every tls_hosts entry; it is made here on first use as
serve would make it, and made anew when those names change — export it again then.
Each replica generates its own: behind a load balancer, give them one tls_cert_file.`,
		Example: `  sallyport ca export --type ssh-user > /etc/ssh/sallyport_user_ca.pub
  sallyport ca export --type recording > recording.pub
  echo "[bastion.example.com]:2222 $(sallyport ca export --type ssh-host)" >> ~/.ssh/known_hosts
  sallyport ca export --type postgres-tls > bastion-pg.pem
  psql "host=bastion.example.com port=6432 dbname=analytics user=svc-report sslmode=verify-full sslrootcert=bastion-pg.pem"
  sallyport ca export --type mysql-tls > bastion-mysql.pem
  mariadb -h bastion.example.com -P 3307 -u svc-report -p --ssl-ca=bastion-mysql.pem --ssl-verify-server-cert billing`,
		Args: args(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := LoadConfig(g.resolveConfigPath())
			if err != nil {
				return err
			}
			var path string
			switch typ {
			case "recording":
				path = recordingKeyPath(cfg)
			case "ssh-user":
				path = caKeyPathSSHUser(cfg)
			case "ssh-host":
				path = sshHostKeyPath(cfg)
			case "postgres-tls", "mysql-tls":
				return exportListenerCertificate(c.OutOrStdout(), cfg, strings.TrimSuffix(typ, "-tls"))
			default:
				return usageErrorf("--type %q: want ssh-user, recording, ssh-host, postgres-tls or mysql-tls", typ)
			}
			key, err := ca.LoadOrCreateKey(path)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.OutOrStdout(), "%s sallyport-%s\n", strings.TrimSpace(ca.AuthorizedKey(key)), typ)
			return err
		},
	}
	export.Flags().StringVar(&typ, "type", "", "ssh-user, recording, ssh-host, postgres-tls or mysql-tls")
	c := &cobra.Command{Use: "ca", Short: "Public keys and certificates of the bastion's authorities and listeners"}
	c.AddCommand(export)
	return c
}

// exportListenerCertificate prints the certificate chain the block's
// database listener presents, as PEM.
func exportListenerCertificate(w io.Writer, cfg *Config, block string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cert, err := dbListenerCertificate(cfg, block, log)
	if err != nil {
		return err
	}
	_, err = w.Write(tlscert.PEM(cert))
	return err
}

// caKeyPathSSHUser is the SSH user CA key: ca.ssh_user_key_file, or one
// generated under data_dir.
func caKeyPathSSHUser(cfg *Config) string {
	if cfg.CA.SSHUserKeyFile != "" {
		return cfg.CA.SSHUserKeyFile
	}
	return cfg.Path("keys/ssh_user_ca")
}

// lastSession is the SESSION argument that names the newest session.
const lastSession = "last"

// lookupSession asks the session index for a session's row: its start,
// so its recording is found without listing the store, and its recording
// state. "last" names the newest session. ok is false when the index does
// not know the id.
func lookupSession(ctx context.Context, cfg *Config, arg string) (sqlstore.SessionRecord, bool, error) {
	ap, err := openApp(ctx, cfg, slog.Default())
	if err != nil {
		return sqlstore.SessionRecord{}, false, err
	}
	defer ap.Close()
	if arg == lastSession {
		rs, err := ap.store.Sessions(ctx, sqlstore.SessionFilter{Limit: 1})
		if err != nil {
			return sqlstore.SessionRecord{}, false, err
		}
		if len(rs) == 0 {
			return sqlstore.SessionRecord{}, false, errors.New("no sessions recorded yet (see 'sallyport sessions list')")
		}
		return rs[0], true, nil
	}
	r, err := ap.store.Session(ctx, arg)
	if err != nil {
		return sqlstore.SessionRecord{}, false, nil
	}
	return r, true, nil
}

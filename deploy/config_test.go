package deploy

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// configSource is the binary's config struct; its yaml tags are the keys a
// sallyport.yaml may use. The sections that live in files of their own
// (config_scim.go, config_audit.go, …) are read with it: configSources.
const configSource = "../cmd/sallyport/config.go"

// configSources is every non-test config*.go file of the binary.
func configSources(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../cmd/sallyport/config*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			out = append(out, f)
		}
	}
	return out
}

// keyNode is one level of the config's key tree, read from configSource.
type keyNode struct {
	children map[string]*keyNode // nil: a scalar (string, bool, Duration)
	list     bool                // a sequence of children
}

// configSchema parses configSource with go/parser and returns the key tree
// of its Config type, so a key renamed or removed in the binary fails here.
func configSchema(t *testing.T) *keyNode {
	t.Helper()
	structs := map[string]*ast.StructType{}
	for _, src := range configSources(t) {
		f, err := parser.ParseFile(token.NewFileSet(), src, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", src, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok {
				if st, ok := ts.Type.(*ast.StructType); ok {
					structs[ts.Name.Name] = st
				}
			}
			return true
		})
	}
	if structs["Config"] == nil {
		t.Fatalf("%s: no type Config", configSource)
	}
	return schemaOf(t, structs, &ast.Ident{Name: "Config"})
}

func schemaOf(t *testing.T, structs map[string]*ast.StructType, expr ast.Expr) *keyNode {
	switch e := expr.(type) {
	case *ast.StarExpr:
		return schemaOf(t, structs, e.X)
	case *ast.SelectorExpr, *ast.MapType:
		// A type of another package (its own tests check its keys) or a
		// map, whose keys are the user's: not checked here.
		return &keyNode{}
	case *ast.ArrayType:
		n := schemaOf(t, structs, e.Elt)
		n.list = true
		return n
	case *ast.Ident:
		st, ok := structs[e.Name]
		if !ok {
			return &keyNode{} // string, bool, Duration...
		}
		n := &keyNode{children: map[string]*keyNode{}}
		for _, field := range st.Fields.List {
			if field.Tag == nil {
				continue
			}
			tag, err := strconv.Unquote(field.Tag.Value)
			if err != nil {
				t.Fatalf("%s: tag %s: %v", configSource, field.Tag.Value, err)
			}
			key, _, _ := strings.Cut(reflect.StructTag(tag).Get("yaml"), ",")
			if key != "" && key != "-" {
				n.children[key] = schemaOf(t, structs, field.Type)
			}
		}
		return n
	}
	t.Fatalf("%s: unexpected field type %T", configSource, expr)
	return nil
}

// unknownKeys lists the keys of doc that the schema does not have, as
// "path (line N)".
func unknownKeys(schema *keyNode, doc *yaml.Node, path string) []string {
	if doc.Kind == yaml.DocumentNode {
		return unknownKeys(schema, doc.Content[0], path)
	}
	if schema.list {
		if doc.Kind != yaml.SequenceNode {
			return []string{fmt.Sprintf("%s (line %d): want a list", path, doc.Line)}
		}
		var bad []string
		elem := &keyNode{children: schema.children}
		for i, item := range doc.Content {
			bad = append(bad, unknownKeys(elem, item, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return bad
	}
	if schema.children == nil || doc.Kind != yaml.MappingNode {
		return nil
	}
	var bad []string
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		key := strings.TrimPrefix(path+"."+k.Value, ".")
		child, ok := schema.children[k.Value]
		if !ok {
			bad = append(bad, fmt.Sprintf("%s (line %d)", key, k.Line))
			continue
		}
		bad = append(bad, unknownKeys(child, v, key)...)
	}
	return bad
}

// deployConfig is what the manifests must agree with in a sallyport.yaml.
// Its keys are checked against configSource by unknownKeys.
type deployConfig struct {
	DataDir       string `yaml:"data_dir"`
	ShutdownGrace string `yaml:"shutdown_grace"`
	Registry      struct {
		Driver string `yaml:"driver"`
		DSNEnv string `yaml:"dsn_env"`
	} `yaml:"registry"`
	Recordings struct {
		Store string `yaml:"store"`
		S3    struct {
			Endpoint     string `yaml:"endpoint"`
			Bucket       string `yaml:"bucket"`
			Prefix       string `yaml:"prefix"`
			AccessKeyEnv string `yaml:"access_key_env"`
			SecretKeyEnv string `yaml:"secret_key_env"`
		} `yaml:"s3"`
		SigningKeyFile string `yaml:"signing_key_file"`
	} `yaml:"recordings"`
	CA struct {
		SSHUserKeyFile string `yaml:"ssh_user_key_file"`
	} `yaml:"ca"`
	Tokens struct {
		SigningKeyFile string `yaml:"signing_key_file"`
	} `yaml:"tokens"`
	SSH struct {
		Listen      string `yaml:"listen"`
		HostKeyFile string `yaml:"host_key_file"`
	} `yaml:"ssh"`
	Postgres dbListener `yaml:"postgres"`
	MySQL    dbListener `yaml:"mysql"`
	Web      struct {
		Listen         string `yaml:"listen"`
		SessionKeyFile string `yaml:"session_key_file"`
	} `yaml:"web"`
	Targets []struct {
		Name    string `yaml:"name"`
		Kind    string `yaml:"kind"`
		Address string `yaml:"address"`
	} `yaml:"targets"`
}

type dbListener struct {
	Listen      string `yaml:"listen"`
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
}

// listenPorts returns the four listeners' ports by config key. Each deploy
// config names all four: the defaults live in the binary, and a manifest
// that relied on them would not notice them change.
func (c deployConfig) listenPorts(t *testing.T, name string) map[string]int {
	t.Helper()
	ports := map[string]int{}
	for key, addr := range map[string]string{
		"ssh.listen": c.SSH.Listen, "postgres.listen": c.Postgres.Listen,
		"mysql.listen": c.MySQL.Listen, "web.listen": c.Web.Listen,
	} {
		_, p, err := net.SplitHostPort(addr)
		port, perr := strconv.Atoi(p)
		if err != nil || perr != nil {
			t.Errorf("%s: %s = %q, want host:port or :port set explicitly", name, key, addr)
			continue
		}
		ports[key] = port
	}
	return ports
}

// envNames are the environment variables the config names (*_env keys).
func (c deployConfig) envNames() []string {
	var names []string
	for _, n := range []string{c.Registry.DSNEnv, c.Recordings.S3.AccessKeyEnv, c.Recordings.S3.SecretKeyEnv} {
		if n != "" {
			names = append(names, n)
		}
	}
	return names
}

// keyFiles are the key files the config names (*_file keys).
func (c deployConfig) keyFiles() []string {
	var files []string
	for _, f := range c.keyFileByConfigKey() {
		if f != "" {
			files = append(files, f)
		}
	}
	sort.Strings(files)
	return slices.Compact(files)
}

// keyFileByConfigKey maps each *_file config key to its value.
func (c deployConfig) keyFileByConfigKey() map[string]string {
	return map[string]string{
		"ca.ssh_user_key_file":        c.CA.SSHUserKeyFile,
		"recordings.signing_key_file": c.Recordings.SigningKeyFile,
		"ssh.host_key_file":           c.SSH.HostKeyFile,
		"tokens.signing_key_file":     c.Tokens.SigningKeyFile,
		"web.session_key_file":        c.Web.SessionKeyFile,
		"postgres.tls_cert_file":      c.Postgres.TLSCertFile,
		"postgres.tls_key_file":       c.Postgres.TLSKeyFile,
		"mysql.tls_cert_file":         c.MySQL.TLSCertFile,
		"mysql.tls_key_file":          c.MySQL.TLSKeyFile,
	}
}

// sharedKeySource is where the binary lists the keys every replica must
// hold alike (and refuses to start without).
const sharedKeySource = "../cmd/sallyport/serve_keys.go"

// sharedKeyConfigKeys reads the config keys of the binary's shared keys
// from sharedKeySource, so a key added there must be given to every
// replica here.
func sharedKeyConfigKeys(t *testing.T) []string {
	t.Helper()
	re := regexp.MustCompile(`\{"[a-z-]+", "([a-z_]+\.[a-z_]+_file)", \w+\}`)
	var keys []string
	for _, m := range re.FindAllStringSubmatch(string(readFile(t, sharedKeySource)), -1) {
		keys = append(keys, m[1])
	}
	if len(keys) < 2 {
		t.Fatalf("%s: found shared keys %v; has the sharedKeys table moved?", sharedKeySource, keys)
	}
	return keys
}

// sharedKeyFiles returns the file the replica config c names for each
// shared key, and fails the test for each it leaves empty: that replica
// would generate a key of its own and be refused at start.
func (c deployConfig) sharedKeyFiles(t *testing.T, name string) []string {
	t.Helper()
	files := c.keyFileByConfigKey()
	var out []string
	for _, key := range sharedKeyConfigKeys(t) {
		f, known := files[key]
		switch {
		case !known:
			t.Errorf("shared key %s (%s) is not in deployConfig.keyFileByConfigKey", key, sharedKeySource)
		case f == "":
			t.Errorf("%s: %s is not set: each replica would generate its own key", name, key)
		default:
			out = append(out, f)
		}
	}
	return out
}

// parseDeployConfig checks a sallyport.yaml's keys against the binary's and
// decodes what the manifests must agree with.
func parseDeployConfig(t *testing.T, schema *keyNode, name string, data []byte) deployConfig {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if bad := unknownKeys(schema, &doc, ""); len(bad) > 0 {
		t.Errorf("%s: keys %s are not in %s", name, strings.Join(bad, ", "), configSource)
	}
	var c deployConfig
	if err := doc.Decode(&c); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

var (
	buildMu  sync.Mutex
	binaries = map[string]string{} // package -> built binary
	buildDir string
)

// sallyportBinary builds ./cmd/sallyport once per test run. It uses the
// environment's cgo setting, so the build shares the cache of every other
// test; TestImageBuildsWithoutCgo checks the image's CGO_ENABLED=0.
func sallyportBinary(t *testing.T) string { return buildBinary(t, "../cmd/sallyport", nil) }

// buildBinary builds a main package once per test run, with env added.
func buildBinary(t *testing.T, pkg string, env []string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := binaries[pkg]; ok {
		return bin
	}
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "sallyport-deploy-test-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = dir
	}
	bin := filepath.Join(buildDir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	binaries[pkg] = bin
	return bin
}

// loadWithBinary runs the real config loader on a copy of data: `sallyport
// ca export` loads the config strictly and reads (or creates) one key file,
// nothing else. data_dir and every *_file are moved into a temp dir first,
// so nothing is written where the manifest would mount keys.
func loadWithBinary(t *testing.T, name string, data []byte) (stdout, stderr string, code int) {
	t.Helper()
	bin := sallyportBinary(t)
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	dir := t.TempDir()
	relocatePaths(doc.Content[0], dir)
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sallyport.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	var so, se bytes.Buffer
	cmd := exec.Command(bin, "--config", path, "ca", "export", "--type", "ssh-user")
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return so.String(), se.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	return so.String(), se.String(), 0
}

// relocatePaths points data_dir and every non-empty *_file value into dir.
func relocatePaths(n *yaml.Node, dir string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind == yaml.ScalarNode && v.Value != "" &&
				(k.Value == "data_dir" || strings.HasSuffix(k.Value, "_file")) {
				v.Value = filepath.Join(dir, k.Value)
				continue
			}
			relocatePaths(v, dir)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			relocatePaths(c, dir)
		}
	}
}

func TestConfigSchemaCatchesDrift(t *testing.T) {
	schema := configSchema(t)
	for _, key := range []string{"data_dir", "registry", "recordings", "ca", "ssh", "postgres", "mysql", "web", "targets"} {
		if schema.children[key] == nil {
			t.Errorf("schema from %s has no %q; have %v", configSource, key, sortedKeys(schema.children))
		}
	}
	var doc yaml.Node
	yaml.Unmarshal([]byte("ssh: {listen: \":2222\", lisen: x}\ntargets: [{name: a, adress: b}]\n"), &doc)
	got := unknownKeys(schema, &doc, "")
	want := []string{"ssh.lisen (line 1)", "targets[0].adress (line 2)"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("unknown keys = %q, want %q", got, want)
	}
}

// TestBinaryRefusesUnknownKey shows that loadWithBinary's exit 0 means
// something: the same command refuses a misspelt key with exit 2.
func TestBinaryRefusesUnknownKey(t *testing.T) {
	_, stderr, code := loadWithBinary(t, "misspelt", []byte("web: {listn: \":8080\"}\n"))
	if code != 2 || !strings.Contains(stderr, "unknown key") {
		t.Errorf("exit %d, stderr %q; want exit 2 and an unknown key error", code, stderr)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

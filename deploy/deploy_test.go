package deploy

import (
	"bufio"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The paths every manifest must agree on.
const (
	composeDir  = "compose"
	k8sDir      = "kubernetes"
	unitFile    = "systemd/sallyport.service"
	unitConfig  = "systemd/sallyport.yaml"
	sshdSnippet = "sshd/sallyport.conf"
)

// configFile is one sallyport.yaml shipped in deploy/.
type configFile struct {
	name string
	data []byte
}

func composeConfig(t *testing.T) configFile {
	return configFile{filepath.Join(composeDir, "sallyport.yaml"), readFile(t, filepath.Join(composeDir, "sallyport.yaml"))}
}

func k8sConfig(t *testing.T) configFile {
	cm := k8sObject(t, "ConfigMap")
	data := str(get(cm, "data", "sallyport.yaml"))
	if data == "" {
		t.Fatalf("%s: ConfigMap has no data.sallyport.yaml", k8sDir)
	}
	return configFile{k8sDir + " ConfigMap " + str(get(cm, "metadata", "name")), []byte(data)}
}

func TestEveryConfigLoads(t *testing.T) {
	schema := configSchema(t)
	for _, cf := range []configFile{composeConfig(t), k8sConfig(t), {unitConfig, readFile(t, unitConfig)}} {
		t.Run(cf.name, func(t *testing.T) {
			c := parseDeployConfig(t, schema, cf.name, cf.data)
			c.listenPorts(t, cf.name)
			stdout, stderr, code := loadWithBinary(t, cf.name, cf.data)
			if code != 0 || !strings.HasPrefix(stdout, "ssh-ed25519 ") {
				t.Errorf("sallyport ca export with %s: exit %d, stdout %q, stderr %q; want exit 0 and a key", cf.name, code, stdout, stderr)
			}
		})
	}
}

// containerPorts are the listen ports of the configs that run in the image;
// they must agree with each other, as the image has one EXPOSE line.
func containerPorts(t *testing.T) map[string]int {
	schema := configSchema(t)
	var want map[string]int
	for _, cf := range []configFile{composeConfig(t), k8sConfig(t)} {
		ports := parseDeployConfig(t, schema, cf.name, cf.data).listenPorts(t, cf.name)
		if want == nil {
			want = ports
		} else if !maps.Equal(ports, want) {
			t.Fatalf("%s listens on %v, %s on %v; want the same ports", cf.name, ports, composeConfig(t).name, want)
		}
	}
	return want
}

func TestDockerfile(t *testing.T) {
	ports := containerPorts(t)
	stages := parseDockerfile(t, "Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a runtime stage", len(stages))
	}
	build, run := stages[0], stages[len(stages)-1]
	if want := "golang:" + goVersion(t); build.from != want {
		t.Errorf("build stage FROM %s, want %s (go.mod's go version)", build.from, want)
	}
	if !strings.Contains(build.all("ENV")+build.all("RUN"), "CGO_ENABLED=0") {
		t.Errorf("build stage does not set CGO_ENABLED=0: the binary would not be static")
	}
	for _, pkg := range regexp.MustCompile(`\./(cmd/sallyport|deploy/healthcheck)\b`).FindAllString(build.all("RUN"), -1) {
		if _, err := os.Stat(filepath.Join("..", pkg)); err != nil {
			t.Errorf("build stage builds %s: %v", pkg, err)
		}
	}
	if user := run.last("USER"); user == "" || user == "root" || strings.HasPrefix(user, "0") {
		t.Errorf("runtime stage USER %q, want a non-root user", user)
	}
	if got, want := intFields(t, run.all("EXPOSE")), sortedValues(ports); !slices.Equal(got, want) {
		t.Errorf("EXPOSE %v, want the configs' listen ports %v", got, want)
	}
	hc := run.last("HEALTHCHECK")
	if wantURL := "http://127.0.0.1:" + strconv.Itoa(ports["web.listen"]) + "/healthz"; !strings.Contains(hc, wantURL) {
		t.Errorf("HEALTHCHECK %q does not probe %s", hc, wantURL)
	}
	if _, cmd, ok := strings.Cut(hc, " CMD "); !ok {
		t.Errorf("HEALTHCHECK %q has no CMD", hc)
	} else if probe := execForm(t, cmd)[0]; !strings.Contains(run.all("COPY"), filepath.Base(probe)) {
		t.Errorf("HEALTHCHECK runs %s, which no COPY puts in the image", probe)
	}
	argv := append(execForm(t, run.last("ENTRYPOINT")), execForm(t, run.last("CMD"))...)
	if got := imageConfigPath(t, argv); got != "/etc/sallyport/sallyport.yaml" {
		t.Errorf("image runs %q with config %s, want /etc/sallyport/sallyport.yaml (what compose and kubernetes mount)", argv, got)
	}
	if env := run.all("ENV"); !strings.Contains(env, "SALLYPORT_CONFIG=/etc/sallyport/sallyport.yaml") {
		t.Errorf("ENV %q: want SALLYPORT_CONFIG=/etc/sallyport/sallyport.yaml, so admin commands in the container find serve's config", env)
	}
}

// imageConfigPath returns FILE of "serve --config FILE" in argv.
func imageConfigPath(t *testing.T, argv []string) string {
	t.Helper()
	i := slices.Index(argv, "serve")
	if i < 0 || i+2 >= len(argv) || argv[i+1] != "--config" {
		t.Fatalf("command %q: want serve --config FILE", argv)
	}
	return argv[i+2]
}

func TestSystemdUnit(t *testing.T) {
	unit := parseUnit(t, unitFile)
	exec := strings.Fields(last(unit["ExecStart"]))
	if len(exec) < 4 || exec[1] != "serve" || exec[2] != "--config" {
		t.Fatalf("ExecStart %q, want BINARY serve --config FILE", exec)
	}
	if exec[3] != "/etc/sallyport/sallyport.yaml" {
		t.Errorf("ExecStart config %s, want /etc/sallyport/sallyport.yaml (installed from %s)", exec[3], unitConfig)
	}
	for key, want := range map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"StateDirectory": "sallyport", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
		"PrivateDevices": "yes", "RestrictSUIDSGID": "yes",
	} {
		if v, ok := unit[key]; !ok || last(v) != want {
			t.Errorf("%s=%q, want %q", key, last(v), want)
		}
	}
	if u := last(unit["User"]); u == "" || u == "root" {
		t.Errorf("User=%q, want a dedicated user", u)
	}
	c := parseDeployConfig(t, configSchema(t), unitConfig, readFile(t, unitConfig))
	if want := "/var/lib/" + last(unit["StateDirectory"]); c.DataDir != want {
		t.Errorf("%s data_dir %s, want %s: the only writable path under ProtectSystem=strict", unitConfig, c.DataDir, want)
	}
}

// parseUnit reads a systemd unit's Key=Value lines; repeated keys keep every value.
func parseUnit(t *testing.T, path string) map[string][]string {
	unit := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(string(readFile(t, path))))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not Key=Value", path, line)
		}
		unit[strings.TrimSpace(k)] = append(unit[strings.TrimSpace(k)], strings.TrimSpace(v))
	}
	return unit
}

// TestNoSecretsInFiles: manifests reference keys and passwords, never hold them.
func TestNoSecretsInFiles(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (path == "sandbox" || path == filepath.Join(composeDir, "secrets")) {
			return filepath.SkipDir
		}
		// Split so that this file does not match itself.
		if !d.IsDir() && strings.Contains(string(readFile(t, path)), "PRIVATE"+" KEY-----") {
			t.Errorf("%s holds a private key", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sshdDirective returns a directive's value in the sshd snippet.
func sshdDirective(t *testing.T, key string) string {
	for _, line := range strings.Split(string(readFile(t, sshdSnippet)), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == key {
			return f[1]
		}
	}
	t.Fatalf("%s has no %s", sshdSnippet, key)
	return ""
}

// directive returns the first argument of the first line starting with key.
func directive(lines []string, key string) string {
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 1 && f[0] == key {
			return f[1]
		}
	}
	return ""
}

func goVersion(t *testing.T) string {
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(readFile(t, "../go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	return string(m[1])
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func readYAML(t *testing.T, path string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(readFile(t, path), &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// k8sObjects decodes every document of every manifest in k8sDir.
func k8sObjects(t *testing.T) []any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	var objs []any
	for _, f := range files {
		dec := yaml.NewDecoder(strings.NewReader(string(readFile(t, f))))
		for {
			var v any
			if err := dec.Decode(&v); err != nil {
				if err.Error() != "EOF" {
					t.Fatalf("%s: %v", f, err)
				}
				break
			}
			if v != nil {
				objs = append(objs, v)
			}
		}
	}
	return objs
}

func k8sObject(t *testing.T, kind string) any {
	t.Helper()
	var found []any
	for _, o := range k8sObjects(t) {
		if get(o, "kind") == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d objects of kind %s, want 1", k8sDir, len(found), kind)
	}
	return found[0]
}

// get walks maps by key; it returns nil where the path does not exist.
func get(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func strs(v any) []string {
	var out []string
	for _, e := range list(v) {
		out = append(out, str(e))
	}
	return out
}

func last(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	return n
}

func intFields(t *testing.T, s string) []int {
	var out []int
	for _, f := range strings.Fields(s) {
		out = append(out, atoi(t, f))
	}
	sort.Ints(out)
	return out
}

func sortedValues(m map[string]int) []int {
	out := make([]int, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Ints(out)
	return out
}

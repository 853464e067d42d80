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

func TestCompose(t *testing.T) {
	ports := containerPorts(t)
	c := parseDeployConfig(t, configSchema(t), composeConfig(t).name, composeConfig(t).data)
	compose := readYAML(t, filepath.Join(composeDir, "compose.yaml"))
	services := get(compose, "services")
	for _, name := range []string{"sallyport-a", "sallyport-b"} {
		t.Run(name, func(t *testing.T) {
			svc := get(services, name)
			if svc == nil {
				t.Fatalf("compose.yaml has no service %s", name)
			}
			ctx := filepath.Join(composeDir, str(get(svc, "build", "context")))
			if df := str(get(svc, "build", "dockerfile")); filepath.Join(ctx, df) != filepath.Join("..", "deploy", "Dockerfile") {
				t.Errorf("%s builds %s in context %s, want deploy/Dockerfile in the repository root", name, df, ctx)
			}
			mounts := composeMounts(t, svc)
			if src := mounts["/etc/sallyport/sallyport.yaml"]; src != "./sallyport.yaml" {
				t.Errorf("%s mounts %q at /etc/sallyport/sallyport.yaml, want ./sallyport.yaml", name, src)
			}
			if _, ok := mounts[c.DataDir]; !ok {
				t.Errorf("%s: data_dir %s is not a volume (the root file system is read-only)", name, c.DataDir)
			}
			env := get(svc, "environment")
			for _, v := range c.envNames() {
				if val := str(get(env, v)); !strings.Contains(val, "${") {
					t.Errorf("%s: environment %s = %q, want a ${...} reference to .env", name, v, val)
				}
			}
			targets := composeSecretTargets(svc)
			for _, f := range append(c.keyFiles(), sharedDataDirKeys(t, c.DataDir)...) {
				if !slices.Contains(targets, f) {
					t.Errorf("%s: key file %s is not a mounted secret (have %v)", name, f, targets)
				}
			}
		})
	}
	t.Run("lb", func(t *testing.T) {
		var published []int
		for _, p := range list(get(services, "lb", "ports")) {
			published = append(published, atoi(t, str(p)[strings.LastIndex(str(p), ":")+1:]))
		}
		sort.Ints(published)
		if want := sortedValues(ports); !slices.Equal(published, want) {
			t.Errorf("lb publishes %v, want the listen ports %v", published, want)
		}
		checkHAProxy(t, ports)
	})
	t.Run("target", func(t *testing.T) {
		for _, tg := range c.Targets {
			host, _, _ := strings.Cut(tg.Address, ":")
			if get(services, host) == nil {
				t.Errorf("target %s at %s: no compose service %s", tg.Name, tg.Address, host)
			}
		}
		caPub := sshdDirective(t, "TrustedUserCAKeys")
		target := get(services, "target")
		if !slices.Contains(composeSecretTargets(target), caPub) {
			t.Errorf("target does not mount the CA's public key at %s (TrustedUserCAKeys in %s)", caPub, sshdSnippet)
		}
		secrets := get(compose, "secrets")
		if got, want := str(get(secrets, "ssh_user_ca_pub", "file")), str(get(secrets, "ssh_user_ca_key", "file"))+".pub"; got != want {
			t.Errorf("target trusts %s, want %s, the public half of ca.ssh_user_key_file", got, want)
		}
		if df := readFile(t, filepath.Join(composeDir, "target", "Dockerfile")); !strings.Contains(string(df), "deploy/"+sshdSnippet) {
			t.Errorf("target/Dockerfile does not install deploy/%s", sshdSnippet)
		}
	})
	t.Run("minio", func(t *testing.T) {
		s3 := c.Recordings.S3
		if host, _, _ := strings.Cut(s3.Endpoint, ":"); get(services, host) == nil {
			t.Errorf("recordings.s3.endpoint %s: no compose service %s", s3.Endpoint, host)
		}
		script := strings.Join(strs(get(services, "minio-init", "command")), "\n")
		if !strings.Contains(script, "mc mb --ignore-existing local/"+s3.Bucket+"\n") {
			t.Errorf("minio-init does not create bucket %s:\n%s", s3.Bucket, script)
		}
		policy := string(readFile(t, filepath.Join(composeDir, "minio-policy.json")))
		for _, arn := range []string{`"arn:aws:s3:::` + s3.Bucket + `"`, `"arn:aws:s3:::` + s3.Bucket + "/" + s3.Prefix + `*"`} {
			if !strings.Contains(policy, arn) {
				t.Errorf("minio-policy.json does not grant %s", arn)
			}
		}
	})
}

// sharedDataDirKeys lists the key files serve keeps under data_dir/keys
// (cmd/sallyport's cfg.Path("keys/...") calls) that replicas must share: all
// but the SSH user CA (named by ca.ssh_user_key_file here) and the
// generated TLS certificates of the database listeners, which clients do
// not pin (sslmode=require).
func sharedDataDirKeys(t *testing.T, dataDir string) []string {
	t.Helper()
	files, _ := filepath.Glob("../cmd/sallyport/*.go")
	seen := map[string]bool{}
	re := regexp.MustCompile(`Path\("keys/([^"]+)"\)`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		for _, m := range re.FindAllStringSubmatch(string(readFile(t, f)), -1) {
			if m[1] != "ssh_user_ca" && !regexp.MustCompile(`_tls\.(crt|key)$`).MatchString(m[1]) {
				seen[filepath.Join(dataDir, "keys", m[1])] = true
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("found no keys/ paths in cmd/sallyport: has the key layout moved?")
	}
	return sortedKeys(seen)
}

// composeMounts maps each volume's container path to its source.
func composeMounts(t *testing.T, svc any) map[string]string {
	m := map[string]string{}
	for _, v := range list(get(svc, "volumes")) {
		parts := strings.Split(str(v), ":")
		if len(parts) < 2 {
			t.Fatalf("volume %q: want SOURCE:TARGET[:ro]", str(v))
		}
		m[parts[1]] = parts[0]
	}
	return m
}

// composeSecretTargets lists where a service's secrets appear.
func composeSecretTargets(svc any) []string {
	var out []string
	for _, s := range list(get(svc, "secrets")) {
		if name, ok := s.(string); ok {
			out = append(out, "/run/secrets/"+name)
		} else if target := str(get(s, "target")); target != "" {
			out = append(out, target)
		} else {
			out = append(out, "/run/secrets/"+str(get(s, "source")))
		}
	}
	return out
}

// checkHAProxy checks that each listen port is a frontend whose backend
// sends it to the same port on both replicas, in rotation by /healthz.
func checkHAProxy(t *testing.T, ports map[string]int) {
	sections := map[string][]string{} // "frontend ssh" -> its lines; sections start in column 0
	var cur string
	for _, raw := range strings.Split(string(readFile(t, filepath.Join(composeDir, "haproxy.cfg"))), "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if line == raw {
			cur = line
			continue
		}
		sections[cur] = append(sections[cur], line)
	}
	var bound []int
	web := strconv.Itoa(ports["web.listen"])
	for name, lines := range sections {
		if !strings.HasPrefix(name, "frontend ") {
			continue
		}
		port := directive(lines, "bind")
		bound = append(bound, atoi(t, strings.TrimPrefix(port, ":")))
		backend := sections["backend "+directive(lines, "default_backend")]
		var servers []string
		for _, l := range backend {
			if f := strings.Fields(l); f[0] == "server" {
				servers = append(servers, f[2])
			}
		}
		sort.Strings(servers)
		if want := []string{"sallyport-a" + port, "sallyport-b" + port}; !slices.Equal(servers, want) {
			t.Errorf("haproxy %s (bind %s) sends to %v, want %v", name, port, servers, want)
		}
		if check := strings.Join(append(sections["defaults"], backend...), "\n"); !strings.Contains(check, "uri /healthz") || !strings.Contains(check, "check port "+web) {
			t.Errorf("haproxy %s: backend not health-checked on /healthz port %s", name, web)
		}
	}
	sort.Ints(bound)
	if want := sortedValues(ports); !slices.Equal(bound, want) {
		t.Errorf("haproxy binds %v, want the listen ports %v", bound, want)
	}
}

func TestKubernetes(t *testing.T) {
	ports := containerPorts(t)
	c := parseDeployConfig(t, configSchema(t), k8sConfig(t).name, k8sConfig(t).data)
	checkKustomization(t)

	dep := k8sObject(t, "Deployment")
	if r := get(dep, "spec", "replicas"); r != 2 {
		t.Errorf("Deployment replicas %v, want 2", r)
	}
	labels := get(dep, "spec", "template", "metadata", "labels").(map[string]any)
	if sel := get(dep, "spec", "selector", "matchLabels"); !selects(sel, labels) {
		t.Errorf("Deployment selector %v does not select its pods %v", sel, labels)
	}
	pod := get(dep, "spec", "template", "spec")
	ctr := k8sContainer(t, pod, "sallyport")

	named := map[string]int{}
	var cports []int
	for _, p := range list(get(ctr, "ports")) {
		named[str(get(p, "name"))] = get(p, "containerPort").(int)
		cports = append(cports, get(p, "containerPort").(int))
	}
	sort.Ints(cports)
	if want := sortedValues(ports); !slices.Equal(cports, want) {
		t.Errorf("containerPorts %v, want the listen ports %v", cports, want)
	}
	resolve := func(v any) int {
		if n, ok := v.(int); ok {
			return n
		}
		return named[str(v)]
	}
	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		h := get(ctr, probe, "httpGet")
		if path, port := str(get(h, "path")), resolve(get(h, "port")); path != "/healthz" || port != ports["web.listen"] {
			t.Errorf("%s GET %s on port %d, want /healthz on web.listen %d", probe, path, port, ports["web.listen"])
		}
	}

	if got := imageConfigPath(t, strs(get(ctr, "args"))); got != "/etc/sallyport/sallyport.yaml" {
		t.Errorf("container config path %s, want /etc/sallyport/sallyport.yaml", got)
	}
	mounts := map[string]any{}
	for _, m := range list(get(ctr, "volumeMounts")) {
		mounts[str(get(m, "mountPath"))] = m
	}
	volumes := map[string]any{}
	for _, v := range list(get(pod, "volumes")) {
		volumes[str(get(v, "name"))] = v
	}
	cm := k8sObject(t, "ConfigMap")
	cfgMount := mounts["/etc/sallyport/sallyport.yaml"]
	if vol := volumes[str(get(cfgMount, "name"))]; str(get(vol, "configMap", "name")) != str(get(cm, "metadata", "name")) || str(get(cfgMount, "subPath")) != "sallyport.yaml" {
		t.Errorf("/etc/sallyport/sallyport.yaml is not the ConfigMap's sallyport.yaml (mount %v, volume %v)", cfgMount, vol)
	}
	if m := mounts[c.DataDir]; m == nil || get(m, "readOnly") == true {
		t.Errorf("data_dir %s is not a writable volume mount (the root file system is read-only)", c.DataDir)
	}
	for _, f := range c.keyFiles() {
		if m := mounts[filepath.Dir(f)]; m == nil {
			t.Errorf("key file %s: no volume mounted at %s", f, filepath.Dir(f))
		}
	}
	// The shared keys serve reads from data_dir/keys are copied there by an
	// init container from the Secret, into the volume the container mounts.
	init := k8sContainer(t, map[string]any{"containers": get(pod, "initContainers")}, "keys")
	script := strings.Join(strs(get(init, "command")), "\n")
	var initState string
	for _, m := range list(get(init, "volumeMounts")) {
		if str(get(m, "mountPath")) == c.DataDir {
			initState = str(get(m, "name"))
		}
	}
	if initState == "" || initState != str(get(mounts[c.DataDir], "name")) {
		t.Errorf("init container keys does not mount the data_dir volume %q", str(get(mounts[c.DataDir], "name")))
	}
	for _, f := range sharedDataDirKeys(t, c.DataDir) {
		if !strings.Contains(script, " "+f+"\n") {
			t.Errorf("init container keys does not install %s:\n%s", f, script)
		}
	}

	envFrom := map[string]string{}
	for _, e := range list(get(ctr, "env")) {
		envFrom[str(get(e, "name"))] = str(get(e, "valueFrom", "secretKeyRef", "name"))
		if get(e, "value") != nil {
			t.Errorf("env %s has a literal value; want a secretKeyRef", str(get(e, "name")))
		}
	}
	for _, v := range c.envNames() {
		if envFrom[v] == "" {
			t.Errorf("env %s (named by the config) is not set from a Secret", v)
		}
	}

	for what, v := range map[string]any{
		"pod runAsNonRoot":                 get(pod, "securityContext", "runAsNonRoot"),
		"container runAsNonRoot":           get(ctr, "securityContext", "runAsNonRoot"),
		"container readOnlyRootFilesystem": get(ctr, "securityContext", "readOnlyRootFilesystem"),
	} {
		if v != true {
			t.Errorf("%s = %v, want true", what, v)
		}
	}
	if v := get(ctr, "securityContext", "allowPrivilegeEscalation"); v != false {
		t.Errorf("allowPrivilegeEscalation = %v, want false", v)
	}

	svc := k8sObject(t, "Service")
	if sel := get(svc, "spec", "selector"); !selects(sel, labels) {
		t.Errorf("Service selector %v does not select the pods %v", sel, labels)
	}
	var sports []int
	for _, p := range list(get(svc, "spec", "ports")) {
		port, target := get(p, "port").(int), resolve(get(p, "targetPort"))
		if port != target {
			t.Errorf("Service port %d goes to container port %d, want the same", port, target)
		}
		sports = append(sports, target)
	}
	sort.Ints(sports)
	if want := sortedValues(ports); !slices.Equal(sports, want) {
		t.Errorf("Service ports %v, want the listen ports %v", sports, want)
	}

	pdb := k8sObject(t, "PodDisruptionBudget")
	if sel := get(pdb, "spec", "selector", "matchLabels"); !selects(sel, labels) {
		t.Errorf("PodDisruptionBudget selector %v does not select the pods %v", sel, labels)
	}
	if m, ok := get(pdb, "spec", "minAvailable").(int); !ok || m < 1 || m >= 2 {
		t.Errorf("PodDisruptionBudget minAvailable %v, want 1 of 2 replicas", get(pdb, "spec", "minAvailable"))
	}
}

// checkKustomization checks that kustomization.yaml lists every manifest and
// that none of them is a Secret: secrets are referenced, never shipped.
func checkKustomization(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	var manifests []string
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			manifests = append(manifests, filepath.Base(f))
		}
	}
	got := strs(get(readYAML(t, filepath.Join(k8sDir, "kustomization.yaml")), "resources"))
	sort.Strings(got)
	if !slices.Equal(got, manifests) {
		t.Errorf("kustomization resources %v, want every manifest %v", got, manifests)
	}
	for _, obj := range k8sObjects(t) {
		if get(obj, "kind") == "Secret" {
			t.Errorf("%s ships a Secret %s; reference it instead", k8sDir, str(get(obj, "metadata", "name")))
		}
	}
}

func k8sContainer(t *testing.T, pod any, name string) any {
	for _, c := range list(get(pod, "containers")) {
		if str(get(c, "name")) == name {
			return c
		}
	}
	t.Fatalf("Deployment has no container %s", name)
	return nil
}

// selects reports whether selector's labels are all in labels.
func selects(selector any, labels map[string]any) bool {
	sel, ok := selector.(map[string]any)
	if !ok || len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
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

package deploy

import (
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

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
			c.sharedKeyFiles(t, composeConfig(t).name)
			for _, f := range c.keyFiles() {
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

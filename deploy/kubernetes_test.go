package deploy

import (
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

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
	// Every key file is installed by the init container from the Secret
	// (named as the file) into a volume the container mounts at its
	// directory.
	c.sharedKeyFiles(t, k8sConfig(t).name)
	init := k8sContainer(t, map[string]any{"containers": get(pod, "initContainers")}, "keys")
	script := strings.Join(strs(get(init, "command")), "\n")
	initMounts := map[string]string{}
	for _, m := range list(get(init, "volumeMounts")) {
		initMounts[str(get(m, "mountPath"))] = str(get(m, "name"))
	}
	secretDir := ""
	for path, vol := range initMounts {
		if str(get(volumes[vol], "secret", "secretName")) != "" {
			secretDir = path
		}
	}
	for _, f := range c.keyFiles() {
		dir := filepath.Dir(f)
		m := mounts[dir]
		if m == nil {
			t.Errorf("key file %s: no volume mounted at %s", f, dir)
			continue
		}
		if initMounts[dir] != str(get(m, "name")) {
			t.Errorf("key file %s: init container keys does not mount volume %s at %s", f, str(get(m, "name")), dir)
		}
		if !installs(script, secretDir, filepath.Base(f), dir) {
			t.Errorf("init container keys does not install %s from the Secret (mounted at %q):\n%s", f, secretDir, script)
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

// installs reports whether an init script copies secretDir/name into dir:
// `install ... name ... dir/` after `cd secretDir`, or with full paths.
func installs(script, secretDir, name, dir string) bool {
	for _, line := range strings.Split(script, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "install" || strings.TrimSuffix(f[len(f)-1], "/") != dir {
			continue
		}
		cdInto := strings.Contains(script, "cd "+secretDir+"\n")
		for _, arg := range f[1 : len(f)-1] {
			if arg == filepath.Join(secretDir, name) || (cdInto && arg == name) {
				return true
			}
		}
	}
	return false
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

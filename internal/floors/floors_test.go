package floors

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/sallyport/sallyport/"

// below are the packages on the lower floors, and above the ones they must
// never import, directly or through another package (subpackages included).
var (
	below = []string{"auditexport", "ca", "discover", "iga", "recorder", "search"}
	above = []string{"proxy", "scim", "web"}
)

// listed is what go list -json says of one package.
type listed struct {
	ImportPath string
	Imports    []string
	DepOnly    bool
}

// TestLowerFloorsDoNotImportUpward lists every package the lower floors
// build from (tests aside: an external test may drive a proxy) and names
// each import of a package above them.
func TestLowerFloorsDoNotImportUpward(t *testing.T) {
	pkgs := goListDeps(t)
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	roots := 0
	for _, p := range pkgs {
		if !p.DepOnly {
			roots++
		}
		if isAbove(p.ImportPath) {
			continue // reached through an import already reported
		}
		for _, imp := range p.Imports {
			if isAbove(imp) {
				t.Errorf("%s imports %s: %s must stay below %s (DESIGN §12)",
					p.ImportPath, imp, strings.Join(below, ", "), strings.Join(above, " and "))
			}
		}
	}
	if roots < len(below) {
		t.Errorf("go list matched %d packages, want at least %d (%v)", roots, len(below), below)
	}
}

func goListDeps(t *testing.T) []listed {
	t.Helper()
	args := []string{"list", "-deps", "-json=ImportPath,Imports,DepOnly"}
	for _, b := range below {
		args = append(args, module+b+"/...")
	}
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs
		} else if err != nil {
			t.Fatalf("parse go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
}

func isAbove(path string) bool {
	rel, ok := strings.CutPrefix(path, module)
	if !ok {
		return false
	}
	for _, a := range above {
		if rel == a || strings.HasPrefix(rel, a+"/") {
			return true
		}
	}
	return false
}

package deploy

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// dockerStage is one FROM ... section of a Dockerfile.
type dockerStage struct {
	from   string // image, with ARG defaults expanded
	instrs [][2]string
}

// all joins the arguments of every instruction cmd, one per line.
func (s dockerStage) all(cmd string) string {
	var out []string
	for _, in := range s.instrs {
		if in[0] == cmd {
			out = append(out, in[1])
		}
	}
	return strings.Join(out, "\n")
}

// last returns the arguments of the last instruction cmd: the one that counts.
func (s dockerStage) last(cmd string) string {
	for i := len(s.instrs) - 1; i >= 0; i-- {
		if s.instrs[i][0] == cmd {
			return s.instrs[i][1]
		}
	}
	return ""
}

// parseDockerfile splits a Dockerfile into stages: comments dropped,
// continuation lines joined, global ARG defaults expanded in FROM.
func parseDockerfile(t *testing.T, path string) []dockerStage {
	t.Helper()
	args := map[string]string{}
	var stages []dockerStage
	var pending string
	for _, line := range strings.Split(string(readFile(t, path)), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && pending == "") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			pending += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		instr := strings.TrimSpace(pending + trimmed)
		pending = ""
		if instr == "" {
			continue
		}
		cmd, rest, _ := strings.Cut(instr, " ")
		cmd, rest = strings.ToUpper(cmd), strings.TrimSpace(rest)
		switch {
		case cmd == "ARG" && len(stages) == 0:
			k, v, _ := strings.Cut(rest, "=")
			args[k] = v
		case cmd == "FROM":
			image := strings.Fields(os.Expand(rest, func(k string) string { return args[k] }))[0]
			stages = append(stages, dockerStage{from: image})
		case len(stages) > 0:
			s := &stages[len(stages)-1]
			s.instrs = append(s.instrs, [2]string{cmd, rest})
		}
	}
	return stages
}

// execForm decodes an exec-form instruction argument (a JSON array).
func execForm(t *testing.T, s string) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("%q: want the exec form [\"cmd\", \"arg\", ...]: %v", s, err)
	}
	return argv
}

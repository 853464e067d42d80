package recorder

import (
	"fmt"
	"math/rand/v2"
)

// termSample returns n bytes of terminal output as a pty delivers it while
// a person works: `ls -lR --color` listings, `tree` with box drawing,
// compiler diagnostics with colours, shell prompts with OSC titles, and
// some non-ASCII text, all with CR LF line ends. It is deterministic.
func termSample(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]byte, 0, n+4096)
	for len(out) < n {
		switch k := rng.IntN(10); {
		case k < 5:
			out = appendListing(out, rng)
		case k < 7:
			out = appendCompiler(out, rng)
		case k < 8:
			out = appendTree(out, rng)
		default:
			out = appendPrompt(out, rng)
		}
	}
	return out[:n]
}

var (
	sampleWords = []string{"bin", "lib", "share", "doc", "src", "main", "config", "server", "client", "proxy",
		"recorder", "session", "handler", "README", "LICENSE", "Makefile", "test", "util", "index", "cache",
		"postgres", "mysql", "ssh", "keys", "logs", "data", "tmp", "build", "vendor", "node_modules"}
	sampleExts  = []string{"", ".go", ".c", ".h", ".md", ".txt", ".json", ".yaml", ".sh", ".py", ".tar.gz", ".so.6"}
	sampleUsers = []string{"root", "alice", "bob", "www-data", "postgres"}
	sampleMonth = []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
	sampleColor = []string{"01;34", "01;32", "00", "01;36", "01;31", "01;35"}
	sampleMsgs  = []string{"undefined: frobnicate", "declared and not used: tmp", "cannot use x (variable of type int) as string value",
		"missing return", "implicit declaration of function ‘strlcpy’", "unused variable ‘größe’ [-Wunused-variable]"}
)

func sampleName(rng *rand.Rand) string {
	name := sampleWords[rng.IntN(len(sampleWords))]
	if rng.IntN(2) == 0 {
		name += "_" + sampleWords[rng.IntN(len(sampleWords))]
	}
	return name + sampleExts[rng.IntN(len(sampleExts))]
}

func appendListing(out []byte, rng *rand.Rand) []byte {
	out = fmt.Appendf(out, "./%s/%s:\r\ntotal %d\r\n", sampleName(rng), sampleName(rng), rng.IntN(900))
	for range 3 + rng.IntN(20) {
		mode, color := "-rw-r--r--", sampleColor[2+rng.IntN(4)]
		if rng.IntN(4) == 0 {
			mode, color = "drwxr-xr-x", sampleColor[0]
		}
		user := sampleUsers[rng.IntN(len(sampleUsers))]
		out = fmt.Appendf(out, "%s %2d %-8s %-8s %8d %s %2d %02d:%02d \x1b[%sm%s\x1b[0m\r\n", mode, 1+rng.IntN(12), user, user,
			rng.IntN(1<<20), sampleMonth[rng.IntN(12)], 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), color, sampleName(rng))
	}
	return append(out, "\r\n"...)
}

func appendCompiler(out []byte, rng *rand.Rand) []byte {
	for range 1 + rng.IntN(6) {
		line, col := 1+rng.IntN(2000), 1+rng.IntN(80)
		out = fmt.Appendf(out, "\x1b[01m\x1b[K%s/%s.go:%d:%d:\x1b[m\x1b[K \x1b[01;31m\x1b[Kerror: \x1b[m\x1b[K%s\r\n",
			sampleWords[rng.IntN(len(sampleWords))], sampleName(rng), line, col, sampleMsgs[rng.IntN(len(sampleMsgs))])
		out = fmt.Appendf(out, " %4d | \tif err := %s(ctx, %s); err != nil {\r\n      | \t\x1b[01;31m\x1b[K%*s^~~~~\x1b[m\x1b[K\r\n",
			line, sampleName(rng), sampleWords[rng.IntN(len(sampleWords))], rng.IntN(30), "")
	}
	return out
}

func appendTree(out []byte, rng *rand.Rand) []byte {
	out = append(out, ".\r\n"...)
	for i := range 2 + rng.IntN(15) {
		branch := "├── "
		if i%5 == 4 {
			branch = "└── "
		}
		out = fmt.Appendf(out, "%s%s\x1b[%sm%s\x1b[0m\r\n", []string{"", "│   ", "│   │   "}[rng.IntN(3)], branch,
			sampleColor[rng.IntN(len(sampleColor))], sampleName(rng))
	}
	return out
}

func appendPrompt(out []byte, rng *rand.Rand) []byte {
	user := sampleUsers[rng.IntN(len(sampleUsers))]
	return fmt.Appendf(out, "\x1b]0;%s@web-01: ~/%s\x07\x1b[01;32m%s@web-01\x1b[00m:\x1b[01;34m~/%s\x1b[00m$ %s %s\r\n",
		user, sampleName(rng), user, sampleName(rng), []string{"ls -lR", "make", "tree", "cat", "grep -rn"}[rng.IntN(5)], sampleName(rng))
}

// randomSample is the worst case: n bytes of random binary (`cat` of a
// compressed file), where most bytes need escaping and nothing repeats.
func randomSample(n int) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(rng.Uint32())
	}
	return out
}

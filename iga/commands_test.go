package iga_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sallyport/sallyport/iga"
)

func TestCommandMatches(t *testing.T) {
	const backup = "/usr/local/bin/backup.sh *"
	for _, tc := range []struct {
		pattern, command string
		want             bool
	}{
		{backup, "/usr/local/bin/backup.sh nightly", true},
		{backup, "/usr/local/bin/backup.sh weekly-2026.11", true},
		{backup, "id", false},
		{backup, "/usr/local/bin/backup.sh", false},  // * is one or more characters
		{backup, "/usr/local/bin/backup.sh ", false}, // … not none
		{backup, "/usr/local/bin/backup.sh x; id", false},
		{backup, "/usr/local/bin/backup.sh x;id", false},
		{backup, "/usr/local/bin/backup.sh $(id)", false},
		{backup, "/usr/local/bin/backup.sh `id`", false},
		{backup, "/usr/local/bin/backup.sh x | sh", false},
		{backup, "/usr/local/bin/backup.sh x|sh", false},
		{backup, "/usr/local/bin/backup.sh x && id", false},
		{backup, "/usr/local/bin/backup.sh x\nid", false},
		{backup, "/usr/local/bin/backup.sh x\rid", false},
		{backup, "/usr/local/bin/backup.sh x\x00id", false},
		{backup, "/usr/local/bin/backup.sh x > /etc/passwd", false},
		{backup, "/usr/local/bin/backup.sh <x", false},
		{backup, "/usr/local/bin/backup.sh (id)", false},
		{backup, "/usr/local/bin/backup.sh 'a;b'", false},
		{backup, `/usr/local/bin/backup.sh a\ b`, false},
		{backup, `/usr/local/bin/backup.sh "x"`, false},
		{backup, "/usr/local/bin/backup.sh a b", false},  // one word: * never matches a space
		{backup, "/usr/local/bin/backup.sh  x", false},   // two spaces: the literal has one
		{backup, "/usr/local/bin/backup.sh\tx", false},   // a tab is not the literal space
		{backup, "/usr/local/bin/backup.sh /etc", false}, // * never matches /
		{backup, "/usr/local/bin/backup.sh --help", false},
		{backup, "/usr/local/bin/backup.sh -x", false},
		{backup, "/usr/local/bin/backup.sh x*", false},
		{backup, "/usr/local/bin/backup.sh ~root", false},
		{backup, "/usr/local/bin/backup.sh {a,b}", false},
		{backup, "/usr/local/bin/backup.sh \xff\xfe", false},
		{backup, "/usr/local/bin/backup.sh é", false},
		{backup, "/usr/local/bin/backup.sh ..", false},
		{backup, "/usr/local/bin/backup.sh.bak x", false},
		{"backup.sh --mode=*", "backup.sh --mode=full", true},
		{"backup.sh --mode=*", "backup.sh --mode=-x", true}, // not at a word start
		{"backup.sh --mode=*", "backup.sh --mode=", false},
		{"tar -czf /backups/*.tgz /srv/*", "tar -czf /backups/web.tgz /srv/www", true},
		{"tar -czf /backups/*.tgz /srv/*", "tar -czf /backups/web.tgz /srv/..", false},
		{"tar -czf /backups/*.tgz /srv/*", "tar -czf /backups/web.tgz /srv/www/../..", false},
		{"tar -czf /backups/*.tgz /srv/*", "tar -czf /backups/../x.tgz /srv/www", false},
		{"tar -czf /backups/*.tgz /srv/*", "tar -czf /backups/a/b.tgz /srv/www", false},
		{"cat /var/log/*.log", "cat /var/log/.log", false},
		{"cat /var/log/*.log", "cat /var/log/a.log.log", true},
		{"cat /var/log/*.log", "cat /var/log/x.log; id; cat /var/log/y.log", false},
		{"echo a*b*c", "echo aXbYc", true},
		{"echo a*b*c", "echo abc", false},
		// Literal parts match exactly, shell syntax included.
		{"pg_dump app | gzip", "pg_dump app | gzip", true},
		{"pg_dump app | gzip", "pg_dump app  | gzip", false},
		{"pg_dump * | gzip", "pg_dump app | gzip", true},
		{"pg_dump * | gzip", "pg_dump app | gzip | sh", false},
		{"uptime", "uptime", true},
		{"uptime", "uptime ", false},
		{"uptime", " uptime", false},
		{"uptime", "UPTIME", false},
		{"uptime", "", false},
		{"echo ..", "echo ..", true}, // exact patterns match exactly, dots included
	} {
		t.Run(tc.pattern+" ← "+tc.command, func(t *testing.T) {
			assert.Equal(t, tc.want, iga.CommandMatches(tc.pattern, tc.command), "CommandMatches(%q, %q)", tc.pattern, tc.command)
		})
	}
}

func TestCommandMatchesHugeAndBrokenInput(t *testing.T) {
	huge := "/usr/local/bin/backup.sh " + strings.Repeat("a", 1<<20)
	assert.False(t, iga.CommandMatches("/usr/local/bin/backup.sh *", huge), "a 1 MB command line is refused")
	assert.True(t, iga.CommandMatches(huge, huge), "an exact pattern matches the identical string whatever its length")
	assert.False(t, iga.CommandMatches("/usr/local/bin/backup.sh *", "/usr/local/bin/backup.sh "+strings.Repeat("\xff", 1<<20)))
	assert.False(t, iga.CommandMatches("a*a*a*a*a*b", "a "+strings.Repeat("a", 100<<10)), "no match and no blow-up")
}

func TestCheckCommandPattern(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		want    string // part of the error; "" for none
	}{
		{"/usr/local/bin/backup.sh *", ""},
		{"pg_dump app | gzip", ""},
		{"", "empty"},
		{"   ", "empty"},
		{"*", "any command"},
		{"* *", "any command"},
		{"*/backup.sh x", "program"},
		{"backup.sh\nid", "control character"},
		{"backup.sh\x00", "control character"},
		{"backup.sh\tx", "control character"},
		{"backup.sh \xff", "UTF-8"},
		{" backup.sh", "whitespace"},
		{"backup.sh x ", "whitespace"},
		{"backup.sh **", "**"},
		{"backup.sh " + strings.Repeat("x", iga.MaxCommandPattern), "longer than 4096"},
	} {
		t.Run(tc.pattern, func(t *testing.T) {
			err := iga.CheckCommandPattern(tc.pattern)
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			if assert.Error(t, err) {
				assert.Contains(t, err.Error(), tc.want)
			}
		})
	}
}

func TestStdinInterpreter(t *testing.T) {
	for pattern, want := range map[string]bool{
		"bash": true, "/bin/sh": true, "bash -s": true, "bash -s *": true, "python3 -": true, "/usr/bin/python3.12": true,
		"perl": true, "sh -c uptime": false, "python3 /opt/job.py": false, "/usr/local/bin/backup.sh *": false, "bashful": false,
	} {
		_, got := iga.StdinInterpreter(pattern)
		assert.Equal(t, want, got, "StdinInterpreter(%q)", pattern)
	}
}

// FuzzCommandMatch checks that matching never panics, and that whatever
// a pattern with * admits carries exactly the shell-significant bytes of
// the pattern's literal parts: a * adds only letters, digits and _.,:=+@%-.
func FuzzCommandMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"/usr/local/bin/backup.sh *", "/usr/local/bin/backup.sh nightly"},
		{"/usr/local/bin/backup.sh *", "/usr/local/bin/backup.sh x; id"},
		{"tar -czf /backups/*.tgz /srv/*", "tar -czf /backups/a.tgz /srv/b"},
		{"pg_dump * | gzip", "pg_dump a | gzip"},
		{"echo a*b*c", "echo a$b;c"},
		{"x *", "x \xff"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, command string) {
		if !iga.CommandMatches(pattern, command) || !strings.Contains(pattern, "*") {
			return
		}
		const wild = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,:=+@%-"
		special := func(s string) map[byte]int {
			m := map[byte]int{}
			for i := range len(s) {
				if !strings.ContainsRune(wild, rune(s[i])) {
					m[s[i]]++
				}
			}
			return m
		}
		want := special(strings.ReplaceAll(pattern, "*", ""))
		if got := special(command); !assert.ObjectsAreEqual(want, got) {
			t.Fatalf("%q admits %q, whose shell-significant bytes %v are not the literal parts' %v", pattern, command, got, want)
		}
	})
}

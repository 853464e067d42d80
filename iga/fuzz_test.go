package iga_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// FuzzParseFile checks that ParseFile never panics and that every file it
// accepts survives MarshalDoc: re-parsing the output gives the same Doc
// (sorted as MarshalDoc sorts), and marshalling that again gives the same bytes.
// Seeds: every .yaml under testdata/registries (good and bad files, and
// inputs fuzzing once found) plus the bad-input table of file_test.go.
func FuzzParseFile(f *testing.F) {
	err := filepath.WalkDir(registriesDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := os.ReadFile(path)
		f.Add(data)
		return err
	})
	require.NoError(f, err)
	for _, tc := range badFiles {
		f.Add([]byte(tc.yaml))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := iga.ParseFile("fuzz.yaml", data)
		if err != nil {
			require.NotEmpty(t, err.Error(), "a refusal must say why")
			return
		}
		out, err := iga.MarshalDoc(file.Doc)
		require.NoError(t, err, "marshal an accepted file")
		again, err := iga.ParseFile("again.yaml", out)
		require.NoError(t, err, "re-parse the marshalled file:\n%s", out)
		require.Equal(t, sortedDoc(file.Doc), again.Doc, "the doc changed through MarshalDoc:\n%s", out)
		out2, err := iga.MarshalDoc(again.Doc)
		require.NoError(t, err)
		require.Equal(t, string(out), string(out2), "marshalling is not stable")
	})
}

// sortedDoc orders people and identities by id, as MarshalDoc writes them.
func sortedDoc(d iga.Doc) iga.Doc {
	d.People = slices.Clone(d.People)
	d.Identities = slices.Clone(d.Identities)
	slices.SortFunc(d.People, func(a, b iga.Person) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(d.Identities, func(a, b iga.Identity) int { return strings.Compare(a.ID, b.ID) })
	return d
}

package mysql_test

import (
	"testing"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/proxy/internal/registrytest"
)

// The test registry: see registrytest.
const okIdentity = registrytest.OKIdentity

func passing(id string) iga.Identity { return registrytest.Passing(id, targetName) }

func failing() map[string]iga.Identity { return registrytest.Failing(targetName) }

func seed(t testing.TB, s iga.Store) { registrytest.Seed(t, s, targetName) }

package memory_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/chronolog/chronolog/adapters/eventstore/eventstoretest"
	"github.com/chronolog/chronolog/adapters/eventstore/memory"
	"github.com/chronolog/chronolog/domain/eventstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestContract(t *testing.T) {
	eventstoretest.Run(t, func(*testing.T) eventstore.Store { return memory.New() })
}

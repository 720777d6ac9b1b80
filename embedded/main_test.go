package embedded_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/rocketry-mq/rocketry/internal/testcluster"
)

// Example uses the official Go SDK v5, which leaves some goroutines behind; every other
// goroutine must be gone.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testcluster.IgnoreSDK...) }

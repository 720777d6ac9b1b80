package txn

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaks a goroutine (the scanner, store goroutines).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

package txn

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaks a goroutine (the scanner, store goroutines).
// With crashChildEnv set, the binary is the child process of TestKill9CommittedBeforeOp.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

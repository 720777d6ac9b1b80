//go:build race

package proxy

// Under -race the go5 SDK tests are not built (see e2e_test.go), so every goroutine left at the
// end belongs to the proxy or its test backends and must be gone.
func init() { checkLeaks = true }

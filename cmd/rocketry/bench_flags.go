package main

import (
	"os"

	"github.com/spf13/pflag"

	"github.com/rocketry-mq/rocketry/bench"
)

// sdkFlags are the connection flags shared by produce, consume and bench (official Go SDK v5
// talking gRPC to a Proxy).
type sdkFlags struct {
	endpoint, accessKey, secretKey, namespace string
}

func (f *sdkFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.endpoint, "endpoint", envOr("ROCKETRY_ENDPOINT", "127.0.0.1:8081"), "proxy gRPC endpoint host:port (env ROCKETRY_ENDPOINT)")
	fs.StringVar(&f.accessKey, "access-key", os.Getenv("ROCKETRY_ACCESS_KEY"), "ACL access key (env ROCKETRY_ACCESS_KEY)")
	fs.StringVar(&f.secretKey, "secret-key", os.Getenv("ROCKETRY_SECRET_KEY"), "ACL secret key (env ROCKETRY_SECRET_KEY)")
	fs.StringVar(&f.namespace, "namespace", "", "resource namespace")
}

func (f *sdkFlags) config() bench.ClientConfig {
	return bench.ClientConfig{Endpoint: f.endpoint, AccessKey: f.accessKey, SecretKey: f.secretKey, Namespace: f.namespace}
}

func envOr(k, def string) string {
	if v, ok := os.LookupEnv(k); ok && v != "" {
		return v
	}
	return def
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

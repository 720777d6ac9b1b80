package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"

	"github.com/rocketry-mq/rocketry/internal/logging"
	"github.com/rocketry-mq/rocketry/internal/proxy"
	"github.com/rocketry-mq/rocketry/internal/proxy/cluster"
)

// TestProxyConfigFileJSON: Apache's rmq-proxy.json (JSON) is read like a properties file
// (QA F23), flags still win.
func TestProxyConfigFileJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rmq-proxy.json")
	json := `{
  "rocketMQClusterName": "DefaultCluster",
  "namesrvAddr": "10.0.0.9:9876",
  "grpcServerPort": 18081,
  "authenticationEnabled": false,
  "autoCreateTopicEnable": true
}`
	if err := os.WriteFile(path, []byte(json), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := &cobra.Command{}
	cmd.Flags().String("grpc-listen", "", "")
	cfg, ccfg, ns := proxy.DefaultConfig(), cluster.DefaultConfig(), ""
	if err := applyProxyConfigFile(cmd, path, &cfg, &ccfg, &ns, logging.Discard()); err != nil {
		t.Fatal(err)
	}
	if ns != "10.0.0.9:9876" || cfg.GRPCListen != ":18081" || !cfg.AutoCreateTopic || cfg.Auth {
		t.Fatalf("from JSON: namesrv %q, listen %q, autoCreate %v, auth %v", ns, cfg.GRPCListen, cfg.AutoCreateTopic, cfg.Auth)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"grpcServerPort": {"x": 1}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := applyProxyConfigFile(cmd, bad, &cfg, &ccfg, &ns, logging.Discard()); err == nil {
		t.Fatal("nested JSON value accepted")
	}
}

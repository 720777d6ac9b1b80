package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rocketry-mq/rocketry/internal/broker"
	"github.com/rocketry-mq/rocketry/internal/logging"
	"github.com/rocketry-mq/rocketry/internal/metrics"
	"github.com/rocketry-mq/rocketry/internal/proxy"
	"github.com/rocketry-mq/rocketry/internal/proxy/cluster"
)

func init() {
	addCommand(func() *cobra.Command {
		var (
			namesrv    string
			httpListen string
			configFile string
			logFormat  string
			logLevel   string
		)
		cfg := proxy.DefaultConfig()
		ccfg := cluster.DefaultConfig()
		cmd := &cobra.Command{
			Use:   "proxy",
			Short: "Run a gRPC proxy (cluster mode) for the official RocketMQ 5 SDKs",
			Long: "Run a stateless proxy serving apache.rocketmq.v2.MessagingService (TLS and plaintext on\n" +
				"one port) in front of the brokers found through the NameServers.",
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				logger, err := logging.New(os.Stderr, logging.Config{Format: logFormat, Level: logLevel})
				if err != nil {
					return err
				}
				if configFile != "" {
					// The file sets the base; flags given explicitly override it.
					if err := applyProxyConfigFile(cmd, configFile, &cfg, &ccfg, &namesrv, logger); err != nil {
						return err
					}
				}
				for _, a := range strings.Split(namesrv, ";") {
					if a = strings.TrimSpace(a); a != "" {
						ccfg.NamesrvAddrs = append(ccfg.NamesrvAddrs, a)
					}
				}
				be, err := cluster.New(ccfg, logger)
				if err != nil {
					return err
				}
				defer be.Close()
				var opts []proxy.Option
				var httpLn net.Listener
				reg := metrics.NewRegistry()
				health := metrics.NewHealth()
				ready := health.Flag("proxy")
				health.Add("namesrv", func() error {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					defer cancel()
					return be.Ready(ctx)
				})
				if httpListen != "" {
					node := reg.Node(metrics.NodeInfo{Cluster: "DefaultCluster", Type: metrics.NodeProxy, ID: ccfg.ClientID})
					opts = append(opts, proxy.WithMetrics(node))
					if httpLn, err = net.Listen("tcp", httpListen); err != nil {
						return fmt.Errorf("proxy: http listen %s: %w", httpListen, err)
					}
				}
				srv, err := proxy.New(cfg, be, logger, opts...)
				if err != nil {
					if httpLn != nil {
						httpLn.Close()
					}
					return err
				}
				defer srv.Close()
				ctx, cancel := context.WithCancel(cmd.Context())
				defer cancel()
				go be.Run(ctx)
				if httpLn != nil {
					go metrics.Serve(ctx, httpLn, metrics.NewMux(reg, health), logger)
				}
				ready.Set()
				if err := srv.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
					return fmt.Errorf("proxy: %w", err)
				}
				return nil
			},
		}
		f := cmd.Flags()
		f.StringVar(&cfg.GRPCListen, "grpc-listen", cfg.GRPCListen, "gRPC listen address")
		f.StringVar(&namesrv, "namesrv-addr", "127.0.0.1:9876", "NameServer addresses, ';'-separated")
		f.StringVar(&httpListen, "http-listen", "", "HTTP address for /healthz, /metrics and /debug/pprof/ (off when empty)")
		f.StringVar(&cfg.AdvertiseAddr, "advertise-addr", cfg.AdvertiseAddr, "host:port returned in routes (default: the address the client dialled)")
		f.StringVar(&cfg.TLSMode, "tls-mode", cfg.TLSMode, "TLS mode of the gRPC port: disabled, permissive or enforcing")
		f.StringVar(&cfg.TLSCertFile, "tls-cert", "", "PEM certificate (default: a generated self-signed one)")
		f.StringVar(&cfg.TLSKeyFile, "tls-key", "", "PEM private key of --tls-cert")
		f.BoolVar(&cfg.Auth, "auth", cfg.Auth, "require AccessKey/SecretKey authentication and enforce --acl-file policies")
		f.StringVar(&cfg.ACLFile, "acl-file", cfg.ACLFile, "JSON users and policies (reloaded on change)")
		f.DurationVar(&cfg.AuthClockSkew, "auth-clock-skew", cfg.AuthClockSkew, "accepted age/skew of x-mq-date-time (0 disables the replay guard)")
		f.BoolVar(&cfg.AutoCreateTopic, "auto-create-topic", cfg.AutoCreateTopic, "create unknown topics (NORMAL, --auto-create-queues queues) on first use")
		f.IntVar(&cfg.AutoCreateQueues, "auto-create-queues", cfg.AutoCreateQueues, "queue count of auto-created topics")
		f.DurationVar(&cfg.MinInvisible, "min-invisible", cfg.MinInvisible, "smallest accepted invisible duration (each broker must allow it too: popMinInvisibleTime in broker.conf, default 10s)")
		f.DurationVar(&ccfg.CacheTTL, "route-cache-ttl", ccfg.CacheTTL, "how long routes and configs are cached")
		f.StringVar(&configFile, "config", "", "properties or JSON (rmq-proxy.json) file (grpcServerPort, namesrvAddr, tls.server.mode, authenticationEnabled, aclFile, ...); flags override it")
		f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
		f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
		return cmd
	})
}

// applyProxyConfigFile loads a properties file under the flags: every flag the user set
// explicitly keeps its value.
func applyProxyConfigFile(cmd *cobra.Command, path string, cfg *proxy.Config, ccfg *cluster.Config, namesrv *string, logger *slog.Logger) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("proxy: config: %w", err)
	}
	// Java properties, or JSON as Apache's rmq-proxy.json.
	var props map[string]string
	if proxy.IsJSONConfig(data) {
		props, err = proxy.JSONProperties(data)
	} else {
		props, err = broker.ReadProperties(bytes.NewReader(data))
	}
	if err != nil {
		return fmt.Errorf("proxy: config %s: %w", path, err)
	}
	flags := *cfg
	base := proxy.DefaultConfig()
	warnings, err := base.ApplyProperties(props)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		logger.Warn("proxy: config file: " + w)
	}
	fl := cmd.Flags()
	keep := map[string]func(){
		"grpc-listen":        func() { base.GRPCListen = flags.GRPCListen },
		"advertise-addr":     func() { base.AdvertiseAddr = flags.AdvertiseAddr },
		"tls-mode":           func() { base.TLSMode = flags.TLSMode },
		"tls-cert":           func() { base.TLSCertFile = flags.TLSCertFile },
		"tls-key":            func() { base.TLSKeyFile = flags.TLSKeyFile },
		"auth":               func() { base.Auth = flags.Auth },
		"acl-file":           func() { base.ACLFile = flags.ACLFile },
		"auth-clock-skew":    func() { base.AuthClockSkew = flags.AuthClockSkew },
		"auto-create-topic":  func() { base.AutoCreateTopic = flags.AutoCreateTopic },
		"auto-create-queues": func() { base.AutoCreateQueues = flags.AutoCreateQueues },
		"min-invisible":      func() { base.MinInvisible = flags.MinInvisible },
	}
	for name, restore := range keep {
		if fl.Changed(name) {
			restore()
		}
	}
	*cfg = base
	if v, ok := props["namesrvAddr"]; ok && !fl.Changed("namesrv-addr") {
		*namesrv = v
	}
	if v, ok := props["routeCacheTtlMs"]; ok && !fl.Changed("route-cache-ttl") {
		var ms int64
		if _, err := fmt.Sscan(v, &ms); err != nil || ms <= 0 {
			return fmt.Errorf("proxy: config key routeCacheTtlMs=%q: want milliseconds", v)
		}
		ccfg.CacheTTL = time.Duration(ms) * time.Millisecond
	}
	return nil
}

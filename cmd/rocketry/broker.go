package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/rocketry-mq/rocketry/internal/broker"
	"github.com/rocketry-mq/rocketry/internal/logging"
	"github.com/rocketry-mq/rocketry/internal/metrics"
)

func init() { addCommand(newBrokerCmd) }

func newBrokerCmd() *cobra.Command {
	var (
		listen, namesrv, cluster, name, dataDir, configFile, advertise, logFormat, logLevel, httpListen string
		tlsMode, tlsCert, tlsKey                                                                        string
		id                                                                                              int64
	)
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run a Broker (RocketMQ remoting on --listen, registered with --namesrv-addr)",
		Long: `Run a RocketMQ-compatible Broker.

Settings come from a broker.conf properties file (--config, RocketMQ's keys; unknown keys are
logged and ignored) and from flags, which override the file. The broker registers with every
NameServer at start, every registerNameServerPeriod (30 s) and after topic changes, and
unregisters, flushes and closes its files on SIGTERM.`,
		Example: `  rocketry broker --namesrv-addr 127.0.0.1:9876 --data-dir ./data/broker-a --name broker-a
  rocketry broker --config conf/broker.conf --advertise-addr 10.0.0.5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := logging.New(os.Stderr, logging.Config{Format: logFormat, Level: logLevel})
			if err != nil {
				return err
			}
			cfg := broker.DefaultConfig()
			confLog := logger.With("component", "broker") // config warnings name their component
			if configFile != "" {
				if err := broker.LoadConfigFile(&cfg, configFile, confLog); err != nil {
					return err
				}
			}
			// Flags override the file: apply only those set on the command line.
			flags := map[string]string{}
			set := func(flag, key, v string) {
				if cmd.Flags().Changed(flag) {
					flags[key] = v
				}
			}
			set("namesrv-addr", "namesrvAddr", namesrv)
			set("cluster", "brokerClusterName", cluster)
			set("name", "brokerName", name)
			set("id", "brokerId", strconv.FormatInt(id, 10))
			set("data-dir", "storePathRootDir", dataDir)
			set("tls-mode", "tls.server.mode", tlsMode)
			set("tls-cert", "tls.server.certPath", tlsCert)
			set("tls-key", "tls.server.keyPath", tlsKey)
			if err := broker.ApplyProperties(&cfg, flags, confLog); err != nil {
				return err
			}
			if cmd.Flags().Changed("listen") {
				cfg.ListenAddr = listen
			}
			if cmd.Flags().Changed("advertise-addr") {
				cfg.AdvertiseAddr = advertise
			}
			var opts []broker.Option
			var httpLn net.Listener
			var mux http.Handler
			if httpListen != "" {
				reg, health := metrics.NewRegistry(), metrics.NewHealth()
				opts = append(opts, broker.WithMetrics(reg, health))
				mux = metrics.NewMux(reg, health)
				if httpLn, err = net.Listen("tcp", httpListen); err != nil {
					return fmt.Errorf("broker: http listen %s: %w", httpListen, err)
				}
			}
			b, err := broker.New(cfg, logger, opts...)
			if err != nil {
				if httpLn != nil {
					_ = httpLn.Close()
				}
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			httpDone := make(chan error, 1)
			if httpLn != nil {
				go func() { httpDone <- metrics.Serve(ctx, httpLn, mux, logger) }()
			} else {
				httpDone <- nil
			}
			runErr := b.Run(ctx)
			cancel() // stops the HTTP server too when Run ended on its own
			if err := b.Close(); err != nil && runErr == nil {
				runErr = err
			}
			if err := <-httpDone; err != nil && runErr == nil {
				runErr = err
			}
			if runErr != nil {
				return fmt.Errorf("broker: %w", runErr)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", ":10911", "remoting listen address (broker.conf listenPort)")
	f.StringVar(&namesrv, "namesrv-addr", "", `NameServer addresses, "a:9876;b:9876" (broker.conf namesrvAddr)`)
	f.StringVar(&cluster, "cluster", "DefaultCluster", "cluster name (brokerClusterName)")
	f.StringVar(&name, "name", "", "broker name (brokerName; default: host name)")
	f.Int64Var(&id, "id", 0, "broker id, 0 = master (brokerId)")
	f.StringVar(&dataDir, "data-dir", "rocketry-data/broker", "store and metadata directory (storePathRootDir)")
	f.StringVar(&configFile, "config", "", "broker.conf properties file")
	f.StringVar(&advertise, "advertise-addr", "", "address registered with NameServers, host or host:port (brokerIP1; default: first non-loopback IPv4)")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&tlsMode, "tls-mode", "permissive", "remoting TLS (tls.server.mode): permissive (TLS and plaintext clients on one port) or disabled")
	f.StringVar(&tlsCert, "tls-cert", "", "PEM certificate of the remoting port (tls.server.certPath; default: a generated self-signed one)")
	f.StringVar(&tlsKey, "tls-key", "", "PEM private key of --tls-cert (tls.server.keyPath)")
	f.StringVar(&httpListen, "http-listen", "", "HTTP listen address for /healthz, /metrics and /debug/pprof/ (off when empty)")
	return cmd
}

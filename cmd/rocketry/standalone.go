package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rocketry-mq/rocketry/internal/broker"
	"github.com/rocketry-mq/rocketry/internal/logging"
	"github.com/rocketry-mq/rocketry/internal/standalone"
)

func init() { addCommand(newStandaloneCmd) }

func newStandaloneCmd() *cobra.Command {
	var (
		configFile, logFormat, logLevel, flush string
		autoCreate                             bool
	)
	cfg := standalone.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "standalone",
		Short: "Run NameServer + Broker + Proxy + HTTP (/healthz, /metrics) in one process",
		Long: `Run a complete single-node deployment in one process: a NameServer (--namesrv-listen),
a Broker (--broker-listen, data in --data-dir), a Proxy for gRPC clients (--grpc-listen) and an
HTTP listener (--http-listen) serving /healthz, /metrics and /debug/pprof/.

Topics and consumer groups are created on first use (--auto-create=false to turn it off).
--config loads a broker.conf properties file (RocketMQ's keys; flags override it). SIGTERM or
Ctrl-C flushes the store and exits cleanly; restarting on the same --data-dir keeps every
message and offset.`,
		Example: `  rocketry standalone
  rocketry standalone --data-dir /var/lib/rocketry --flush-disk-type SYNC_FLUSH
  rocketry standalone --config broker.conf --advertise-addr 10.0.0.5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := logging.New(os.Stderr, logging.Config{Format: logFormat, Level: logLevel})
			if err != nil {
				return err
			}
			var proxyKeys map[string]string // keys of --config that configure the gRPC proxy
			if configFile != "" {
				before := cfg.Broker
				// The proxy's keys are taken out before the broker reads the file, so it
				// does not report them as ignored (QA R8R-1).
				if proxyKeys, err = broker.LoadConfigFileExcept(&cfg.Broker, configFile, logger.With("component", "broker"), "authenticationEnabled", "aclFile"); err != nil {
					return err
				}
				// The file's listenPort and storePathRootDir apply unless a flag says
				// otherwise (flags override the file; QA R5C-7).
				if cfg.Broker.ListenAddr != before.ListenAddr && !cmd.Flags().Changed("broker-listen") {
					cfg.BrokerListen = cfg.Broker.ListenAddr
				}
				if cfg.Broker.DataDir != before.DataDir && !cmd.Flags().Changed("data-dir") {
					cfg.DataDir, cfg.BrokerDataDir = cfg.Broker.DataDir, cfg.Broker.DataDir
				}
			}
			if cmd.Flags().Changed("flush-disk-type") || configFile == "" {
				cfg.Broker.FlushDiskType = flush
			}
			if cmd.Flags().Changed("auto-create") || configFile == "" {
				cfg.Broker.AutoCreateTopicEnable = autoCreate
				cfg.Broker.AutoCreateSubscriptionGroup = autoCreate
			}
			cfg.Proxy.AutoCreateTopic = cfg.Broker.AutoCreateTopicEnable
			// Apache's keys for the proxy's authentication, in the one config file standalone
			// reads (QA R8K-11); the flags win.
			if v, ok := proxyKeys["authenticationEnabled"]; ok && !cmd.Flags().Changed("auth") {
				cfg.Proxy.Auth = strings.EqualFold(strings.TrimSpace(v), "true")
			}
			if v, ok := proxyKeys["aclFile"]; ok && !cmd.Flags().Changed("acl-file") {
				cfg.Proxy.ACLFile = strings.TrimSpace(v)
			}
			if cfg.Proxy.Auth && cfg.Proxy.ACLFile == "" {
				return errors.New("authentication needs an ACL file: --acl-file (aclFile=) names it")
			}
			s, err := standalone.New(cfg, logger)
			if err != nil {
				return err
			}
			if err := s.Run(cmd.Context()); err != nil {
				return fmt.Errorf("standalone: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory of all data (broker store and metadata, NameServer KV)")
	f.StringVar(&cfg.NamesrvListen, "namesrv-listen", cfg.NamesrvListen, "NameServer remoting listen address")
	f.StringVar(&cfg.BrokerListen, "broker-listen", cfg.BrokerListen, "Broker remoting listen address")
	f.StringVar(&cfg.GRPCListen, "grpc-listen", cfg.GRPCListen, "Proxy gRPC listen address (official 5.x SDKs)")
	f.StringVar(&cfg.HTTPListen, "http-listen", cfg.HTTPListen, `HTTP listen address for /healthz, /metrics, /debug/pprof/ ("" disables)`)
	f.StringVar(&cfg.AdvertiseHost, "advertise-addr", cfg.AdvertiseHost, "host the broker and proxy advertise to clients")
	f.StringVar(&configFile, "config", "", "broker.conf properties file (flags override it)")
	f.StringVar(&flush, "flush-disk-type", cfg.Broker.FlushDiskType, "ASYNC_FLUSH (fsync in the background) or SYNC_FLUSH (fsync before replying)")
	f.BoolVar(&autoCreate, "auto-create", true, "create topics and consumer groups on first use")
	f.StringVar(&cfg.ProxyMode, "proxy-mode", cfg.ProxyMode, "proxy backend: local (direct calls into the broker) or cluster (remoting over loopback)")
	f.StringVar(&cfg.Proxy.TLSMode, "tls-mode", cfg.Proxy.TLSMode, "gRPC TLS: disabled, permissive (TLS and plaintext) or enforcing")
	f.BoolVar(&cfg.Proxy.Auth, "auth", cfg.Proxy.Auth, "require AccessKey/SecretKey authentication on the gRPC port and enforce --acl-file (config: authenticationEnabled=true)")
	f.StringVar(&cfg.Proxy.ACLFile, "acl-file", cfg.Proxy.ACLFile, "JSON users and policies, reloaded on change (config: aclFile=)")
	f.DurationVar(&cfg.Proxy.AuthClockSkew, "auth-clock-skew", cfg.Proxy.AuthClockSkew, "accepted age/skew of x-mq-date-time (0 disables the replay guard)")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

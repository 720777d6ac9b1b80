package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/rocketry-mq/rocketry/internal/logging"
	"github.com/rocketry-mq/rocketry/internal/namesrv"
)

func init() {
	addCommand(func() *cobra.Command {
		var (
			configFile string
			logFormat  string
			logLevel   string
		)
		cfg := namesrv.DefaultConfig()
		cmd := &cobra.Command{
			Use:   "namesrv",
			Short: "Run a NameServer (route registry for brokers and clients)",
			Long: "Run a NameServer. Brokers register their topics with it; clients look up routes.\n" +
				"Several NameServers run side by side without coordination; list them all in each\n" +
				"broker's and client's namesrv address.",
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				logger, err := logging.New(os.Stderr, logging.Config{Format: logFormat, Level: logLevel})
				if err != nil {
					return err
				}
				eff := cfg
				if configFile != "" {
					// The file sets the base; flags given explicitly override it.
					eff = namesrv.DefaultConfig()
					warnings, err := eff.LoadProperties(configFile)
					if err != nil {
						return err
					}
					for _, w := range warnings {
						logger.Warn("namesrv: config file: " + w)
					}
					fl := cmd.Flags()
					if fl.Changed("listen") {
						eff.Listen = cfg.Listen
					}
					if fl.Changed("http-listen") {
						eff.HTTPListen = cfg.HTTPListen
					}
					if fl.Changed("kv-config") {
						eff.KVConfigPath = cfg.KVConfigPath
					}
					if fl.Changed("tls-mode") {
						eff.TLS.Mode = cfg.TLS.Mode
					}
					if fl.Changed("tls-cert") {
						eff.TLS.CertFile = cfg.TLS.CertFile
					}
					if fl.Changed("tls-key") {
						eff.TLS.KeyFile = cfg.TLS.KeyFile
					}
					if fl.Changed("order-message-enable") {
						eff.OrderMessageEnable = cfg.OrderMessageEnable
					}
				}
				srv, err := namesrv.New(eff, logger)
				if err != nil {
					return err
				}
				if err := srv.Run(cmd.Context()); err != nil {
					return fmt.Errorf("namesrv: %w", err)
				}
				return nil
			},
		}
		f := cmd.Flags()
		f.StringVar(&cfg.Listen, "listen", cfg.Listen, "remoting listen address")
		f.StringVar(&cfg.HTTPListen, "http-listen", cfg.HTTPListen, "HTTP listen address for /healthz and /metrics (off when empty)")
		f.StringVar(&configFile, "config", "", "properties file (namesrv.conf keys: listenPort, scanNotActiveBrokerInterval, orderMessageEnable, kvConfigPath, ...); flags override it")
		f.StringVar(&cfg.TLS.Mode, "tls-mode", cfg.TLS.Mode, "remoting TLS (tls.server.mode): permissive (TLS and plaintext clients on one port) or disabled")
		f.StringVar(&cfg.TLS.CertFile, "tls-cert", "", "PEM certificate (tls.server.certPath; default: a generated self-signed one)")
		f.StringVar(&cfg.TLS.KeyFile, "tls-key", "", "PEM private key of --tls-cert (tls.server.keyPath)")
		f.StringVar(&cfg.KVConfigPath, "kv-config", cfg.KVConfigPath, "file persisting the KV configuration (in memory when empty)")
		f.BoolVar(&cfg.OrderMessageEnable, "order-message-enable", cfg.OrderMessageEnable, "serve orderTopicConf from the ORDER_TOPIC_CONFIG KV namespace in routes")
		f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
		f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
		return cmd
	})
}

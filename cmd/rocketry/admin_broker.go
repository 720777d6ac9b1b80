package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rocketry-mq/rocketry/internal/admin"
)

func newAdminBrokerCmd(f *adminFlags) *cobra.Command {
	root := &cobra.Command{Use: "broker", Short: "Read and change broker configuration"}
	cfg := &cobra.Command{Use: "config", Short: "Broker configuration (broker.conf keys)"}

	var (
		broker, cluster string
		keys            []string
	)
	get := &cobra.Command{
		Use:     "get [--broker B | --cluster C] [--key K]...",
		Short:   "Show the configuration of the brokers (GET_BROKER_CONFIG)",
		Example: "  rocketry admin broker config get --key flushDiskType --key brokerPermission",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, func(a *admin.Admin) (any, error) {
				cfgs, err := a.GetBrokerConfig(cmd.Context(), cluster, broker)
				if err != nil || len(keys) == 0 {
					return cfgs, err
				}
				for _, key := range keys {
					found := false
					for i := range cfgs {
						_, ok := cfgs[i].Config[key]
						found = found || ok || cfgs[i].Error != "" // a broker that did not answer may have it
					}
					if !found && len(cfgs) > 0 { // a typo is an error, not an empty table (QA R7H-9)
						return nil, fmt.Errorf("no broker has config key %q (keys are broker.conf names, case-sensitive)", key)
					}
				}
				for i := range cfgs { // keep only the asked keys
					all := cfgs[i].Config
					cfgs[i].Config = map[string]string{}
					for _, key := range keys {
						if v, ok := all[key]; ok {
							cfgs[i].Config[key] = v
						}
					}
				}
				return cfgs, nil
			}, func(w io.Writer, v any) error {
				row(w, "BROKER", "KEY", "VALUE")
				for _, c := range v.([]admin.BrokerConfig) {
					if c.Error != "" {
						row(w, c.Broker, "-", "error: "+c.Error)
						continue
					}
					keys := make([]string, 0, len(c.Config))
					for k := range c.Config {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					for _, k := range keys {
						row(w, c.Broker, k, c.Config[k])
					}
				}
				return nil
			})
		},
	}
	get.Flags().StringVar(&broker, "broker", "", "only this broker (name)")
	get.Flags().StringVar(&cluster, "cluster", "", "only this cluster")
	get.Flags().StringSliceVar(&keys, "key", nil, "only these keys (repeatable or comma separated)")

	var (
		sbroker, scluster string
		pairs             []string
	)
	set := &cobra.Command{
		Use:   "set --set key=value [--set key=value]... [--broker B | --cluster C]",
		Short: "Change runtime-updatable keys on the brokers (UPDATE_BROKER_CONFIG)",
		Long: `Change broker.conf keys on running brokers. Only keys that can change safely at run time
are accepted: retention (fileReservedTime, deleteWhen, diskMaxUsedSpaceRatio), brokerPermission,
auto-creation (autoCreateTopicEnable, autoCreateSubscriptionGroup, defaultTopicQueueNums),
maxMessageSize (lower only), registerNameServerPeriod, channelExpiredTimeout, long polling and
send-queue settings (docs/broker.md). Any other key (flush mode and interval, paths, addresses,
names) needs a restart and is refused by the broker with NO_PERMISSION.`,
		Example: "  rocketry admin broker config set --set autoCreateTopicEnable=false",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kv := map[string]string{}
			for _, p := range pairs {
				k, v, ok := strings.Cut(p, "=")
				if !ok || strings.TrimSpace(k) == "" {
					return fmt.Errorf("--set wants key=value, not %q", p)
				}
				kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
			if len(kv) == 0 {
				return errors.New("give at least one --set key=value")
			}
			return f.run(cmd, func(a *admin.Admin) (any, error) {
				brokers, err := a.UpdateBrokerConfig(cmd.Context(), scluster, sbroker, kv)
				if err != nil {
					return nil, err
				}
				return map[string]any{"brokers": brokers, "updated": kv}, nil
			}, func(w io.Writer, v any) error {
				m := v.(map[string]any)
				_, err := fmt.Fprintf(w, "updated %d key(s) on %s\n", len(kv), strings.Join(m["brokers"].([]string), ", "))
				return err
			})
		},
	}
	set.Flags().StringArrayVar(&pairs, "set", nil, "key=value to set (repeatable)")
	set.Flags().StringVar(&sbroker, "broker", "", "only this broker (name)")
	set.Flags().StringVar(&scluster, "cluster", "", "only this cluster")

	cfg.AddCommand(get, set)
	root.AddCommand(cfg)
	return root
}

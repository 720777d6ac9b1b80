package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rocketry-mq/rocketry/internal/version"
)

func init() {
	addCommand(func() *cobra.Command {
		return &cobra.Command{
			Use:   "version",
			Short: "Print the Rocketry version",
			RunE: func(cmd *cobra.Command, _ []string) error {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "rocketry %s (RocketMQ protocol %s)\n", version.Version, version.RocketMQVersionName)
				return err
			},
		}
	})
}

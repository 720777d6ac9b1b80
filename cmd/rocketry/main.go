// Command rocketry is the single Rocketry binary: NameServer, Broker, Proxy, standalone
// mode, admin CLI and client tools, one cobra subcommand each.
//
// main stays thin: each subcommand lives in its own file, parses flags into its package's
// Config, calls New and Run(ctx). Subcommand files register themselves with addCommand in
// an init function so that adding one never edits this file.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rocketry-mq/rocketry/internal/version"
)

var commands []func() *cobra.Command

// addCommand registers a subcommand constructor; called from init functions.
func addCommand(f func() *cobra.Command) { commands = append(commands, f) }

func main() {
	root := &cobra.Command{
		Use:           "rocketry",
		Short:         "Rocketry: an Apache RocketMQ 5.x compatible messaging system in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Version,
	}
	for _, f := range commands {
		root.AddCommand(f())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "rocketry:", err)
		stop()
		os.Exit(1)
	}
}

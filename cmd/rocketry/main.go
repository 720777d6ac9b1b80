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
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rocketry-mq/rocketry/internal/version"
)

var commands []func() *cobra.Command

// addCommand registers a subcommand constructor; called from init functions.
func addCommand(f func() *cobra.Command) { commands = append(commands, f) }

// defaultGCPercent is the GOGC Rocketry runs with unless the GOGC environment variable says
// otherwise. Messaging daemons allocate many short-lived buffers with a small live heap; at
// Go's default of 100 the collector took about a quarter of the proxy path's CPU. Measured
// (BENCHMARKS.md, proxy path after profiling): GOGC=400 cut server CPU per message by ~25%
// and raised gRPC send throughput 15-40%, for a heap at most 5x the live data.
const defaultGCPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
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
	rejectUnknownSubcommands(root)
	// SIGHUP (the terminal of a `make run &` closing) stops as gracefully as SIGINT and
	// SIGTERM: unregister, drain, flush (QA R11C-8; Apache's shutdown hooks run on it too).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	// SIGQUIT (kill -3) prints every goroutine's stack to stderr and keeps running, as a
	// JVM's thread dump does, instead of Go's default dump-and-exit (QA R11C-9).
	quit := make(chan os.Signal, 1)
	signal.Notify(quit, syscall.SIGQUIT)
	go func() {
		for range quit {
			fmt.Fprintln(os.Stderr, "rocketry: SIGQUIT: goroutine dump (the process keeps running)")
			_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
		}
	}()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "rocketry:", err)
		stop()
		os.Exit(1)
	}
}

// rejectUnknownSubcommands makes every command group (a command with subcommands and no action
// of its own, such as "admin topic") fail on an unknown subcommand. Cobra only does that for
// the root; below it, "rocketry admin topic explode" would print the help and exit 0, which a
// script checking $? takes for success. Without arguments a group still prints its help.
func rejectUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		rejectUnknownSubcommands(sub)
	}
	if c == c.Root() || !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return cmd.Help()
	}
}

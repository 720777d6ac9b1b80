package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/rocketry-mq/rocketry/bench"
)

func init() { addCommand(newBenchCmd) }

func newBenchCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "bench",
		Short: "Load generator: produce, consume or end-to-end through a Proxy (official Go SDK)",
		Long: `Load generator using the official RocketMQ Go SDK v5 against a Proxy.

A live progress line (msg/s, MB/s, p50, p99) is printed to stderr at most once a second
when stderr is a terminal (--progress always|never to override); the final summary goes to
stdout, as text or as JSON with --json (schema in docs/cli.md).`,
	}
	for _, mode := range []bench.Mode{bench.ModeProduce, bench.ModeConsume, bench.ModeE2E} {
		root.AddCommand(newBenchModeCmd(mode))
	}
	return root
}

func newBenchModeCmd(mode bench.Mode) *cobra.Command {
	var (
		sdk      sdkFlags
		cfg      bench.Config
		group    string
		filter   string
		asJSON   bool
		progress string
		await    time.Duration
	)
	short := map[bench.Mode]string{
		bench.ModeProduce: "Send messages as fast as possible (or at --rate) and report throughput and send latency",
		bench.ModeConsume: "Receive and acknowledge messages and report throughput",
		bench.ModeE2E:     "Send and receive at once and report end-to-end latency",
	}[mode]
	cmd := &cobra.Command{
		Use:   string(mode),
		Short: short,
		Example: `  rocketry bench produce -t bench -c 16 --size 1024 --duration 30s
  rocketry bench e2e -t bench -g bench-g --rate 5000 --duration 1m --json
  rocketry bench consume -t bench -g bench-g -n 100000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Mode = mode
			if err := checkBenchFlags(cmd, mode, cfg); err != nil {
				return err
			}
			if cfg.Max <= 0 && cfg.Duration <= 0 {
				cfg.Duration = 10 * time.Second
			}
			switch progress {
			case "auto":
				if isTerminal(os.Stderr) {
					cfg.Progress = cmd.ErrOrStderr()
				}
			case "always":
				cfg.Progress = cmd.ErrOrStderr()
			case "never":
			default:
				return fmt.Errorf("--progress must be auto, always or never, not %q", progress)
			}
			var s bench.Sender
			var rc bench.Receiver
			if mode != bench.ModeProduce {
				if group == "" {
					return errors.New("--group is required")
				}
				c, err := bench.NewSDKConsumer(sdk.config(), bench.ConsumerOptions{
					Group: group, Topics: map[string]string{cfg.Topic: filter}, Await: await,
				})
				if err != nil {
					return err
				}
				defer c.Close()
				rc = c
			}
			if mode != bench.ModeConsume {
				p, err := bench.NewSDKProducer(sdk.config(), cfg.Topic)
				if err != nil {
					return err
				}
				defer p.Close()
				s = p
			}
			res, err := bench.Run(cmd.Context(), cfg, s, rc)
			if res != nil {
				if werr := writeBenchResult(cmd.OutOrStdout(), res, asJSON); werr != nil && err == nil {
					err = werr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	sdk.register(f)
	f.StringVarP(&cfg.Topic, "topic", "t", "rocketry-bench", "topic")
	f.StringVar(&cfg.Tag, "tag", "", "tag of sent messages")
	if mode != bench.ModeConsume {
		f.IntVarP(&cfg.Concurrency, "concurrency", "c", 16, "concurrent senders")
		f.IntVarP(&cfg.MessageSize, "size", "s", 1024, "message body size in bytes")
		f.Float64Var(&cfg.Rate, "rate", 0, "total messages per second (0 = as fast as possible)")
		f.BoolVar(&cfg.Keys, "keys", false, "give every message a unique key")
		f.IntVar(&cfg.Groups, "fifo-groups", 0, "spread messages over N FIFO message groups (0 = normal messages)")
	}
	if mode != bench.ModeProduce {
		f.StringVarP(&group, "group", "g", "rocketry-bench-group", "consumer group")
		f.StringVar(&filter, "filter", "*", "tag filter expression")
		f.IntVar(&cfg.Consumers, "consumers", 4, "concurrent receivers")
		f.Int32Var(&cfg.Batch, "batch", 32, "messages per receive call")
		f.IntVar(&cfg.AckParallel, "ack-parallel", 1, "acknowledgements of one batch in flight at once (1 = one by one)")
		f.DurationVar(&await, "await", 2*time.Second, "long-poll budget of one receive call")
		f.DurationVar(&cfg.Drain, "drain", 10*time.Second, "stop receiving after this long without messages")
	}
	f.Int64VarP(&cfg.Max, "count", "n", 0, "messages to send (consume: to receive); 0 = until --duration")
	f.DurationVarP(&cfg.Duration, "duration", "d", 0, "run time (default 10s when --count is not set)")
	f.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	f.StringVar(&progress, "progress", "auto", "live progress line on stderr: auto (when a terminal), always, never")
	return cmd
}

func writeBenchResult(w io.Writer, res *bench.Result, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return res.WriteText(w)
}

// checkBenchFlags refuses values the run would otherwise silently replace with defaults
// (QA R5C-9): a bench must measure what was asked.
func checkBenchFlags(cmd *cobra.Command, mode bench.Mode, cfg bench.Config) error {
	type rule struct {
		flag string
		bad  bool
		want string
	}
	rules := []rule{
		{"count", cfg.Max < 0, ">= 0"},
		{"duration", cfg.Duration < 0, ">= 0"},
	}
	if mode != bench.ModeConsume {
		rules = append(rules,
			rule{"concurrency", cfg.Concurrency <= 0, "> 0"},
			rule{"size", cfg.MessageSize <= 0, "> 0"},
			rule{"rate", cfg.Rate < 0, ">= 0"},
			rule{"fifo-groups", cfg.Groups < 0, ">= 0"})
	}
	if mode != bench.ModeProduce {
		rules = append(rules,
			rule{"consumers", cfg.Consumers <= 0, "> 0"},
			rule{"batch", cfg.Batch <= 0 || cfg.Batch > 32, "within 1..32"},
			rule{"ack-parallel", cfg.AckParallel <= 0, "> 0"})
	}
	for _, r := range rules {
		if r.bad {
			return fmt.Errorf("--%s must be %s, not %s", r.flag, r.want, cmd.Flags().Lookup(r.flag).Value.String())
		}
	}
	return nil
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/rocketry-mq/rocketry/bench"
)

func init() { addCommand(newProduceCmd) }

func newProduceCmd() *cobra.Command {
	var (
		sdk                     sdkFlags
		topic, body, tag, group string
		keys                    []string
		props                   map[string]string
		delay                   time.Duration
		count                   int
		rate                    float64
		lines                   bool
		output                  string
	)
	cmd := &cobra.Command{
		Use:   "produce --topic T [--body TEXT | < file]",
		Short: "Send messages through a Proxy with the official Go SDK",
		Long: `Send messages through a Proxy (gRPC) with the official RocketMQ Go SDK v5.

The body comes from --body, otherwise from stdin (the whole input is one message, or one
message per line with --lines). --count repeats each body; --rate paces the sends.
A message group (--message-group) makes FIFO messages, --delay makes delay messages.`,
		Example: `  rocketry produce -t orders --body hello --tag created --key order-1
  echo '{"id":1}' | rocketry produce -t orders
  seq 100 | rocketry produce -t orders --lines -o json
  rocketry produce -t fifo-orders --message-group customer-7 --body step1
  rocketry produce -t delayed --delay 30s --body later`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if topic == "" {
				return errors.New("--topic is required")
			}
			if output != "text" && output != "json" {
				return fmt.Errorf("-o must be text or json, not %q", output)
			}
			if count < 1 {
				return errors.New("--count must be at least 1")
			}
			var bodies [][]byte
			switch {
			case cmd.Flags().Changed("body"):
				bodies = [][]byte{[]byte(body)}
			case lines:
				sc := bufio.NewScanner(cmd.InOrStdin())
				sc.Buffer(make([]byte, 64*1024), 4<<20)
				for sc.Scan() {
					bodies = append(bodies, append([]byte(nil), sc.Bytes()...))
				}
				if err := sc.Err(); err != nil {
					return fmt.Errorf("reading stdin: %w", err)
				}
			default:
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return fmt.Errorf("reading stdin: %w", err)
				}
				bodies = [][]byte{b}
			}
			if len(bodies) == 0 {
				return errors.New("nothing to send (empty stdin; use --body)")
			}
			for _, b := range bodies {
				if len(b) == 0 {
					// RocketMQ refuses empty bodies (MESSAGE_BODY_EMPTY); say so plainly
					// instead of the SDK's rendering of a code it does not know (QA R7H-11).
					return errors.New("a message body cannot be empty (RocketMQ refuses empty bodies)")
				}
			}
			if rate < 0 {
				return fmt.Errorf("--rate must not be negative, not %v", rate)
			}
			if delay < 0 {
				return fmt.Errorf("--delay must not be negative, not %v", delay)
			}
			p, err := bench.NewSDKProducer(sdk.config(), topic)
			if err != nil {
				return err
			}
			defer p.Close()
			return produceAll(cmd.Context(), cmd.OutOrStdout(), p, bodies, produceOpts{
				topic: topic, tag: tag, group: group, keys: keys, props: props, delay: delay,
				count: count, rate: rate, json: output == "json",
			})
		},
	}
	f := cmd.Flags()
	sdk.register(f)
	f.StringVarP(&topic, "topic", "t", "", "topic (required)")
	f.StringVarP(&body, "body", "b", "", "message body (default: read stdin)")
	f.BoolVar(&lines, "lines", false, "send one message per stdin line")
	f.StringVar(&tag, "tag", "", "message tag")
	f.StringSliceVarP(&keys, "key", "k", nil, "message key (repeatable or comma separated)")
	f.StringVar(&group, "message-group", "", "FIFO message group")
	f.DurationVar(&delay, "delay", 0, "deliver after this delay (delay message)")
	f.StringToStringVarP(&props, "property", "p", nil, "user property key=value (repeatable)")
	f.IntVarP(&count, "count", "n", 1, "send each body this many times")
	f.Float64Var(&rate, "rate", 0, "messages per second (0 = as fast as possible)")
	f.StringVarP(&output, "output", "o", "text", "output: text or json (one object per line)")
	return cmd
}

type produceOpts struct {
	topic, tag, group string
	keys              []string
	props             map[string]string
	delay             time.Duration
	count             int
	rate              float64
	json              bool
}

// produceAll sends every body count times, printing one line per message.
func produceAll(ctx context.Context, w io.Writer, s bench.Sender, bodies [][]byte, o produceOpts) error {
	var interval time.Duration
	if o.rate > 0 {
		interval = time.Duration(float64(time.Second) / o.rate)
	}
	enc := json.NewEncoder(w)
	start := time.Now()
	n := 0
	for i := 0; i < o.count; i++ {
		for _, b := range bodies {
			if interval > 0 {
				if wait := time.Until(start.Add(time.Duration(n) * interval)); wait > 0 {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(wait):
					}
				}
			}
			m := &bench.Message{Topic: o.topic, Body: b, Tag: o.tag, Keys: o.keys, MessageGroup: o.group, Properties: o.props}
			if o.delay > 0 {
				m.DeliverAt = time.Now().Add(o.delay)
			}
			r, err := s.Send(ctx, m)
			if err != nil {
				return fmt.Errorf("send %d: %w", n+1, err)
			}
			n++
			if o.json {
				out := map[string]any{"topic": o.topic, "messageId": r.MessageID, "offset": r.Offset}
				if r.TransactionID != "" {
					out["transactionId"] = r.TransactionID
				}
				if err := enc.Encode(out); err != nil {
					return err
				}
			} else if _, err := fmt.Fprintf(w, "sent %s topic=%s offset=%d\n", r.MessageID, o.topic, r.Offset); err != nil {
				return err
			}
		}
	}
	return nil
}

// describeBody renders a body for humans: text when it is printable UTF-8, hex otherwise.
func describeBody(b []byte) string {
	if isText(b) {
		return string(b)
	}
	return "hex:" + fmt.Sprintf("%x", b)
}

func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if (r < 0x20 && r != '\n' && r != '\r' && r != '\t') || r == 0x7f {
			return false
		}
	}
	return true
}

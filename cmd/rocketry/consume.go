package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rocketry-mq/rocketry/bench"
)

func init() { addCommand(newConsumeCmd) }

func newConsumeCmd() *cobra.Command {
	var (
		sdk                  sdkFlags
		topics               []string
		group, filter, ftype string
		count                int
		idle, await, invis   time.Duration
		batch                int32
		noAck                bool
		output               string
	)
	cmd := &cobra.Command{
		Use:   "consume --topic T --group G",
		Short: "Receive, print and acknowledge messages through a Proxy with the official Go SDK",
		Long: `Receive messages through a Proxy (gRPC simple consumer, i.e. pop) with the official
RocketMQ Go SDK v5, print them and acknowledge them (unless --no-ack).

Runs until interrupted, until --count messages arrived, or until nothing arrived for
--idle-timeout. Text output shows the body as text when it is printable UTF-8 and as hex
otherwise; -o json prints one object per line (schema in docs/cli.md).`,
		Example: `  rocketry consume -t orders -g billing
  rocketry consume -t orders -g billing --filter 'created||paid' -n 10 -o json
  rocketry consume -t orders -g audit --no-ack --idle-timeout 5s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(topics) == 0 || group == "" {
				return errors.New("--topic and --group are required")
			}
			if output != "text" && output != "json" {
				return fmt.Errorf("-o must be text or json, not %q", output)
			}
			if ftype != "tag" && ftype != "sql" {
				return fmt.Errorf("--filter-type must be tag or sql, not %q", ftype)
			}
			if batch < 1 || batch > 32 {
				return fmt.Errorf("--batch must be within 1..32, not %d", batch)
			}
			if count < 0 {
				return fmt.Errorf("--count must not be negative, not %d", count)
			}
			subs := make(map[string]string, len(topics))
			for _, t := range topics {
				subs[t] = filter
			}
			c, err := bench.NewSDKConsumer(sdk.config(), bench.ConsumerOptions{
				Group: group, Topics: subs, SQL: ftype == "sql", Await: await, Invisible: invis,
			})
			if err != nil {
				return err
			}
			defer c.Close()
			return consumeLoop(cmd.Context(), cmd.OutOrStdout(), c, consumeOpts{
				count: count, idle: idle, batch: batch, ack: !noAck, json: output == "json",
			})
		},
	}
	f := cmd.Flags()
	sdk.register(f)
	f.StringSliceVarP(&topics, "topic", "t", nil, "topic(s) to subscribe (required; repeatable)")
	f.StringVarP(&group, "group", "g", "", "consumer group (required)")
	f.StringVar(&filter, "filter", "*", "filter expression: tags ('A||B', '*') or SQL92 with --filter-type sql")
	f.StringVar(&ftype, "filter-type", "tag", "filter type: tag or sql")
	f.IntVarP(&count, "count", "n", 0, "exit after this many messages (0 = no limit)")
	f.DurationVar(&idle, "idle-timeout", 0, "exit when nothing arrived for this long (0 = never); exit 1 if --count was not reached")
	f.DurationVar(&await, "await", 5*time.Second, "long-poll budget of one receive call")
	f.DurationVar(&invis, "invisible", 30*time.Second, "invisible time of received, unacknowledged messages")
	f.Int32Var(&batch, "batch", 16, "messages per receive call (1..32)")
	f.BoolVar(&noAck, "no-ack", false, "do not acknowledge (messages reappear after the invisible time)")
	f.StringVarP(&output, "output", "o", "text", "output: text or json (one object per line)")
	return cmd
}

type consumeOpts struct {
	count int
	idle  time.Duration
	batch int32
	ack   bool
	json  bool
}

// consumedJSON is the -o json line of `rocketry consume` (stable; docs/cli.md).
type consumedJSON struct {
	Topic           string            `json:"topic"`
	MessageID       string            `json:"messageId"`
	Tag             string            `json:"tag,omitempty"`
	Keys            []string          `json:"keys,omitempty"`
	MessageGroup    string            `json:"messageGroup,omitempty"`
	Properties      map[string]string `json:"properties,omitempty"`
	BornTimestamp   int64             `json:"bornTimestamp,omitempty"` // Unix ms
	BornHost        string            `json:"bornHost,omitempty"`
	DeliveryAttempt int32             `json:"deliveryAttempt"`
	Offset          int64             `json:"offset"`
	Body            *string           `json:"body,omitempty"`       // when the body is valid UTF-8
	BodyBase64      string            `json:"bodyBase64,omitempty"` // otherwise
}

func consumeLoop(ctx context.Context, w io.Writer, rc bench.Receiver, o consumeOpts) error {
	enc := json.NewEncoder(w)
	got := 0
	last := time.Now()
	for {
		if ctx.Err() != nil {
			return nil // interrupted: a normal way to stop
		}
		if o.idle > 0 && time.Since(last) >= o.idle {
			if o.count > 0 && got < o.count {
				// A script must be able to tell "got N" from "gave up" (QA R7H-17).
				return fmt.Errorf("--idle-timeout %s passed after %d of %d messages", o.idle, got, o.count)
			}
			return nil
		}
		n := o.batch
		if o.count > 0 {
			n = int32(min(int(n), o.count-got))
		}
		msgs, err := rc.Receive(ctx, n)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("receive: %w", err)
		}
		for _, m := range msgs {
			if err := printMessage(w, enc, m, o.json); err != nil {
				return err
			}
			if o.ack {
				if err := rc.Ack(ctx, m); err != nil {
					return fmt.Errorf("ack %s: %w", m.MessageID, err)
				}
			}
			got++
			last = time.Now()
			if o.count > 0 && got >= o.count {
				return nil
			}
		}
	}
}

func printMessage(w io.Writer, enc *json.Encoder, m *bench.Received, asJSON bool) error {
	if asJSON {
		out := consumedJSON{Topic: m.Topic, MessageID: m.MessageID, Tag: m.Tag, Keys: m.Keys, MessageGroup: m.MessageGroup,
			Properties: m.Properties, BornHost: m.BornHost, DeliveryAttempt: m.DeliveryAttempt, Offset: m.Offset}
		if !m.BornTimestamp.IsZero() {
			out.BornTimestamp = m.BornTimestamp.UnixMilli()
		}
		if isText(m.Body) {
			s := string(m.Body)
			out.Body = &s
		} else {
			out.BodyBase64 = base64.StdEncoding.EncodeToString(m.Body)
		}
		return enc.Encode(out)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s topic=%s", m.MessageID, m.Topic)
	if m.Tag != "" {
		fmt.Fprintf(&b, " tag=%s", m.Tag)
	}
	if len(m.Keys) > 0 {
		fmt.Fprintf(&b, " keys=%s", strings.Join(m.Keys, ","))
	}
	if m.MessageGroup != "" {
		fmt.Fprintf(&b, " group=%s", m.MessageGroup)
	}
	fmt.Fprintf(&b, " attempt=%d", m.DeliveryAttempt)
	if !m.BornTimestamp.IsZero() {
		fmt.Fprintf(&b, " born=%s", m.BornTimestamp.Format(time.RFC3339Nano))
	}
	if len(m.Properties) > 0 {
		ks := make([]string, 0, len(m.Properties))
		for k := range m.Properties {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			fmt.Fprintf(&b, " %s=%s", k, m.Properties[k])
		}
	}
	fmt.Fprintf(&b, " body=%s\n", describeBody(m.Body))
	_, err := io.WriteString(w, b.String())
	return err
}

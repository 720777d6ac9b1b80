package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rocketry-mq/rocketry/internal/admin"
)

func newAdminMessageCmd(f *adminFlags) *cobra.Command {
	root := &cobra.Command{Use: "message", Short: "Look messages up and replay dead letters"}

	var (
		topic, id, key string
		max            int
	)
	get := &cobra.Command{
		Use:   "get --topic T (--id ID | --key K)",
		Short: "Show messages by id (offset id, unique id or v5 id) or by key, decoded",
		Long: `Show messages with their headers, properties and body (text when printable, else a hex dump).

--id accepts a broker offset message id (read directly from the broker it names) or a
client unique id, including the 5.x ids gRPC clients print (looked up in the index).
--key lists every message carrying that key (up to --max). -o json prints an array.`,
		Example: `  rocketry admin message get --topic orders --id 01A1B2C3D4E5F60708090A0B0C0D0E0F10
  rocketry admin message get --topic orders --key order-42`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (id == "") == (key == "") {
				return errors.New("give exactly one of --id and --key")
			}
			if topic == "" && key != "" {
				return errors.New("--topic is required")
			}
			return f.run(cmd, func(a *admin.Admin) (any, error) {
				if id != "" {
					m, err := a.GetMessageByID(cmd.Context(), topic, id)
					if err != nil {
						return nil, err
					}
					return []*admin.MessageDetail{m}, nil
				}
				return a.GetMessagesByKey(cmd.Context(), topic, key, max)
			}, printMessages)
		},
	}
	get.Flags().StringVarP(&topic, "topic", "t", "", "topic")
	get.Flags().StringVar(&id, "id", "", "message id")
	get.Flags().StringVarP(&key, "key", "k", "", "message key")
	get.Flags().IntVar(&max, "max", 64, "most messages to show for --key")

	var (
		group  string
		rmax   int
		dryRun bool
	)
	resend := &cobra.Command{
		Use:   "resend-dlq --group G [--max N] [--dry-run]",
		Short: "Replay a group's dead letters to their original topics",
		Long: `Replay the messages of %DLQ%<group> to the topics they came from, as new messages with
the same body, tag, keys, message group and user properties (ORIGIN_MESSAGE_ID names the
dead letter). The replay position is remembered, so running it again replays only newer
dead letters. Dead letters whose origin is unknown are reported and left in place.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if group == "" {
				return errors.New("--group is required")
			}
			return f.run(cmd, func(a *admin.Admin) (any, error) {
				return a.ResendDLQ(cmd.Context(), group, admin.ResendOptions{Max: rmax, DryRun: dryRun})
			}, func(w io.Writer, v any) error {
				r := v.(*admin.ResendResult)
				row(w, "DLQ-MSG-ID", "ORIGIN-TOPIC", "NEW-MSG-ID", "ERROR")
				for _, m := range r.Messages {
					row(w, m.DLQMsgID, dash(m.OriginTopic), dash(m.NewMsgID), dash(m.Error))
				}
				verb := "resent"
				if r.DryRun {
					verb = "would resend"
				}
				_, err := fmt.Fprintf(w, "\n%s %d message(s) from %s, %d failed\n", verb, r.Resent, r.DLQTopic, r.Failed)
				return err
			})
		},
	}
	resend.Flags().StringVarP(&group, "group", "g", "", "consumer group whose dead letters to replay")
	resend.Flags().IntVar(&rmax, "max", 0, "replay at most N messages (0 = all)")
	resend.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be replayed without sending")

	root.AddCommand(get, resend)
	return root
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printMessages(w io.Writer, v any) error {
	for i, m := range v.([]*admin.MessageDetail) {
		if i > 0 {
			io.WriteString(w, "\n")
		}
		fmt.Fprintf(w, "Msg ID:\t%s\n", m.MsgID)
		fmt.Fprintf(w, "Offset Msg ID:\t%s\n", m.OffsetMsgID)
		fmt.Fprintf(w, "Topic:\t%s\n", m.Topic)
		fmt.Fprintf(w, "Tags:\t%s\n", dash(m.Tags))
		fmt.Fprintf(w, "Keys:\t%s\n", dash(strings.Join(m.Keys, " ")))
		fmt.Fprintf(w, "Queue:\t%s %d, offset %d\n", dash(m.Broker), m.QueueID, m.QueueOffset)
		fmt.Fprintf(w, "Commit Log Offset:\t%d (%d bytes)\n", m.CommitLogOffset, m.StoreSize)
		fmt.Fprintf(w, "Born:\t%s from %s\n", fmtMillis(m.BornTimestamp), m.BornHost)
		fmt.Fprintf(w, "Stored:\t%s on %s\n", fmtMillis(m.StoreTimestamp), m.StoreHost)
		fmt.Fprintf(w, "Reconsume Times:\t%d\n", m.ReconsumeTimes)
		fmt.Fprintf(w, "Sys Flag / Flag:\t%d / %d\n", m.SysFlag, m.Flag)
		keys := make([]string, 0, len(m.Properties))
		for k := range m.Properties {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "Property %s:\t%s\n", k, m.Properties[k])
		}
		fmt.Fprintf(w, "Body:\t%d bytes\n", m.BodySize)
		if m.BodyNote != "" {
			fmt.Fprintf(w, "Body Note:\t%s\n", m.BodyNote)
		}
		if m.Printable() {
			fmt.Fprintf(w, "%s\n", m.RawBody())
		} else {
			io.WriteString(w, hex.Dump(m.RawBody()))
		}
	}
	return nil
}

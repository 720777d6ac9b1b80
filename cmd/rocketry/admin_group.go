package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rocketry-mq/rocketry/internal/admin"
)

func newAdminGroupCmd(f *adminFlags) *cobra.Command {
	root := &cobra.Command{Use: "group", Short: "Create, list, describe, delete consumer groups and reset their offsets"}

	var (
		name, cluster string
		fifo          bool
		maxAttempts   int
	)
	create := &cobra.Command{
		Use:     "create --name G [--fifo] [--max-attempts 16] [--cluster C]",
		Short:   "Create or update a consumer (subscription) group on every broker of the cluster",
		Example: "  rocketry admin group create --name billing --fifo --max-attempts 5",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := requireName(name, args, "group")
			if err != nil {
				return err
			}
			return f.run(cmd, func(a *admin.Admin) (any, error) {
				return a.CreateGroup(cmd.Context(), admin.GroupSpec{Name: n, FIFO: fifo, MaxAttempts: maxAttempts, Cluster: cluster})
			}, func(w io.Writer, v any) error {
				g := v.(*admin.GroupSummary)
				kind := "concurrent"
				if g.FIFO {
					kind = "FIFO"
				}
				_, err := fmt.Fprintf(w, "created group %s (%s, max attempts %d = up to %s before the DLQ) on %s\n", g.Name, kind, g.MaxAttempts, deliveries(g.MaxDeliveries), strings.Join(g.Brokers, ", "))
				return err
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "group name")
	create.Flags().BoolVar(&fifo, "fifo", false, "consume orderly (FIFO topics deliver each message group in order)")
	create.Flags().IntVar(&maxAttempts, "max-attempts", 16, "redeliveries before a message goes to the dead-letter queue (retryMaxTimes)")
	create.Flags().StringVar(&cluster, "cluster", "", "cluster (default: every cluster)")

	var (
		all         bool
		listCluster string
	)
	list := &cobra.Command{
		Use:   "list [--all]",
		Short: "List consumer groups (reserved system groups with --all)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, func(a *admin.Admin) (any, error) { return a.ListGroups(cmd.Context(), listCluster, all) },
				func(w io.Writer, v any) error {
					row(w, "NAME", "FIFO", "MAX-ATTEMPTS", "CONSUME", "BROKERS")
					for _, g := range v.([]admin.GroupSummary) {
						row(w, g.Name, g.FIFO, g.MaxAttempts, onOff(g.ConsumeEnable), strings.Join(g.Brokers, ","))
					}
					return nil
				})
		},
	}
	list.Flags().BoolVar(&all, "all", false, "include reserved system groups")
	list.Flags().StringVar(&listCluster, "cluster", "", "cluster (default: every cluster)")

	var dname string
	describe := &cobra.Command{
		Use:   "describe --name G",
		Short: "Show a group's per-queue lag and in-flight messages and its online clients",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := requireName(dname, args, "group")
			if err != nil {
				return err
			}
			return f.run(cmd, func(a *admin.Admin) (any, error) { return a.DescribeGroup(cmd.Context(), n) }, printGroupDetail)
		},
	}
	describe.Flags().StringVar(&dname, "name", "", "group name")

	var delName, delCluster string
	del := &cobra.Command{
		Use:   "delete --name G [--cluster C]",
		Short: "Delete a group, its offsets and its retry and dead-letter topics",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := requireName(delName, args, "group")
			if err != nil {
				return err
			}
			return f.run(cmd, func(a *admin.Admin) (any, error) { return a.DeleteGroup(cmd.Context(), n, delCluster) },
				func(w io.Writer, v any) error {
					r := v.(*admin.DeleteGroupResult)
					_, err := fmt.Fprintf(w, "deleted group %s from %s\n", r.Group, strings.Join(r.Brokers, ", "))
					return err
				})
		},
	}
	del.Flags().StringVar(&delName, "name", "", "group name")
	del.Flags().StringVar(&delCluster, "cluster", "", "cluster (default: every cluster)")

	var (
		rname, rtopic, toTime string
		earliest, latest      bool
	)
	reset := &cobra.Command{
		Use:   "reset-offset --name G [--topic T] (--to-time TIME | --to-earliest | --to-latest)",
		Short: "Move a group's committed offsets (works for offline groups and pop consumers)",
		Long: `Move a group's committed offsets on one topic (--topic) or on every topic it has offsets for.

TIME is "now", a negative duration from now ("-30m"), Unix milliseconds, RFC 3339, or
"2006-01-02 15:04:05" in local time; the group resumes at the first message stored at or
after it. Online consumers are told to reset too; offline groups are reset on the broker.`,
		Example: `  rocketry admin group reset-offset --name billing --to-earliest
  rocketry admin group reset-offset --name billing --topic orders --to-time -1h`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := requireName(rname, args, "group")
			if err != nil {
				return err
			}
			var t admin.ResetTarget
			set := 0
			if earliest {
				t.Earliest = true
				set++
			}
			if latest {
				t.Latest = true
				set++
			}
			if toTime != "" {
				if t.Time, err = parseWhen(toTime); err != nil {
					return err
				}
				set++
			}
			if set != 1 {
				return errors.New("choose exactly one of --to-time, --to-earliest, --to-latest")
			}
			return f.run(cmd, func(a *admin.Admin) (any, error) { return a.ResetOffset(cmd.Context(), n, rtopic, t) },
				func(w io.Writer, v any) error {
					row(w, "TOPIC", "BROKER", "QUEUE", "OLD", "NEW")
					for _, r := range v.([]admin.QueueReset) {
						old := fmt.Sprint(r.OldOffset)
						if r.OldOffset < 0 {
							old = "-"
						}
						row(w, r.Topic, r.Broker, r.QueueID, old, r.NewOffset)
					}
					return nil
				})
		},
	}
	reset.Flags().StringVar(&rname, "name", "", "group name")
	reset.Flags().StringVar(&rtopic, "topic", "", "topic (default: every topic the group has offsets for)")
	reset.Flags().StringVar(&toTime, "to-time", "", "reset to the first message stored at or after TIME")
	reset.Flags().BoolVar(&earliest, "to-earliest", false, "reset to the oldest retained message")
	reset.Flags().BoolVar(&latest, "to-latest", false, "reset past the newest message (skip the backlog)")

	root.AddCommand(create, list, describe, del, reset)
	return root
}

func onOff(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

func printGroupDetail(w io.Writer, v any) error {
	d := v.(*admin.GroupDetail)
	kind := "concurrent"
	if d.FIFO {
		kind = "FIFO"
	}
	fmt.Fprintf(w, "Group:\t%s\n", d.Name)
	fmt.Fprintf(w, "Mode:\t%s, max attempts %d (%s before the DLQ), consume %s\n", kind, d.MaxAttempts, deliveries(d.MaxDeliveries), onOff(d.ConsumeEnable))
	fmt.Fprintf(w, "Lag:\t%d (in flight %d)\n", d.Lag, d.Inflight)
	fmt.Fprintf(w, "Consume TPS:\t%.1f\n", d.ConsumeTPS)
	online := "no"
	if d.Online {
		online = fmt.Sprintf("yes, %d client(s)", len(d.Clients))
	}
	fmt.Fprintf(w, "Online:\t%s\n", online)
	for _, name := range slices.Sorted(maps.Keys(d.BrokerErrors)) {
		fmt.Fprintf(w, "Unreachable:\t%s (%s)\n", name, d.BrokerErrors[name])
	}
	io.WriteString(w, "\n")
	row(w, "TOPIC", "BROKER", "QUEUE", "BROKER-OFFSET", "CONSUMER-OFFSET", "LAG", "INFLIGHT", "LAST-CONSUMED")
	for _, q := range d.Queues {
		row(w, q.Topic, q.Broker, q.QueueID, q.BrokerOffset, q.ConsumerOffset, q.Lag, q.Inflight, fmtMillis(q.LastTimestamp))
	}
	if len(d.Clients) > 0 {
		io.WriteString(w, "\n")
		row(w, "CLIENT", "ADDR", "LANGUAGE", "VERSION")
		for _, c := range d.Clients {
			row(w, c.ClientID, c.Addr, c.Language, c.Version)
		}
	}
	if len(d.Subscriptions) > 0 {
		io.WriteString(w, "\n")
		row(w, "SUBSCRIBED TOPIC", "EXPRESSION", "TYPE")
		for _, s := range d.Subscriptions {
			row(w, s.Topic, s.Expression, s.Type)
		}
	}
	return nil
}

// deliveries says "1 delivery" or "N deliveries".
func deliveries(n int32) string {
	if n == 1 {
		return "1 delivery"
	}
	return fmt.Sprintf("%d deliveries", n)
}

package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rocketry-mq/rocketry/internal/admin"
)

func newAdminTopicCmd(f *adminFlags) *cobra.Command {
	root := &cobra.Command{Use: "topic", Short: "Create, list, describe and delete topics"}

	var (
		name, typ, cluster string
		queues, perm       int
	)
	create := &cobra.Command{
		Use:     "create --name T [--type NORMAL|FIFO|DELAY|TRANSACTION|MIXED] [--queues 8] [--perm 6] [--cluster C]",
		Short:   "Create or update a topic on every broker of the cluster",
		Example: "  rocketry admin topic create --name orders --type FIFO --queues 8",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := requireName(name, args, "topic")
			if err != nil {
				return err
			}
			t, err := admin.ParseTopicType(typ)
			if err != nil {
				return err
			}
			if queues < 1 || queues > 1024 {
				return fmt.Errorf("--queues must be within 1..1024, not %d", queues)
			}
			if perm != admin.PermRead && perm != admin.PermWrite && perm != admin.PermReadWrite {
				return fmt.Errorf("--perm must be 2 (write only), 4 (read only) or 6 (read and write), not %d", perm)
			}
			return f.run(cmd, func(a *admin.Admin) (any, error) {
				return a.CreateTopic(cmd.Context(), admin.TopicSpec{Name: n, Type: t, Queues: queues, Cluster: cluster, Perm: perm})
			}, func(w io.Writer, v any) error {
				r := v.(*admin.CreateTopicResult)
				_, err := fmt.Fprintf(w, "created topic %s (%s, %d queues) on %s\n", r.Topic, r.Type, r.Queues, strings.Join(r.Brokers, ", "))
				if err == nil && !r.Routed {
					_, err = fmt.Fprintln(w, "note: the NameServer does not route it yet; brokers register within 30 s")
				}
				return err
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "topic name")
	create.Flags().StringVar(&typ, "type", "NORMAL", "message type: NORMAL, FIFO, DELAY, TRANSACTION or MIXED (accepts every type)")
	create.Flags().IntVar(&queues, "queues", 8, "read and write queues per broker")
	create.Flags().IntVar(&perm, "perm", admin.PermReadWrite, "permission: 6 read+write, 4 read only (sends refused), 2 write only (consumption stopped); on an existing topic this updates it")
	create.Flags().StringVar(&cluster, "cluster", "", "cluster (default: every cluster)")

	var all bool
	list := &cobra.Command{
		Use:   "list [--all]",
		Short: "List topics (system topics with --all)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, func(a *admin.Admin) (any, error) { return a.ListTopics(cmd.Context(), all) },
				func(w io.Writer, v any) error {
					ts := v.([]admin.TopicSummary)
					if all {
						row(w, "NAME", "SYSTEM")
						for _, t := range ts {
							row(w, t.Name, t.System)
						}
						return nil
					}
					row(w, "NAME")
					for _, t := range ts {
						row(w, t.Name)
					}
					return nil
				})
		},
	}
	list.Flags().BoolVar(&all, "all", false, "include system, retry and dead-letter topics")

	var dname string
	describe := &cobra.Command{
		Use:   "describe --name T",
		Short: "Show a topic's type, route and per-queue offsets",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := requireName(dname, args, "topic")
			if err != nil {
				return err
			}
			return f.run(cmd, func(a *admin.Admin) (any, error) { return a.DescribeTopic(cmd.Context(), n) }, printTopicDetail)
		},
	}
	describe.Flags().StringVar(&dname, "name", "", "topic name")

	var delName, delCluster string
	del := &cobra.Command{
		Use:   "delete --name T [--cluster C]",
		Short: "Delete a topic from the brokers and the NameServers",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := requireName(delName, args, "topic")
			if err != nil {
				return err
			}
			return f.run(cmd, func(a *admin.Admin) (any, error) { return a.DeleteTopic(cmd.Context(), n, delCluster) },
				func(w io.Writer, v any) error {
					r := v.(*admin.DeleteTopicResult)
					_, err := fmt.Fprintf(w, "deleted topic %s from %s and the NameServers\n", r.Topic, strings.Join(r.Brokers, ", "))
					return err
				})
		},
	}
	del.Flags().StringVar(&delName, "name", "", "topic name")
	del.Flags().StringVar(&delCluster, "cluster", "", "cluster (default: every cluster)")

	root.AddCommand(create, list, describe, del)
	return root
}

func printTopicDetail(w io.Writer, v any) error {
	d := v.(*admin.TopicDetail)
	fmt.Fprintf(w, "Topic:\t%s\n", d.Name)
	fmt.Fprintf(w, "Type:\t%s\n", d.Type)
	if d.Unanswered > 0 {
		fmt.Fprintf(w, "Messages:\tat least %d (%d queues did not answer)\n\n", d.Messages, d.Unanswered)
	} else {
		fmt.Fprintf(w, "Messages:\t%d\n\n", d.Messages)
	}
	row(w, "BROKER", "CLUSTER", "ADDR", "READ", "WRITE", "PERM")
	for _, b := range d.Brokers {
		row(w, b.Broker, b.Cluster, b.Addr, b.ReadQueues, b.WriteQueues, permString(b.Perm))
	}
	io.WriteString(w, "\n")
	row(w, "BROKER", "QUEUE", "MIN", "MAX", "MESSAGES", "LAST STORED")
	for _, q := range d.Queues {
		if q.Error != "" {
			row(w, q.Broker, q.QueueID, "-", "-", "-", "error: "+q.Error)
			continue
		}
		row(w, q.Broker, q.QueueID, q.MinOffset, q.MaxOffset, q.Messages, fmtMillis(q.LastStoreTime))
	}
	return nil
}

func permString(p int32) string {
	s := ""
	if p&admin.PermRead != 0 {
		s += "R"
	}
	if p&admin.PermWrite != 0 {
		s += "W"
	}
	if s == "" {
		s = "-"
	}
	return s
}

package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/rocketry-mq/rocketry/internal/admin"
)

func newAdminClusterCmd(f *adminFlags) *cobra.Command {
	root := &cobra.Command{Use: "cluster", Short: "Inspect clusters and brokers"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List brokers with addresses, versions, disk use and TPS",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, func(a *admin.Admin) (any, error) { return a.ClusterList(cmd.Context()) },
				func(w io.Writer, v any) error {
					row(w, "CLUSTER", "BROKER", "ID", "ADDR", "VERSION", "PUT-TPS", "GET-TPS", "DISK", "IN-TODAY", "OUT-TODAY")
					for _, b := range v.([]admin.BrokerInfo) {
						if b.Error != "" {
							row(w, b.Cluster, b.Name, b.ID, b.Addr, "unreachable: "+b.Error, "-", "-", "-", "-", "-")
							continue
						}
						row(w, b.Cluster, b.Name, b.ID, b.Addr, b.Version, optF(b.PutTPS, 1, ""), optF(b.GetTPS, 1, ""),
							optPct(b.DiskRatio), optI(b.PutToday), optI(b.GetToday))
					}
					return nil
				})
		},
	}
	root.AddCommand(list)
	return root
}

func optF(v *float64, prec int, suffix string) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', prec, 64) + suffix
}

func optPct(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", *v*100)
}

func optI(v *int64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatInt(*v, 10)
}

package cli

import (
	"fmt"
	"strings"
	"testing"
)

func TestTopicsOfEveryTypeAndGroups(t *testing.T) {
	s := startServer(t, "")
	for _, typ := range []string{"NORMAL", "FIFO", "DELAY", "TRANSACTION"} {
		name := "t-" + strings.ToLower(typ)
		var created struct {
			Topic   string
			Type    string
			Queues  int
			Brokers []string
			Routed  bool
		}
		jsonOut(t, &created, s.admin("topic", "create", "--name", name, "--type", typ, "--queues", "4")...)
		if created.Topic != name || created.Type != typ || created.Queues != 4 || len(created.Brokers) != 1 || !created.Routed {
			t.Fatalf("create %s: %+v", typ, created)
		}
		var d struct {
			Name, Type string
			Queues     []struct{ QueueID int }
			Brokers    []struct{ ReadQueues int }
		}
		jsonOut(t, &d, s.admin("topic", "describe", name)...)
		if d.Type != typ || len(d.Queues) != 4 || d.Brokers[0].ReadQueues != 4 {
			t.Fatalf("describe %s: %+v", name, d)
		}
	}
	var list []struct {
		Name   string
		System bool
	}
	jsonOut(t, &list, s.admin("topic", "list")...)
	names := map[string]bool{}
	for _, e := range list {
		names[e.Name] = true
		if e.System {
			t.Errorf("system topic %s listed without --all", e.Name)
		}
	}
	for _, n := range []string{"t-normal", "t-fifo", "t-delay", "t-transaction"} {
		if !names[n] {
			t.Errorf("topic list lacks %s: %v", n, list)
		}
	}
	// --perm (R8K-9): a read-only topic; a bad value is refused.
	ok(t, "", s.admin("topic", "create", "--name", "t-readonly", "--perm", "4")...)
	var ro struct{ Brokers []struct{ Perm int } }
	jsonOut(t, &ro, s.admin("topic", "describe", "t-readonly")...)
	if len(ro.Brokers) != 1 || ro.Brokers[0].Perm != 4 {
		t.Fatalf("topic created with --perm 4: %+v", ro)
	}
	if r := run(t, "", s.admin("topic", "create", "--name", "t-bad", "--perm", "5")...); r.code != 1 || !strings.Contains(r.stderr, "--perm") {
		t.Fatalf("--perm 5: %+v", r)
	}
	jsonOut(t, &list, s.admin("topic", "list", "--all")...)
	if len(list) <= 4 {
		t.Errorf("--all shows no system topics: %v", list)
	}
	if out := ok(t, "", "admin", "-n", s.namesrv, "topic", "list"); !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "t-fifo") {
		t.Errorf("table output:\n%s", out)
	}

	type group struct {
		Name          string
		FIFO          bool
		MaxAttempts   int
		MaxDeliveries int
		ConsumeEnable bool
	}
	var g group
	jsonOut(t, &g, s.admin("group", "create", "--name", "g-plain")...)
	if g.FIFO || g.MaxAttempts != 16 || !g.ConsumeEnable {
		t.Fatalf("plain group %+v", g)
	}
	jsonOut(t, &g, s.admin("group", "create", "--name", "g-fifo", "--fifo", "--max-attempts", "5")...)
	if !g.FIFO || g.MaxAttempts != 5 || g.MaxDeliveries != 6 {
		t.Fatalf("fifo group %+v", g)
	}
	var groups []group
	jsonOut(t, &groups, s.admin("group", "list")...)
	found := map[string]group{}
	for _, e := range groups {
		found[e.Name] = e
	}
	if !found["g-fifo"].FIFO || found["g-fifo"].MaxAttempts != 5 || found["g-plain"].FIFO {
		t.Fatalf("group list %+v", groups)
	}
	var gd struct {
		Name        string
		FIFO        bool
		MaxAttempts int
		Online      bool
	}
	jsonOut(t, &gd, s.admin("group", "describe", "g-fifo")...)
	if !gd.FIFO || gd.MaxAttempts != 5 || gd.Online {
		t.Fatalf("describe g-fifo %+v", gd)
	}

	ok(t, "", s.admin("group", "delete", "g-plain")...)
	r := run(t, "", s.admin("group", "describe", "g-plain")...)
	if r.code != 1 || !strings.Contains(r.stderr, "SUBSCRIPTION_GROUP_NOT_EXIST") {
		t.Fatalf("describe deleted group: %+v", r)
	}
	ok(t, "", s.admin("topic", "delete", "t-delay")...)
	eventually(t, "deleted topic disappears", func() error {
		if r := run(t, "", s.admin("topic", "describe", "t-delay")...); r.code != 1 {
			return fmt.Errorf("describe exit %d", r.code)
		}
		return nil
	})

	var health struct {
		Healthy bool
		Brokers []struct{ BrokerName string }
	}
	jsonOut(t, &health, s.admin("cluster", "health", "--wait", "10s")...)
	if !health.Healthy || len(health.Brokers) != 1 {
		t.Fatalf("cluster health %+v", health)
	}

	var bcfg []struct {
		Broker string
		Config map[string]string
	}
	ok(t, "", s.admin("broker", "config", "set", "--set", "autoCreateSubscriptionGroup=false")...)
	jsonOut(t, &bcfg, s.admin("broker", "config", "get", "--key", "autoCreateSubscriptionGroup")...)
	if len(bcfg) != 1 || len(bcfg[0].Config) != 1 || bcfg[0].Config["autoCreateSubscriptionGroup"] != "false" {
		t.Fatalf("broker config %+v", bcfg)
	}
	if r := run(t, "", s.admin("broker", "config", "get", "--key", "noSuchKey")...); r.code != 1 || !strings.Contains(r.stderr, "noSuchKey") {
		t.Fatalf("unknown key: %+v", r) // R7H-9: a typo is reported
	}
	// --key repeats (QA R11C-5).
	jsonOut(t, &bcfg, s.admin("broker", "config", "get", "--key", "autoCreateSubscriptionGroup", "--key", "flushDiskType")...)
	if len(bcfg) != 1 || len(bcfg[0].Config) != 2 || bcfg[0].Config["flushDiskType"] == "" {
		t.Fatalf("two keys: %+v", bcfg)
	}
	jsonOut(t, &bcfg, s.admin("broker", "config", "get", "--key", "brokerIP1")...)
	if len(bcfg) != 1 || strings.Contains(bcfg[0].Config["brokerIP1"], ":") {
		t.Fatalf("brokerIP1 is not an address alone: %+v", bcfg) // R7H-9
	}
	if r := run(t, "", s.admin("broker", "config", "set", "--set", "storePathRootDir=/tmp")...); r.code != 1 || !strings.Contains(r.stderr, "NO_PERMISSION") {
		t.Fatalf("forbidden key: %+v", r)
	}

	var brokers []struct {
		Cluster, BrokerName, Addr, Version string
		BrokerID                           int
		Error                              string
	}
	jsonOut(t, &brokers, s.admin("cluster", "list")...)
	if len(brokers) != 1 || brokers[0].Version != "V5_3_3" || brokers[0].Error != "" || brokers[0].Cluster != "DefaultCluster" {
		t.Fatalf("cluster list %+v", brokers)
	}
}

func TestErrorsExitOneWithOneLine(t *testing.T) {
	s := startServer(t, "")
	cases := [][]string{
		s.admin("topic", "describe", "no-such-topic"),
		s.admin("topic", "create", "--name", "x", "--type", "WEIRD"),
		s.admin("topic", "create", "--name", "bad name!"),
		s.admin("group", "reset-offset", "--name", "g"),
		{"admin", "-n", "127.0.0.1:1", "topic", "list"},
		{"admin", "-n", "127.0.0.1:1", "cluster", "health", "--wait", "1s"},
		s.admin("cluster", "health", "--min-brokers", "2"),
		{"admin", "-o", "yaml", "topic", "list"},
		{"admin", "topic", "list", "--no-such-flag"},
		{"produce", "--endpoint", s.grpc},
		{"consume", "--endpoint", s.grpc, "-t", "x"},
	}
	for _, args := range cases {
		r := run(t, "", args...)
		lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
		if r.code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "rocketry: ") {
			t.Errorf("rocketry %s: exit %d, stderr %q (want exit 1 and one 'rocketry: ' line)", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

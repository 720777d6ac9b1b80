package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestUnknownSubcommandOfAGroupFails(t *testing.T) {
	root := &cobra.Command{Use: "rocketry", SilenceUsage: true, SilenceErrors: true}
	group := &cobra.Command{Use: "topic"}
	ran := false
	group.AddCommand(&cobra.Command{Use: "list", RunE: func(*cobra.Command, []string) error { ran = true; return nil }})
	admin := &cobra.Command{Use: "admin"}
	admin.AddCommand(group)
	root.AddCommand(admin)
	rejectUnknownSubcommands(root)

	run := func(args ...string) error {
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		return root.Execute()
	}
	if err := run("admin", "topic", "explode"); err == nil || !strings.Contains(err.Error(), `unknown command "explode" for "rocketry admin topic"`) {
		t.Fatalf("admin topic explode: %v", err)
	}
	if err := run("admin", "explode"); err == nil {
		t.Fatal("admin explode succeeded")
	}
	if err := run("admin", "topic"); err != nil {
		t.Fatalf("a group without arguments prints its help: %v", err)
	}
	if err := run("admin", "topic", "list"); err != nil || !ran {
		t.Fatalf("admin topic list: %v ran=%v", err, ran)
	}
}

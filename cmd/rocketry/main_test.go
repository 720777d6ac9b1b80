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

// TestToolFlagsRefuseBadValues (QA R7H-8, R7H-11, R7H-12): out-of-range values are refused
// before anything is sent, with a message naming the flag.
func TestToolFlagsRefuseBadValues(t *testing.T) {
	for _, tc := range []struct {
		cmd  func() *cobra.Command
		args []string
		want string
	}{
		{newProduceCmd, []string{"-t", "T", "--body", ""}, "body cannot be empty"},
		{newProduceCmd, []string{"-t", "T", "--body", "x", "--rate", "-1"}, "--rate must not be negative"},
		{newProduceCmd, []string{"-t", "T", "--body", "x", "--delay", "-5s"}, "--delay must not be negative"},
		{newConsumeCmd, []string{"-t", "T", "-g", "G", "--batch", "33"}, "--batch must be within 1..32"},
		{newConsumeCmd, []string{"-t", "T", "-g", "G", "--batch", "0"}, "--batch must be within 1..32"},
		{newAdminCmd, []string{"topic", "create", "--name", "T", "--queues", "0"}, "--queues must be within 1..1024"},
	} {
		c := tc.cmd()
		c.SilenceUsage, c.SilenceErrors = true, true
		var out bytes.Buffer
		c.SetOut(&out)
		c.SetErr(&out)
		c.SetIn(strings.NewReader(""))
		c.SetArgs(tc.args)
		if err := c.Execute(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: %v, want an error containing %q", c.Name(), tc.args, err, tc.want)
		}
	}
}

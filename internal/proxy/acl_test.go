package proxy

import (
	"path/filepath"
	"testing"

	"github.com/rocketry-mq/rocketry/internal/proxy/auth"
)

// writeACL writes an ACL with alice (Pub+Sub on everything) and bob (Sub only).
func writeACL(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "acl.json")
	err := auth.Save(path, &auth.ACL{Users: []auth.User{
		{Username: "alice", Password: "alice-secret", Policies: []auth.Policy{{Resource: "*", Actions: []auth.Action{auth.ActionAll}, Decision: auth.Allow}}},
		{Username: "bob", Password: "bob-secret", Policies: []auth.Policy{
			{Resource: "Topic:*", Actions: []auth.Action{auth.ActionSub}, Decision: auth.Allow},
			{Resource: "Group:g-*", Actions: []auth.Action{auth.ActionSub}, Decision: auth.Allow},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

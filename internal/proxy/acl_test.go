package proxy

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

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

// signedCtx is a call context for clientID signed as user with secret, as the SDKs sign
// (x-mq-date-time now, HMAC-SHA1 of it).
func signedCtx(t *testing.T, user, secret, clientID string, d time.Duration) context.Context {
	t.Helper()
	dt := time.Now().UTC().Format(auth.DateTimeLayout)
	return metadata.AppendToOutgoingContext(cctx(t, clientID, d), auth.HeaderDateTime, dt, auth.HeaderAuthorization,
		"MQv2-HMAC-SHA1 Credential="+user+"//Rocketmq, SignedHeaders=x-mq-date-time, Signature="+auth.Sign(secret, dt))
}

// TestAuthClientOperations (QA R8K-1, R8K-3, R8K-5): Telemetry Settings, Heartbeat and
// NotifyClientTermination are authorized as Apache's proxy does, a client id belongs to the
// user that registered it, and policies match names without the namespace.
func TestAuthClientOperations(t *testing.T) {
	b := newMemBackend()
	b.addTopic("T", MessageTypeNormal, 1)
	aclFile := writeACL(t, t.TempDir())
	s := startProxy(t, b, func(c *Config) { c.Auth, c.ACLFile = true, aclFile })
	c := dial(t, s.Addr().String(), true)
	as := func(user, clientID string) context.Context {
		return signedCtx(t, user, user+"-secret", clientID, 5*time.Second)
	}
	// settings sends st on a new stream and returns the stream's end (nil while it stays open
	// after an OK reply). A refusal comes as a status element naming it (the Node.js SDK fails
	// its start-up on it, QA R8R-4), then the stream's end.
	settings := func(ctx context.Context, st *pb.Settings) error {
		stream, err := c.Telemetry(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stream.Send(&pb.TelemetryCommand{Command: &pb.TelemetryCommand_Settings{Settings: st}})
		r, err := stream.Recv()
		if err != nil || r.GetStatus().GetCode() == pb.Code_OK {
			return err
		}
		if r.GetStatus().GetCode() != pb.Code_FORBIDDEN || r.GetSettings() != nil {
			t.Fatalf("refusal element %v", r)
		}
		_, err = stream.Recv()
		if err == nil {
			t.Fatal("stream still open after a refusal element")
		}
		return err
	}
	// bob (Sub on Topic:*, Group:g-*) cannot announce himself as T's producer: he would get
	// T's transaction check-backs.
	if err := settings(as("bob", "bob-p"), producerSettings("T")); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("bob as producer of T: %v, want PermissionDenied", err)
	}
	if err := settings(as("bob", "bob-c1"), consumerSettings("other")); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("bob consuming as group other: %v, want PermissionDenied", err)
	}
	if err := settings(as("bob", "bob-c2"), consumerSettings("g-1")); err != nil {
		t.Fatalf("bob consuming as g-1: %v", err)
	}
	// Namespaced names match the bare policy names (Apache): group ns1%g-2 is Group:g-2.
	nsc := consumerSettings("g-2")
	nsc.GetSubscription().Group.ResourceNamespace = "ns1"
	if err := settings(as("bob", "bob-ns"), nsc); err != nil {
		t.Fatalf("bob consuming as g-2 in namespace ns1: %v", err)
	}
	// alice owns client id "alice-1"; bob cannot heartbeat, re-register or terminate it.
	if err := settings(as("alice", "alice-1"), producerSettings("T")); err != nil {
		t.Fatalf("alice as producer: %v", err)
	}
	if r, _ := c.Heartbeat(as("bob", "alice-1"), &pb.HeartbeatRequest{}); r.GetStatus().GetCode() != pb.Code_FORBIDDEN {
		t.Fatalf("bob's heartbeat as alice's client: %v", r.GetStatus())
	}
	if r, _ := c.NotifyClientTermination(as("bob", "alice-1"), &pb.NotifyClientTerminationRequest{}); r.GetStatus().GetCode() != pb.Code_FORBIDDEN {
		t.Fatalf("bob terminating alice's client: %v", r.GetStatus())
	}
	if err := settings(as("bob", "alice-1"), consumerSettings("g-1")); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("bob re-registering alice's client: %v", err)
	}
	if r, _ := c.Heartbeat(as("alice", "alice-1"), &pb.HeartbeatRequest{}); r.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("alice's own heartbeat: %v", r.GetStatus())
	}
	// A consumer heartbeat needs Sub on its group.
	ct := pb.ClientType_SIMPLE_CONSUMER
	if r, _ := c.Heartbeat(as("bob", "bob-c2"), &pb.HeartbeatRequest{ClientType: ct, Group: &pb.Resource{Name: "other"}}); r.GetStatus().GetCode() != pb.Code_FORBIDDEN {
		t.Fatalf("bob heartbeating group other: %v", r.GetStatus())
	}
	if r, _ := c.Heartbeat(as("bob", "bob-c2"), &pb.HeartbeatRequest{ClientType: ct, Group: &pb.Resource{Name: "g-1"}}); r.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("bob heartbeating g-1: %v", r.GetStatus())
	}
	if r, _ := c.NotifyClientTermination(as("bob", "bob-c2"), &pb.NotifyClientTerminationRequest{Group: &pb.Resource{Name: "g-1"}}); r.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("bob terminating his own client: %v", r.GetStatus())
	}
}

// TestAutoCreateNeedsPub (QA R8K-12): with authentication on, a route lookup creates an
// unknown topic only for a caller allowed to publish to it.
func TestAutoCreateNeedsPub(t *testing.T) {
	b := newMemBackend()
	aclFile := writeACL(t, t.TempDir())
	s := startProxy(t, b, func(c *Config) { c.Auth, c.ACLFile, c.AutoCreateTopic = true, aclFile, true })
	c := dial(t, s.Addr().String(), true)
	as := func(user string) context.Context { return signedCtx(t, user, user+"-secret", user, 5*time.Second) }
	r, _ := c.QueryRoute(as("bob"), &pb.QueryRouteRequest{Topic: &pb.Resource{Name: "by-bob"}})
	b.mu.Lock()
	_, created := b.topics["by-bob"]
	b.mu.Unlock()
	if r.GetStatus().GetCode() != pb.Code_TOPIC_NOT_FOUND || created {
		t.Fatalf("subscribe-only lookup: %v, created %v", r.GetStatus(), created)
	}
	if r, _ := c.QueryRoute(as("alice"), &pb.QueryRouteRequest{Topic: &pb.Resource{Name: "by-alice"}}); r.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("publisher lookup: %v", r.GetStatus())
	}
}

// TestCheckBacksFollowTheCurrentACL (QA R8K-1): a transaction check-back goes only to a
// producer whose user may still publish to the topic under the current ACL; revoking the
// right (or the user) stops check-backs on a stream that was opened before.
func TestCheckBacksFollowTheCurrentACL(t *testing.T) {
	b := newMemBackend()
	b.addTopic("T", MessageTypeTransaction, 1)
	dir := t.TempDir()
	aclFile := writeACL(t, dir)
	s := startProxy(t, b, func(c *Config) { c.Auth, c.ACLFile, c.ACLReloadInterval = true, aclFile, 10*time.Millisecond })
	c := dial(t, s.Addr().String(), true)
	stream, err := c.Telemetry(signedCtx(t, "alice", "alice-secret", "alice-p", 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&pb.TelemetryCommand{Command: &pb.TelemetryCommand_Settings{Settings: producerSettings("T")}})
	if r, err := stream.Recv(); err != nil || r.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("alice's producer settings: %v %v", r, err)
	}
	sessions := s.clients.producerSessions("T")
	if len(sessions) != 1 || sessions[0].owner != "alice" || !s.mayCheck(sessions[0], "T") {
		t.Fatalf("alice's producer session %+v: not eligible for check-backs", sessions)
	}
	// Revoke: alice may no longer publish to T.
	err = auth.Save(aclFile, &auth.ACL{Users: []auth.User{{Username: "alice", Password: "alice-secret", Policies: []auth.Policy{
		{Resource: "*", Actions: []auth.Action{auth.ActionAll}, Decision: auth.Allow},
		{Resource: "Topic:T", Actions: []auth.Action{auth.ActionPub}, Decision: auth.Deny},
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "check-backs stop after the revocation", func() bool { return !s.mayCheck(sessions[0], "T") })
	// Removing the user altogether also stops them.
	if err := auth.Save(aclFile, &auth.ACL{Users: []auth.User{{Username: "carol", Password: "carol-secret-longer", Super: true}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "alice removed", func() bool { return s.acl.Lookup("alice") == nil })
	if s.mayCheck(sessions[0], "T") {
		t.Fatal("check-backs still go to a removed user's producer")
	}
}

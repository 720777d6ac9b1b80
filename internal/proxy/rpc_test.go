package proxy

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	go5md "github.com/apache/rocketmq-clients/golang/v5/metadata"
	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rocketry-mq/rocketry/internal/proxy/auth"
)

func producerSettings(topics ...string) *pb.Settings {
	pt := pb.ClientType_PRODUCER
	var rs []*pb.Resource
	for _, t := range topics {
		rs = append(rs, &pb.Resource{Name: t})
	}
	return &pb.Settings{
		ClientType:     &pt,
		RequestTimeout: durationpb.New(3 * time.Second),
		BackoffPolicy:  &pb.RetryPolicy{MaxAttempts: 3},
		PubSub:         &pb.Settings_Publishing{Publishing: &pb.Publishing{Topics: rs}},
		UserAgent:      &pb.UA{Language: pb.Language_GOLANG, Version: "5.0.1-rc1"},
	}
}

func consumerSettings(group string) *pb.Settings {
	ct := pb.ClientType_SIMPLE_CONSUMER
	return &pb.Settings{
		ClientType: &ct,
		PubSub: &pb.Settings_Subscription{Subscription: &pb.Subscription{
			Group:         &pb.Resource{Name: group},
			Subscriptions: []*pb.SubscriptionEntry{{Topic: &pb.Resource{Name: "T"}, Expression: &pb.FilterExpression{Type: pb.FilterType_TAG, Expression: "*"}}},
		}},
	}
}

// settingsReply opens a telemetry stream as clientID, sends st and returns the reply.
func settingsReply(t *testing.T, c pb.MessagingServiceClient, clientID string, st *pb.Settings) (*pb.TelemetryCommand, pb.MessagingService_TelemetryClient) {
	t.Helper()
	stream, err := c.Telemetry(cctx(t, clientID, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.TelemetryCommand{Command: &pb.TelemetryCommand_Settings{Settings: st}}); err != nil {
		t.Fatal(err)
	}
	got := make(chan *pb.TelemetryCommand, 1)
	go func() {
		r, err := stream.Recv()
		if err != nil {
			close(got)
			return
		}
		got <- r
	}()
	select {
	case r, ok := <-got:
		if !ok {
			t.Fatal("telemetry stream closed without a settings reply")
		}
		return r, stream
	case <-time.After(3 * time.Second):
		t.Fatal("no settings reply within 3 s")
	}
	return nil, nil
}

func TestTelemetrySettingsReply(t *testing.T) {
	b := newMemBackend()
	b.groups["fifo-group"] = &GroupConfig{Name: "fifo-group", ConsumeEnable: true, Orderly: true, RetryMaxTimes: 5}
	s := startProxy(t, b, nil)
	c := dial(t, s.Addr().String(), false)

	r, _ := settingsReply(t, c, "producer-1", producerSettings("T"))
	if r.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("status = %v", r.GetStatus())
	}
	pub := r.GetSettings().GetPublishing()
	if pub.GetMaxBodySize() != 4<<20 || !pub.GetValidateMessageType() || len(pub.GetTopics()) != 1 {
		t.Errorf("publishing = %+v", pub)
	}
	if m := r.GetSettings().GetMetric(); m != nil {
		t.Errorf("metric for a Go client = %v, want none (go5 Reset races)", m)
	}
	if bp := r.GetSettings().GetBackoffPolicy(); bp.GetMaxAttempts() != 3 || bp.GetExponentialBackoff() == nil {
		t.Errorf("producer backoff = %v", bp)
	}
	// A go5 producer gets its own backoff back, field for field (F10: the SDK re-marshals its
	// settings while it applies the reply; a reply of another encoded size breaks Start).
	goProducer := producerSettings("T")
	goProducer.BackoffPolicy.Strategy = &pb.RetryPolicy_ExponentialBackoff{ExponentialBackoff: &pb.ExponentialBackoff{
		Initial: durationpb.New(0), Max: durationpb.New(0), Multiplier: 1,
	}}
	r, _ = settingsReply(t, c, "producer-go", goProducer)
	if got, sent := r.GetSettings().GetBackoffPolicy(), goProducer.GetBackoffPolicy(); proto.Size(got) != proto.Size(sent) ||
		!proto.Equal(got.GetExponentialBackoff(), sent.GetExponentialBackoff()) {
		t.Errorf("go5 producer backoff = %v, want its own %v", got, sent)
	}
	nodeProducer := producerSettings("T")
	nodeProducer.UserAgent.Language = pb.Language_NODE_JS
	r, _ = settingsReply(t, c, "producer-node", nodeProducer)
	if eb := r.GetSettings().GetBackoffPolicy().GetExponentialBackoff(); eb.GetInitial().AsDuration() != 10*time.Millisecond || eb.GetMultiplier() != 2 {
		t.Errorf("node producer backoff = %v, want the server's 10ms x2", eb)
	}

	r, _ = settingsReply(t, c, "consumer-1", consumerSettings("fifo-group"))
	if m := r.GetSettings().GetMetric(); m == nil || m.GetOn() {
		t.Errorf("metric = %v, want {on:false}", m)
	}
	sub := r.GetSettings().GetSubscription()
	if !sub.GetFifo() || sub.GetReceiveBatchSize() != 32 || sub.GetLongPollingTimeout().AsDuration() != 20*time.Second {
		t.Errorf("subscription = %+v", sub)
	}
	if bp := r.GetSettings().GetBackoffPolicy(); bp.GetMaxAttempts() != 6 || len(bp.GetCustomizedBackoff().GetNext()) == 0 {
		t.Errorf("consumer backoff = %v, want max_attempts 6 (retryMaxTimes 5 + 1)", bp)
	}

	// Settings without pub_sub close the stream with INVALID_ARGUMENT.
	stream, err := c.Telemetry(cctx(t, "broken", 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&pb.TelemetryCommand{Command: &pb.TelemetryCommand_Settings{Settings: &pb.Settings{}}})
	if err := streamEnd(stream); err == nil || err == io.EOF {
		t.Fatalf("Recv err = %v, want INVALID_ARGUMENT", err)
	}

	// R7G-3: an illegal consumer group or publishing topic (bad characters, system topic)
	// also ends the stream with INVALID_ARGUMENT naming the reason (Apache ClientActivity).
	for name, st := range map[string]*pb.Settings{
		"bad group":    consumerSettings("bad.group"),
		"system topic": producerSettings("TBW102"),
		"bad topic":    producerSettings("bad.topic"),
	} {
		stream, err := c.Telemetry(cctx(t, "broken-"+strings.ReplaceAll(name, " ", "-"), 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		stream.Send(&pb.TelemetryCommand{Command: &pb.TelemetryCommand_Settings{Settings: st}})
		// First a status element with the reason's code (R8R-4), then the stream's end.
		if r, err := stream.Recv(); err != nil || r.GetStatus().GetCode() == pb.Code_OK {
			t.Errorf("%s: first element %v, %v; want the refusal's status", name, r, err)
			continue
		}
		_, err = stream.Recv()
		if s, _ := status.FromError(err); s.Code() != codes.InvalidArgument ||
			!strings.HasPrefix(s.Message(), "process client telemetryCommand failed. ") {
			t.Errorf("%s: Recv err = %v, want INVALID_ARGUMENT", name, err)
		}
	}
}

// streamEnd reads a Telemetry stream until it ends and returns how.
func streamEnd(stream pb.MessagingService_TelemetryClient) error {
	for {
		if _, err := stream.Recv(); err != nil {
			return err
		}
	}
}

func TestHeartbeatAndClientID(t *testing.T) {
	s := startProxy(t, newMemBackend(), nil)
	c := dial(t, s.Addr().String(), false)
	resp, err := c.Heartbeat(cctx(t, "", 3*time.Second), &pb.HeartbeatRequest{})
	if err != nil || resp.GetStatus().GetCode() != pb.Code_CLIENT_ID_REQUIRED {
		t.Fatalf("no client id: %v, %v", resp, err)
	}
	resp, _ = c.Heartbeat(cctx(t, "c1", 3*time.Second), &pb.HeartbeatRequest{ClientType: pb.ClientType_PRODUCER})
	if resp.GetStatus().GetCode() != pb.Code_UNRECOGNIZED_CLIENT_TYPE {
		t.Fatalf("unknown client: %v", resp.GetStatus())
	}
	settingsReply(t, c, "c1", producerSettings("T"))
	resp, _ = c.Heartbeat(cctx(t, "c1", 3*time.Second), &pb.HeartbeatRequest{}) // go5's empty recovery heartbeat
	if resp.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("known client: %v", resp.GetStatus())
	}
	// A consumer's heartbeat must name a legal group, as Apache's ClientActivity (QA R11B-6).
	for _, g := range []string{"", "bad group!"} {
		resp, _ = c.Heartbeat(cctx(t, "c1", 3*time.Second), &pb.HeartbeatRequest{ClientType: pb.ClientType_SIMPLE_CONSUMER, Group: &pb.Resource{Name: g}})
		if resp.GetStatus().GetCode() != pb.Code_ILLEGAL_CONSUMER_GROUP {
			t.Fatalf("consumer heartbeat with group %q: %v", g, resp.GetStatus())
		}
	}
	resp, _ = c.Heartbeat(cctx(t, "c1", 3*time.Second), &pb.HeartbeatRequest{ClientType: pb.ClientType_SIMPLE_CONSUMER, Group: &pb.Resource{Name: "g1"}})
	if resp.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("consumer heartbeat: %v", resp.GetStatus())
	}
	nt, _ := c.NotifyClientTermination(cctx(t, "c1", 3*time.Second), &pb.NotifyClientTerminationRequest{})
	if nt.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("termination: %v", nt.GetStatus())
	}
	resp, _ = c.Heartbeat(cctx(t, "c1", 3*time.Second), &pb.HeartbeatRequest{})
	if resp.GetStatus().GetCode() != pb.Code_UNRECOGNIZED_CLIENT_TYPE {
		t.Fatalf("terminated client: %v", resp.GetStatus())
	}
}

func TestClientExpiry(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newRegistry(func() time.Time { return now })
	r.putSettings("a", "", "", producerSettings("T"), &session{out: make(chan *pb.TelemetryCommand, 1), done: make(chan struct{})})
	r.putSettings("b", "", "", producerSettings("T"), nil)
	now = now.Add(100 * time.Second)
	r.touch("b")
	now = now.Add(30 * time.Second)
	gone, _ := r.expire(120 * time.Second)
	if len(gone) != 1 || gone[0] != "a" || r.touch("a") || !r.touch("b") {
		t.Fatalf("expired %v; a known=%v", gone, r.touch("a"))
	}
}

func TestQueryRouteShape(t *testing.T) {
	b := newMemBackend()
	b.addTopic("T", MessageTypeFIFO, 2)
	b.topics["RO"] = &TopicConfig{Name: "RO", ReadQueues: 2, WriteQueues: 1, Perm: PermRead | PermWrite, MessageType: MessageTypeMixed}
	s := startProxy(t, b, func(c *Config) { c.AdvertiseAddr = "proxy.example:9000" })
	c := dial(t, s.Addr().String(), false)
	resp, _ := c.QueryRoute(cctx(t, "c", 3*time.Second), &pb.QueryRouteRequest{Topic: &pb.Resource{Name: "T"}})
	if resp.GetStatus().GetCode() != pb.Code_OK || len(resp.GetMessageQueues()) != 2 {
		t.Fatalf("route = %v", resp)
	}
	for i, q := range resp.GetMessageQueues() {
		addr := q.GetBroker().GetEndpoints().GetAddresses()[0]
		if q.GetId() != int32(i) || q.GetBroker().GetId() != 0 || addr.GetHost() != "proxy.example" || addr.GetPort() != 9000 ||
			q.GetPermission() != pb.Permission_READ_WRITE || len(q.GetAcceptMessageTypes()) != 1 || q.GetAcceptMessageTypes()[0] != pb.MessageType_FIFO {
			t.Errorf("queue %d = %v", i, q)
		}
	}
	resp, _ = c.QueryRoute(cctx(t, "c", 3*time.Second), &pb.QueryRouteRequest{Topic: &pb.Resource{Name: "RO"}})
	qs := resp.GetMessageQueues()
	if len(qs) != 2 || qs[0].GetPermission() != pb.Permission_READ_WRITE || qs[1].GetPermission() != pb.Permission_READ || len(qs[0].GetAcceptMessageTypes()) != 4 {
		t.Errorf("mixed/read-only route = %v", qs)
	}
	resp, _ = c.QueryRoute(cctx(t, "c", 3*time.Second), &pb.QueryRouteRequest{Topic: &pb.Resource{Name: "missing"}})
	if resp.GetStatus().GetCode() != pb.Code_TOPIC_NOT_FOUND {
		t.Errorf("missing topic: %v", resp.GetStatus())
	}
	resp, _ = c.QueryRoute(cctx(t, "c", 3*time.Second), &pb.QueryRouteRequest{Topic: &pb.Resource{Name: "bad.name"}})
	if resp.GetStatus().GetCode() != pb.Code_ILLEGAL_TOPIC {
		t.Errorf("illegal topic: %v", resp.GetStatus())
	}
}

func TestAutoCreateTopic(t *testing.T) {
	b := newMemBackend()
	s := startProxy(t, b, func(c *Config) { c.AutoCreateTopic = true })
	c := dial(t, s.Addr().String(), false)
	resp, _ := c.QueryRoute(cctx(t, "c", 3*time.Second), &pb.QueryRouteRequest{Topic: &pb.Resource{Name: "fresh"}})
	if resp.GetStatus().GetCode() != pb.Code_OK || len(resp.GetMessageQueues()) != 8 || resp.GetMessageQueues()[0].GetAcceptMessageTypes()[0] != pb.MessageType_NORMAL {
		t.Fatalf("auto-created route = %v", resp)
	}
}

func receiveAll(t *testing.T, c pb.MessagingServiceClient, req *pb.ReceiveMessageRequest, d time.Duration) []*pb.ReceiveMessageResponse {
	t.Helper()
	return receiveAllAs(t, c, "c", req, d)
}

func receiveAllAs(t *testing.T, c pb.MessagingServiceClient, clientID string, req *pb.ReceiveMessageRequest, d time.Duration) []*pb.ReceiveMessageResponse {
	t.Helper()
	stream, err := c.ReceiveMessage(cctx(t, clientID, d), req)
	if err != nil {
		t.Fatal(err)
	}
	var out []*pb.ReceiveMessageResponse
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		out = append(out, r)
	}
}

func TestReceiveStreamShape(t *testing.T) {
	b := newMemBackend()
	b.addTopic("T", MessageTypeNormal, 1)
	s := startProxy(t, b, nil)
	c := dial(t, s.Addr().String(), false)
	req := &pb.ReceiveMessageRequest{
		Group:             &pb.Resource{Name: "g"},
		MessageQueue:      &pb.MessageQueue{Topic: &pb.Resource{Name: "T"}, Broker: &pb.Broker{Name: memBroker}},
		FilterExpression:  &pb.FilterExpression{Type: pb.FilterType_TAG, Expression: "*"},
		BatchSize:         4,
		InvisibleDuration: durationpb.New(10 * time.Second),
	}
	// Empty: the long poll ends ~1.5 s before the 3 s deadline with MESSAGE_NOT_FOUND.
	start := time.Now()
	out := receiveAll(t, c, req, 3*time.Second)
	if el := time.Since(start); el < time.Second || el > 2800*time.Millisecond {
		t.Errorf("empty poll took %v, want deadline - margin", el)
	}
	if len(out) != 2 || out[0].GetStatus().GetCode() != pb.Code_MESSAGE_NOT_FOUND || out[1].GetDeliveryTimestamp() == nil {
		t.Fatalf("empty stream = %v", out)
	}

	// A message arriving during the poll wakes it.
	go func() {
		time.Sleep(200 * time.Millisecond)
		cfg := DefaultConfig()
		out, _ := cfg.buildMessage(baseMsg(), "T", time.Now())
		b.Send(context.Background(), &SendRequest{Broker: memBroker, Message: out.msg})
	}()
	out = receiveAll(t, c, req, 5*time.Second)
	if len(out) != 3 || out[0].GetStatus().GetCode() != pb.Code_OK || out[1].GetMessage() == nil || out[2].GetDeliveryTimestamp() == nil {
		t.Fatalf("stream = %v", out)
	}
	sp := out[1].GetMessage().GetSystemProperties()
	if sp.GetMessageId() != "01ABCDEF" || sp.GetReceiptHandle() == "" || sp.GetDeliveryAttempt() != 1 ||
		sp.GetBodyDigest().GetChecksum() == "" || sp.GetMessageType() != pb.MessageType_NORMAL || sp.GetQueueOffset() != 0 {
		t.Errorf("system properties = %v", sp)
	}
	// The digest is the Java proxy's: MD5 in upper-case hex (Node.js and Java verify it).
	body := out[1].GetMessage().GetBody()
	sum := md5.Sum(body)
	if d := sp.GetBodyDigest(); d.GetType() != pb.DigestType_MD5 || d.GetChecksum() != strings.ToUpper(hex.EncodeToString(sum[:])) {
		t.Errorf("body digest = %v, want upper-case MD5 of %q", d, body)
	}

	// Invisible duration outside [min, 12h].
	req.InvisibleDuration = durationpb.New(13 * time.Hour)
	out = receiveAll(t, c, req, 3*time.Second)
	if out[0].GetStatus().GetCode() != pb.Code_ILLEGAL_INVISIBLE_TIME {
		t.Errorf("13h invisible: %v", out[0].GetStatus())
	}
	// SQL filters go to the backend, which refuses them here (the memory fake has no property
	// filter; real brokers evaluate them: e2e sql92).
	req.InvisibleDuration = durationpb.New(10 * time.Second)
	req.FilterExpression = &pb.FilterExpression{Type: pb.FilterType_SQL, Expression: "a > 1"}
	out = receiveAll(t, c, req, 3*time.Second)
	if out[0].GetStatus().GetCode() != pb.Code_ILLEGAL_FILTER_EXPRESSION {
		t.Errorf("SQL filter: %v", out[0].GetStatus())
	}
}

func TestAckErrors(t *testing.T) {
	b := newMemBackend()
	b.addTopic("T", MessageTypeNormal, 1)
	s := startProxy(t, b, nil)
	c := dial(t, s.Addr().String(), false)
	resp, _ := c.AckMessage(cctx(t, "c", 3*time.Second), &pb.AckMessageRequest{
		Group: &pb.Resource{Name: "g"}, Topic: &pb.Resource{Name: "T"},
		Entries: []*pb.AckMessageEntry{{MessageId: "m", ReceiptHandle: "forged"}},
	})
	if resp.GetStatus().GetCode() != pb.Code_INVALID_RECEIPT_HANDLE || resp.GetEntries()[0].GetReceiptHandle() != "forged" {
		t.Fatalf("forged handle: %v", resp)
	}
	et, _ := c.EndTransaction(cctx(t, "c", 3*time.Second), &pb.EndTransactionRequest{Topic: &pb.Resource{Name: "T"}, TransactionId: ""})
	if et.GetStatus().GetCode() != pb.Code_INVALID_TRANSACTION_ID {
		t.Fatalf("blank transaction id: %v", et.GetStatus())
	}
	sr, _ := c.SendMessage(cctx(t, "c", 3*time.Second), &pb.SendMessageRequest{})
	if sr.GetStatus().GetCode() != pb.Code_MESSAGE_CORRUPTED {
		t.Fatalf("empty send: %v", sr.GetStatus())
	}
}

func TestAuthStatuses(t *testing.T) {
	b := newMemBackend()
	b.addTopic("T", MessageTypeNormal, 1)
	aclFile := writeACL(t, t.TempDir())
	s := startProxy(t, b, func(c *Config) { c.Auth, c.ACLFile = true, aclFile })
	c := dial(t, s.Addr().String(), true)
	signed := func(ak, sk string) context.Context { return signedCtx(t, ak, sk, "c", 3*time.Second) }
	route := func(ctx context.Context) *pb.Status {
		r, err := c.QueryRoute(ctx, &pb.QueryRouteRequest{Topic: &pb.Resource{Name: "T"}})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetStatus()
	}
	if st := route(signed("alice", "alice-secret")); st.GetCode() != pb.Code_OK {
		t.Fatalf("alice: %v", st)
	}
	wrong, unknown := route(signed("alice", "nope")), route(signed("mallory", "x"))
	if wrong.GetCode() != pb.Code_UNAUTHORIZED || unknown.GetCode() != pb.Code_UNAUTHORIZED || wrong.GetMessage() != unknown.GetMessage() {
		t.Fatalf("wrong secret %v / unknown user %v: want the same UNAUTHORIZED", wrong, unknown)
	}
	if st := route(cctx(t, "c", 3*time.Second)); st.GetCode() != pb.Code_UNAUTHORIZED {
		t.Fatalf("anonymous: %v", st)
	}
	// go5 in another time zone stamps its local wall time with a literal Z (QA F16): accepted
	// for a go5 client (x-mq-language GOLANG), refused for a client that claims real UTC.
	zoned := func(lang string) context.Context {
		ctx := cctx(t, "c", 3*time.Second)
		dt := time.Now().In(time.FixedZone("IST", 5*3600+1800)).Format(auth.DateTimeLayout)
		return metadata.AppendToOutgoingContext(ctx, "x-mq-language", lang, auth.HeaderDateTime, dt,
			auth.HeaderAuthorization, "MQv2-HMAC-SHA1 Credential=alice//Rocketmq, SignedHeaders=x-mq-date-time, Signature="+auth.Sign("alice-secret", dt))
	}
	// The header value go5 v5.1.2 really sends (its metadata.LanguageValue, "GO"; QA R7G-1),
	// and the proto enum name.
	for _, lang := range []string{go5md.LanguageValue, "GOLANG"} {
		if st := route(zoned(lang)); st.GetCode() != pb.Code_OK {
			t.Fatalf("go5 (%s) stamp from UTC+05:30: %v", lang, st)
		}
	}
	if st := route(zoned("JAVA")); st.GetCode() != pb.Code_UNAUTHORIZED {
		t.Fatalf("non-go5 stamp 5 h 30 ahead: %v, want UNAUTHORIZED", st)
	}
	sr, _ := c.SendMessage(signed("bob", "bob-secret"), &pb.SendMessageRequest{Messages: []*pb.Message{baseMsg()}})
	if sr.GetStatus().GetCode() != pb.Code_FORBIDDEN || !strings.Contains(sr.GetStatus().GetMessage(), "Topic T") {
		t.Fatalf("bob publishing: %v", sr.GetStatus())
	}
	// Telemetry without valid credentials ends with UNAUTHENTICATED.
	stream, err := c.Telemetry(signed("alice", "nope"))
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&pb.TelemetryCommand{Command: &pb.TelemetryCommand_Settings{Settings: producerSettings("T")}})
	for {
		if _, err := stream.Recv(); err != nil {
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("telemetry err = %v", err)
			}
			break
		}
	}
}

func TestQueryAssignmentAndForwardDLQ(t *testing.T) {
	b := newMemBackend()
	b.addTopic("T", MessageTypeNormal, 3)
	b.groups["fifo"] = &GroupConfig{Name: "fifo", ConsumeEnable: true, Orderly: true, RetryMaxTimes: 16}
	s := startProxy(t, b, nil)
	c := dial(t, s.Addr().String(), false)
	qa, _ := c.QueryAssignment(cctx(t, "c", 3*time.Second), &pb.QueryAssignmentRequest{Topic: &pb.Resource{Name: "T"}, Group: &pb.Resource{Name: "g"}})
	if qa.GetStatus().GetCode() != pb.Code_OK || len(qa.GetAssignments()) != 1 || qa.GetAssignments()[0].GetMessageQueue().GetId() != -1 {
		t.Fatalf("normal group assignments = %v", qa)
	}
	qa, _ = c.QueryAssignment(cctx(t, "c", 3*time.Second), &pb.QueryAssignmentRequest{Topic: &pb.Resource{Name: "T"}, Group: &pb.Resource{Name: "fifo"}})
	if len(qa.GetAssignments()) != 3 {
		t.Fatalf("FIFO group assignments = %v", qa)
	}

	cfg := DefaultConfig()
	out, _ := cfg.buildMessage(baseMsg(), "T", time.Now())
	b.Send(context.Background(), &SendRequest{Broker: memBroker, Message: out.msg})
	got := receiveAll(t, c, &pb.ReceiveMessageRequest{
		Group: &pb.Resource{Name: "g"}, MessageQueue: &pb.MessageQueue{Topic: &pb.Resource{Name: "T"}, Broker: &pb.Broker{Name: memBroker}},
		BatchSize: 1, InvisibleDuration: durationpb.New(10 * time.Second),
	}, 3*time.Second)
	if len(got) != 3 {
		t.Fatalf("receive = %v", got)
	}
	sp := got[1].GetMessage().GetSystemProperties()
	fr, _ := c.ForwardMessageToDeadLetterQueue(cctx(t, "c", 3*time.Second), &pb.ForwardMessageToDeadLetterQueueRequest{
		Group: &pb.Resource{Name: "g"}, Topic: &pb.Resource{Name: "T"}, ReceiptHandle: sp.GetReceiptHandle(),
		MessageId: sp.GetMessageId(), DeliveryAttempt: 1, MaxDeliveryAttempts: 16,
	})
	if fr.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("forward to DLQ: %v", fr.GetStatus())
	}
	b.mu.Lock()
	n := len(b.msgs["%DLQ%g"])
	b.mu.Unlock()
	if n != 1 {
		t.Fatalf("DLQ holds %d messages, want 1", n)
	}
}

func TestAutoRenew(t *testing.T) {
	b := newMemBackend()
	b.addTopic("T", MessageTypeNormal, 1)
	s := startProxy(t, b, func(c *Config) { c.MinInvisible, c.DefaultInvisible = 500*time.Millisecond, time.Second })
	c := dial(t, s.Addr().String(), false)
	settingsReply(t, c, "c", consumerSettings("g"))
	cfg := DefaultConfig()
	out, _ := cfg.buildMessage(baseMsg(), "T", time.Now())
	b.Send(context.Background(), &SendRequest{Broker: memBroker, Message: out.msg})
	req := &pb.ReceiveMessageRequest{
		Group: &pb.Resource{Name: "g"}, MessageQueue: &pb.MessageQueue{Topic: &pb.Resource{Name: "T"}, Broker: &pb.Broker{Name: memBroker}},
		BatchSize: 1, AutoRenew: true, // no invisible duration: DefaultInvisible (1 s), renewed
	}
	got := receiveAll(t, c, req, 3*time.Second)
	if len(got) != 3 {
		t.Fatalf("receive = %v", got)
	}
	handle := got[1].GetMessage().GetSystemProperties().GetReceiptHandle()
	// Well past the 1 s invisible time the message is still invisible (renewed)...
	if again := receiveAll(t, c, req, 4*time.Second); again[0].GetStatus().GetCode() != pb.Code_MESSAGE_NOT_FOUND {
		t.Fatalf("auto-renewed message redelivered: %v", again)
	}
	b.mu.Lock()
	gen := b.msgs["T"][0].gen
	b.mu.Unlock()
	if gen < 2 {
		t.Fatalf("handle generation %d: never renewed", gen)
	}
	// ...and the handle the client got still acks it, through the newest broker handle.
	ack, _ := c.AckMessage(cctx(t, "c", 3*time.Second), &pb.AckMessageRequest{
		Group: &pb.Resource{Name: "g"}, Topic: &pb.Resource{Name: "T"},
		Entries: []*pb.AckMessageEntry{{MessageId: "01ABCDEF", ReceiptHandle: handle}},
	})
	if ack.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("ack of the original handle: %v", ack.GetStatus())
	}
	b.mu.Lock()
	acked := b.msgs["T"][0].acked
	b.mu.Unlock()
	if !acked || s.renew.len() != 0 {
		t.Fatalf("acked=%v, renewals left %d", acked, s.renew.len())
	}
}

// The Node.js SDK drops a Settings reply that arrives before it waits for one (see
// settingsRepeats), so non-Go clients get the reply again on the same stream; Go clients once.
func TestTelemetrySettingsRepeatedForNonGoClients(t *testing.T) {
	s := startProxy(t, newMemBackend(), nil)
	c := dial(t, s.Addr().String(), false)
	count := func(lang pb.Language, clientID string) int {
		st := producerSettings("T1", "T2")
		st.UserAgent.Language = lang
		_, stream := settingsReply(t, c, clientID, st)
		n := 1
		deadline := time.After(settingsRepeats[len(settingsRepeats)-1] + 2*time.Second)
		got := make(chan struct{}, 8) // buffered: the reader never blocks after count returns
		go func() {
			for {
				r, err := stream.Recv()
				if err != nil {
					return
				}
				if r.GetSettings() != nil && r.GetStatus().GetCode() == pb.Code_OK {
					got <- struct{}{}
				}
			}
		}()
		for {
			select {
			case <-got:
				n++
			case <-deadline:
				stream.CloseSend()
				return n
			}
		}
	}
	if n := count(pb.Language_NODE_JS, "node-1"); n != 1+len(settingsRepeats) {
		t.Errorf("Node.js client got %d settings replies, want %d", n, 1+len(settingsRepeats))
	}
	if n := count(pb.Language_GOLANG, "go-1"); n != 1 {
		t.Errorf("Go client got %d settings replies, want 1", n)
	}
}

// ChangeInvisibleDuration is bounded by the maximum only: push consumers nack with 1 s, 5 s...
// backoffs and 0 (redeliver now), below the receive minimum.
func TestChangeInvisibleBelowReceiveMinimum(t *testing.T) {
	b := newMemBackend()
	b.addTopic("T", MessageTypeNormal, 1)
	s := startProxy(t, b, func(c *Config) { c.MinInvisible, c.DefaultInvisible = 10*time.Second, 30*time.Second })
	c := dial(t, s.Addr().String(), false)
	settingsReply(t, c, "c", consumerSettings("g"))
	cfg := DefaultConfig()
	out, _ := cfg.buildMessage(baseMsg(), "T", time.Now())
	b.Send(context.Background(), &SendRequest{Broker: memBroker, Message: out.msg})
	req := &pb.ReceiveMessageRequest{
		Group: &pb.Resource{Name: "g"}, MessageQueue: &pb.MessageQueue{Topic: &pb.Resource{Name: "T"}, Broker: &pb.Broker{Name: memBroker}},
		BatchSize: 1, InvisibleDuration: durationpb.New(30 * time.Second),
	}
	got := receiveAll(t, c, req, 3*time.Second)
	if len(got) != 3 {
		t.Fatalf("receive = %v", got)
	}
	handle := got[1].GetMessage().GetSystemProperties().GetReceiptHandle()
	change := func(d time.Duration, h string) *pb.ChangeInvisibleDurationResponse {
		resp, err := c.ChangeInvisibleDuration(cctx(t, "c", 3*time.Second), &pb.ChangeInvisibleDurationRequest{
			Group: &pb.Resource{Name: "g"}, Topic: &pb.Resource{Name: "T"}, ReceiptHandle: h,
			InvisibleDuration: durationpb.New(d), MessageId: "01ABCDEF",
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	r := change(time.Second, handle)
	if r.GetStatus().GetCode() != pb.Code_OK || r.GetReceiptHandle() == "" {
		t.Fatalf("1 s nack: %v", r.GetStatus())
	}
	if r := change(-time.Second, r.GetReceiptHandle()); r.GetStatus().GetCode() != pb.Code_ILLEGAL_INVISIBLE_TIME {
		t.Fatalf("negative duration: %v", r.GetStatus())
	}
	if r := change(13*time.Hour, r.GetReceiptHandle()); r.GetStatus().GetCode() != pb.Code_ILLEGAL_INVISIBLE_TIME {
		t.Fatalf("13 h: %v", r.GetStatus())
	}
	// The nacked message comes back after about a second.
	if again := receiveAll(t, c, req, 5*time.Second); len(again) != 3 || again[1].GetMessage().GetSystemProperties().GetDeliveryAttempt() != 2 {
		t.Fatalf("redelivery after a 1 s nack: %v", again)
	}
}

// TestNamespaceHeader (QA R8K-4): the x-mq-namespace header applies to Resources without a
// namespace of their own (Node.js consumers send it alone), and never overrides one.
func TestNamespaceHeader(t *testing.T) {
	b := newMemBackend()
	b.addTopic("ns1%T", MessageTypeNormal, 1)
	b.addTopic("ns2%T", MessageTypeNormal, 1)
	s := startProxy(t, b, nil)
	c := dial(t, s.Addr().String(), false)
	inNS := func(ns string) context.Context {
		return metadata.AppendToOutgoingContext(cctx(t, "c", 3*time.Second), mdNamespace, ns)
	}
	if r, _ := c.QueryRoute(inNS("ns1"), &pb.QueryRouteRequest{Topic: &pb.Resource{Name: "T"}}); r.GetStatus().GetCode() != pb.Code_OK {
		t.Fatalf("route of T in ns1 by header: %v", r.GetStatus())
	}
	msg := func(res *pb.Resource) *pb.Message {
		m := baseMsg()
		m.Topic = res
		return m
	}
	for _, tc := range []struct {
		res  *pb.Resource
		want string
	}{
		{&pb.Resource{Name: "T"}, "ns1%T"},                           // header only
		{&pb.Resource{Name: "T", ResourceNamespace: "ns2"}, "ns2%T"}, // explicit wins
	} {
		r, err := c.SendMessage(inNS("ns1"), &pb.SendMessageRequest{Messages: []*pb.Message{msg(tc.res)}})
		if err != nil || r.GetStatus().GetCode() != pb.Code_OK {
			t.Fatalf("send %v: %v %v", tc.res, r.GetStatus(), err)
		}
		b.mu.Lock()
		got := b.sent[len(b.sent)-1].Message.Topic
		b.mu.Unlock()
		if got != tc.want {
			t.Errorf("send %v with header ns1 stored in %q, want %q", tc.res, got, tc.want)
		}
	}
	// Streams too: a receive naming the bare topic and group reads ns1%T.
	stream, err := c.ReceiveMessage(inNS("ns1"), &pb.ReceiveMessageRequest{
		Group: &pb.Resource{Name: "g"}, MessageQueue: &pb.MessageQueue{Topic: &pb.Resource{Name: "T"}, Broker: &pb.Broker{Name: memBroker}},
		BatchSize: 4, InvisibleDuration: durationpb.New(10 * time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for {
		r, err := stream.Recv()
		if err != nil {
			break
		}
		if m := r.GetMessage(); m != nil {
			got++
			if m.GetTopic().GetName() != "T" || m.GetTopic().GetResourceNamespace() != "ns1" {
				t.Errorf("received topic %v, want T in ns1", m.GetTopic())
			}
		}
	}
	if got != 1 {
		t.Fatalf("receive in ns1 by header got %d messages, want the 1 sent to ns1%%T", got)
	}
}

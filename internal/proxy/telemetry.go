package proxy

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"strings"
	"time"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rocketry-mq/rocketry/internal/proxy/auth"
)

// Settings announced to clients (Java GrpcClientSettingsManager defaults).
const (
	consumerBatchSize     = 32
	defaultRetryMaxTimes  = 16
	producerMaxAttempts   = 3
	settingsLookupTimeout = 2 * time.Second // well inside the Java client's 3 s wait
)

// consumerBackoff is RocketMQ's customized retry schedule (delay levels 3..18).
var consumerBackoff = []time.Duration{
	time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, 5 * time.Minute,
	6 * time.Minute, 7 * time.Minute, 8 * time.Minute, 9 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
}

type recvResult struct {
	cmd *pb.TelemetryCommand
	err error
}

// Telemetry keeps one bidirectional stream per client and proxy: the client sends Settings
// (answered with the server's settings) and command results; the proxy pushes commands such
// as RecoverOrphanedTransactionCommand. Idle streams are never closed by the proxy.
func (s *Server) Telemetry(stream pb.MessagingService_TelemetryServer) error {
	ctx := stream.Context()
	c, err := s.begin(ctx)
	if err != nil {
		st := toStatus(err)
		_ = stream.Send(&pb.TelemetryCommand{Status: st})
		code := codes.InvalidArgument
		if st.Code == pb.Code_UNAUTHORIZED {
			code = codes.Unauthenticated
		}
		return grpcstatus.Error(code, st.Message)
	}
	sess := &session{out: make(chan *pb.TelemetryCommand, sessionQueue), done: make(chan struct{})}
	defer close(sess.done)
	defer func() {
		if s.clients.detach(c.clientID, sess) {
			s.rosterChanged()
		}
	}()

	recvc := make(chan recvResult)
	go func() {
		for {
			cmd, err := stream.Recv()
			select {
			case recvc <- recvResult{cmd, err}:
			case <-sess.done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		select {
		case r := <-recvc:
			if r.err != nil {
				if errors.Is(r.err, io.EOF) {
					return nil
				}
				return r.err
			}
			reply, err := s.onTelemetry(ctx, c, r.cmd, sess)
			if err != nil {
				// The refusal goes out as a status element first, then the stream ends: the
				// Node.js SDK fails its start-up only on the element (as for a failed
				// authentication above); without it, it retried forever silently (QA R8R-4).
				st := toStatus(err)
				_ = stream.Send(&pb.TelemetryCommand{Status: st})
				code := codes.InvalidArgument
				if st.GetCode() == pb.Code_FORBIDDEN {
					code = codes.PermissionDenied
				}
				return grpcstatus.Error(code, st.GetMessage())
			}
			if reply != nil {
				if err := stream.Send(reply); err != nil {
					return err
				}
			}
		case cmd := <-sess.out:
			if err := stream.Send(cmd); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// onTelemetry handles one client command and returns the reply, if any. An error closes the
// stream with INVALID_ARGUMENT (Java ClientActivity).
func (s *Server) onTelemetry(ctx context.Context, c *call, cmd *pb.TelemetryCommand, sess *session) (*pb.TelemetryCommand, error) {
	switch x := cmd.GetCommand().(type) {
	case *pb.TelemetryCommand_Settings:
		st := x.Settings
		if st.GetPubSub() == nil {
			return nil, errors.New("there is no publishing or subscription data in settings")
		}
		// As Apache's ClientActivity.processAndWriteClientSettings: an illegal group or
		// publishing topic (bad characters, system names) ends the stream with
		// INVALID_ARGUMENT, so the client fails at once instead of waiting for settings.
		if sub := st.GetSubscription(); sub != nil {
			if _, err := validateGroup(sub.GetGroup()); err != nil {
				return nil, settingsError(err)
			}
		}
		for _, t := range st.GetPublishing().GetTopics() {
			if _, err := validateTopic(t, false); err != nil {
				return nil, settingsError(err)
			}
		}
		if err := s.checkOwner(c); err != nil {
			return nil, err
		}
		if err := s.authorizeSettings(c, st); err != nil {
			return nil, err
		}
		reply := s.serverSettings(ctx, st)
		owner := ""
		if c.user != nil {
			owner = c.user.Username
		}
		if s.clients.putSettings(c.clientID, owner, peerAddr(ctx), st, sess) {
			s.rosterChanged()
		}
		s.logger.Debug("client settings", "client", c.clientID, "type", st.GetClientType().String(), "language", c.language)
		cmd := &pb.TelemetryCommand{Status: okStatus(), Command: &pb.TelemetryCommand_Settings{Settings: reply}}
		if st.GetUserAgent().GetLanguage() != pb.Language_GOLANG {
			repeatSettings(sess, cmd)
		}
		return cmd, nil
	case *pb.TelemetryCommand_ThreadStackTrace, *pb.TelemetryCommand_VerifyMessageResult:
		// Answers to commands this proxy never issues on its own; nothing waits for them.
		s.clients.touch(c.clientID)
		return nil, nil
	default:
		s.logger.Debug("ignoring telemetry command", "client", c.clientID)
		return nil, nil
	}
}

// settingsError is the text of an INVALID_ARGUMENT that ends a Telemetry stream (Java
// ClientActivity.processTelemetryException).
func settingsError(err error) error {
	st := toStatus(err)
	return statusErrorf(st.GetCode(), "process client telemetryCommand failed. %s", st.GetMessage())
}

// settingsRepeats are the delays after which a Settings reply is sent again on the same stream.
//
// The Node.js SDK (rocketmq-client-nodejs 1.0.8, BaseClient#startup) sends Settings while it
// is still fetching the routes of its other topics and only afterwards installs the promise
// that the first Settings reply resolves; a prompt reply is dropped and startup() then waits
// forever (nothing re-sends Settings for 5 minutes). Repeating the reply is harmless for the
// Java and Node clients (they apply identical settings again). go5 applies settings without
// locking while it sends (a data race in the SDK), and never waits for them, so Go clients
// get exactly one reply.
var settingsRepeats = []time.Duration{time.Second, 3 * time.Second}

// repeatSettings schedules copies of cmd on sess; copies for a closed session are dropped.
func repeatSettings(sess *session, cmd *pb.TelemetryCommand) {
	for _, d := range settingsRepeats {
		time.AfterFunc(d, func() { sess.offer(cmd) })
	}
}

// serverSettings merges a client's settings with the proxy's (what the client must apply).
func (s *Server) serverSettings(ctx context.Context, st *pb.Settings) *pb.Settings {
	out := &pb.Settings{
		ClientType:     st.ClientType,
		AccessPoint:    st.GetAccessPoint(),
		RequestTimeout: st.GetRequestTimeout(),
		UserAgent:      st.GetUserAgent(),
	}
	// Metric{on:false} switches client-side metrics off (the Java proxy's default). go5 v5.1.2
	// starts with metrics off already and its clientMeterProvider.Reset (metric.go:185) races
	// with every concurrent send (metric.go:168), so Go clients get no Metric at all: same
	// effect, no data race in the application.
	if st.GetUserAgent().GetLanguage() != pb.Language_GOLANG {
		out.Metric = &pb.Metric{On: false}
	}
	switch ps := st.GetPubSub().(type) {
	case *pb.Settings_Publishing:
		attempts := st.GetBackoffPolicy().GetMaxAttempts()
		if attempts <= 0 {
			attempts = producerMaxAttempts
		}
		backoff := &pb.ExponentialBackoff{
			Initial: durationpb.New(10 * time.Millisecond), Max: durationpb.New(time.Second), Multiplier: 2,
		}
		if own := st.GetBackoffPolicy().GetExponentialBackoff(); own != nil && st.GetUserAgent().GetLanguage() == pb.Language_GOLANG {
			// go5 v5.1.2 applies this reply on its telemetry goroutine while another goroutine
			// may be marshalling its next Settings from the same struct (no lock): a reply
			// that changes the backoff's encoded size makes that marshal fail with "size
			// mismatch" and Start() return an error (QA finding F10). Echoing the client's
			// own backoff keeps every field it re-marshals the same size.
			backoff = &pb.ExponentialBackoff{Initial: own.GetInitial(), Max: own.GetMax(), Multiplier: own.GetMultiplier()}
		}
		out.BackoffPolicy = &pb.RetryPolicy{
			MaxAttempts: attempts,
			Strategy:    &pb.RetryPolicy_ExponentialBackoff{ExponentialBackoff: backoff},
		}
		out.PubSub = &pb.Settings_Publishing{Publishing: &pb.Publishing{
			Topics:              ps.Publishing.GetTopics(),
			MaxBodySize:         int32(s.cfg.MaxBodySize),
			ValidateMessageType: true,
		}}
	case *pb.Settings_Subscription:
		fifo, retryMax := false, defaultRetryMaxTimes
		group := wrapNamespace(ps.Subscription.GetGroup().GetResourceNamespace(), ps.Subscription.GetGroup().GetName())
		lctx, cancel := context.WithTimeout(ctx, settingsLookupTimeout)
		gc, err := s.backend.GroupConfig(lctx, group)
		cancel()
		if err == nil {
			fifo, retryMax = gc.Orderly, gc.RetryMaxTimes
		} else {
			s.logger.Debug("group config unavailable for settings; using defaults", "group", group, "err", err)
		}
		next := make([]*durationpb.Duration, len(consumerBackoff))
		for i, d := range consumerBackoff {
			next[i] = durationpb.New(d)
		}
		out.BackoffPolicy = &pb.RetryPolicy{
			MaxAttempts: int32(retryMax + 1),
			Strategy:    &pb.RetryPolicy_CustomizedBackoff{CustomizedBackoff: &pb.CustomizedBackoff{Next: next}},
		}
		batch := int32(consumerBatchSize)
		out.PubSub = &pb.Settings_Subscription{Subscription: &pb.Subscription{
			Group:              ps.Subscription.GetGroup(),
			Subscriptions:      ps.Subscription.GetSubscriptions(),
			Fifo:               &fifo,
			ReceiveBatchSize:   &batch,
			LongPollingTimeout: durationpb.New(s.cfg.MaxLongPolling),
		}}
	}
	return out
}

// Heartbeat keeps a client alive. A client whose settings are unknown (never sent, expired,
// or the proxy restarted) gets UNRECOGNIZED_CLIENT_TYPE, which makes go5 resend Settings.
func (s *Server) Heartbeat(ctx context.Context, req *pb.HeartbeatRequest) (*pb.HeartbeatResponse, error) {
	c, err := s.begin(ctx)
	if err == nil {
		err = s.checkOwner(c)
	}
	if err == nil && isConsumerType(req.GetClientType()) {
		// Apache validates a consumer's group (ClientActivity.heartbeat: empty or illegal is
		// ILLEGAL_CONSUMER_GROUP, QA R11B-6) and authorizes the heartbeat as Sub on it. The
		// empty heartbeat go5 sends while recovering a stream has no client type.
		var group string
		if group, err = validateGroup(req.GetGroup()); err == nil {
			err = s.authorize(c, auth.ResourceGroup, group, auth.ActionSub)
		}
	}
	if err != nil {
		return &pb.HeartbeatResponse{Status: toStatus(err)}, nil
	}
	if !s.clients.touch(c.clientID) {
		return &pb.HeartbeatResponse{Status: &pb.Status{Code: pb.Code_UNRECOGNIZED_CLIENT_TYPE, Message: "cannot find client settings for this client"}}, nil
	}
	return &pb.HeartbeatResponse{Status: okStatus()}, nil
}

// NotifyClientTermination forgets a client (Java clients send it on shutdown; go5 never does).
func (s *Server) NotifyClientTermination(ctx context.Context, req *pb.NotifyClientTerminationRequest) (*pb.NotifyClientTerminationResponse, error) {
	c, err := s.begin(ctx)
	if err == nil {
		err = s.checkOwner(c)
	}
	if g := req.GetGroup(); err == nil && strings.TrimSpace(g.GetName()) != "" {
		err = s.authorize(c, auth.ResourceGroup, wrapNamespace(g.GetResourceNamespace(), g.GetName()), auth.ActionSub)
	}
	if err != nil {
		return &pb.NotifyClientTerminationResponse{Status: toStatus(err)}, nil
	}
	ok, consumer := s.clients.remove(c.clientID)
	if consumer {
		s.rosterChanged()
	}
	if !ok {
		return &pb.NotifyClientTerminationResponse{Status: &pb.Status{Code: pb.Code_UNRECOGNIZED_CLIENT_TYPE, Message: "cannot find client settings for this client"}}, nil
	}
	return &pb.NotifyClientTerminationResponse{Status: okStatus()}, nil
}

// mayCheck reports whether a check-back of topic may go to producer ps: with
// authentication on, its user must still exist, be enabled and be allowed to publish to the
// topic under the current ACL (a user removed from the ACL keeps no open stream of check-backs,
// QA R8K-1).
func (s *Server) mayCheck(ps producerSession, topic string) bool {
	if s.authn == nil {
		return true
	}
	u := s.acl.Lookup(ps.owner)
	if u == nil || u.Disabled {
		return false
	}
	var ip netip.Addr
	if ap, err := netip.ParseAddrPort(ps.addr); err == nil {
		ip = ap.Addr().Unmap()
	}
	_, bare := withoutNamespace(topic)
	return u.Authorize(auth.ResourceTopic, bare, auth.ActionPub, ip) == nil
}

func isConsumerType(t pb.ClientType) bool {
	// PULL_CONSUMER (4) is newer than the v5.1.2 stubs.
	return t == pb.ClientType_PUSH_CONSUMER || t == pb.ClientType_SIMPLE_CONSUMER || t == 4
}

// ProducerGroups implements TransactionChecker: topics with a connected producer.
func (s *Server) ProducerGroups() []string { return s.clients.producerGroups() }

// CheckTransaction implements TransactionChecker: it pushes a RecoverOrphanedTransactionCommand
// to one connected producer of the topic (producer group = topic name for gRPC clients).
func (s *Server) CheckTransaction(check *TransactionCheck) {
	if check == nil || check.Message == nil {
		return
	}
	group := check.ProducerGroup
	if group == "" {
		group = check.Message.Properties[PropProducerGroup]
	}
	msg := toPBMessage(check.Message, "", 0)
	if check.MsgID != "" && msg.SystemProperties.MessageId == "" {
		msg.SystemProperties.MessageId = check.MsgID
	}
	cmd := &pb.TelemetryCommand{Command: &pb.TelemetryCommand_RecoverOrphanedTransactionCommand{
		RecoverOrphanedTransactionCommand: &pb.RecoverOrphanedTransactionCommand{
			Message: msg,
			TransactionId: encodeTxnID(txnRef{
				Broker: check.Broker, CommitLogOffset: check.CommitLogOffset,
				TranStateTableOffset: check.TranStateTableOffset, TransactionID: check.TransactionID,
			}),
		},
	}}
	for _, ps := range s.clients.producerSessions(group) {
		if !s.mayCheck(ps, group) {
			continue
		}
		if ps.offer(cmd) {
			return
		}
	}
	s.logger.Debug("transaction check dropped: no connected producer", "group", group, "msgId", check.MsgID)
}

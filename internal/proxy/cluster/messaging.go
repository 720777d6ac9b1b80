package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/proxy"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// Send implements proxy.Backend with SEND_MESSAGE_V2 (short header keys a..n).
func (b *Backend) Send(ctx context.Context, req *proxy.SendRequest) (*proxy.SendResult, error) {
	addr, err := b.addrOf(ctx, req.Broker)
	if err != nil {
		return nil, err
	}
	m := req.Message
	ext := map[string]string{
		"a": req.ProducerGroup,
		"b": m.Topic,
		"c": "TBW102",
		"d": "4",
		"e": strconv.Itoa(int(req.QueueID)),
		"f": strconv.Itoa(int(m.SysFlag)),
		"g": strconv.FormatInt(m.BornTimestamp, 10),
		"h": strconv.Itoa(int(m.Flag)),
		"i": string(message.EncodeProperties(m.Properties)),
		"j": strconv.Itoa(int(m.ReconsumeTimes)),
		"k": "false",
		"m": "false",
		"n": req.Broker,
	}
	resp, err := b.invoke(ctx, addr, remoting.NewRequest(remoting.SendMessageV2, ext, m.Body), 0)
	if err != nil {
		return nil, err
	}
	return SendResult(resp, req)
}

// SendResult converts a SEND_MESSAGE(_V2) response (also what the broker's in-process send
// returns) for req: SUCCESS and the flush/replication timeouts are stored sends, anything else
// is a *proxy.BrokerError.
func SendResult(resp *remoting.Command, req *proxy.SendRequest) (*proxy.SendResult, error) {
	res := &proxy.SendResult{}
	switch resp.Code {
	case remoting.Success:
	case remoting.FlushDiskTimeout:
		res.Status = proxy.SendFlushDiskTimeout
	case remoting.FlushSlaveTimeout:
		res.Status = proxy.SendFlushSlaveTimeout
	case remoting.SlaveNotAvailable:
		res.Status = proxy.SendSlaveNotAvailable
	default:
		return nil, brokerErr(resp)
	}
	res.OffsetMsgID = resp.ExtString("msgId")
	res.TransactionID = resp.ExtString("transactionId")
	res.RecallHandle = resp.ExtString("recallHandle")
	res.QueueID = int32(resp.ExtInt64Or("queueId", int64(req.QueueID)))
	res.QueueOffset = resp.ExtInt64Or("queueOffset", 0)
	if _, off, err := message.ParseOffsetMsgID(res.OffsetMsgID); err == nil {
		res.CommitLogOffset = off
	} else if req.Message.SysFlag&proxy.SysFlagTransactionPrepared != 0 {
		return nil, fmt.Errorf("cluster: half message stored with unparsable msgId %q: %w", res.OffsetMsgID, err)
	}
	return res, nil
}

// Pop implements proxy.Backend with POP_MESSAGE; POLLING_TIMEOUT and PULL_NOT_FOUND are empty
// results.
func (b *Backend) Pop(ctx context.Context, req *proxy.PopRequest) (*proxy.PopResult, error) {
	addr, err := b.addrOf(ctx, req.Broker)
	if err != nil {
		return nil, err
	}
	ext := map[string]string{
		"consumerGroup": req.Group,
		"topic":         req.Topic,
		"queueId":       strconv.Itoa(int(req.QueueID)),
		"maxMsgNums":    strconv.Itoa(int(req.MaxMessages)),
		"invisibleTime": strconv.FormatInt(req.InvisibleTime.Milliseconds(), 10),
		"pollTime":      strconv.FormatInt(req.PollTime.Milliseconds(), 10),
		"bornTime":      strconv.FormatInt(time.Now().UnixMilli(), 10),
		"initMode":      "0",
		"expType":       req.FilterType,
		"exp":           req.FilterExpr,
		"order":         strconv.FormatBool(req.Order),
	}
	if req.AttemptID != "" {
		ext["attemptId"] = req.AttemptID // Apache PopMessageRequestHeader.attemptId
	}
	// The broker parks the pop and cannot be told the caller left: the call runs detached
	// from ctx, and a result that arrives after the caller gave up is released (visible
	// again in proxy.ReleaseDelay) instead of being dropped, which left the messages invisible
	// for the whole invisible time, blocked FIFO groups and spent delivery attempts (QA
	// R10S-1; Apache's proxy releases what it cannot write to the client the same way).
	type popOut struct {
		res *proxy.PopResult
		err error
	}
	out := make(chan popOut, 1)
	var mu sync.Mutex
	abandoned := false
	go func() {
		resp, err := b.invoke(context.WithoutCancel(ctx), addr, remoting.NewRequest(remoting.PopMessage, ext, nil), req.PollTime)
		res, err := popResult(resp, err, req)
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			if res != nil && len(res.Messages) > 0 {
				b.release(req.Group, req.Topic, req.Broker, res.Messages)
			}
			return
		}
		out <- popOut{res, err}
	}()
	select {
	case r := <-out:
		return r.res, r.err
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		select {
		case r := <-out: // arrived meanwhile: the caller's stream write fails and releases it
			return r.res, r.err
		default:
			abandoned = true
			return nil, ctx.Err()
		}
	}
}

// release makes popped messages that never reached a client visible again soon, one
// CHANGE_INVISIBLE_TIME each, in the background (bounded by the request timeout).
func (b *Backend) release(group, topic, broker string, msgs []*proxy.Message) {
	go func() {
		for _, m := range msgs {
			ctx, cancel := context.WithTimeout(context.Background(), b.cfg.RequestTimeout)
			_, err := b.ChangeInvisible(ctx, &proxy.ChangeInvisibleRequest{Group: group, Topic: m.Topic,
				Handle: proxy.Handle{Broker: broker, QueueID: m.QueueID, QueueOffset: m.QueueOffset,
					CommitLogOffset: m.CommitLogOffset, Raw: m.ReceiptHandle}, InvisibleTime: proxy.ReleaseDelay})
			cancel()
			if err != nil {
				b.logger.Debug("release of an abandoned popped message failed; it returns after its invisible time",
					"group", group, "topic", topic, "queueOffset", m.QueueOffset, "err", err)
			}
		}
	}()
}

// popResult converts a POP_MESSAGE response for req.
func popResult(resp *remoting.Command, err error, req *proxy.PopRequest) (*proxy.PopResult, error) {
	if err != nil {
		return nil, err
	}
	switch resp.Code {
	case remoting.Success:
	case remoting.PollingTimeout, remoting.PullNotFound:
		return &proxy.PopResult{}, nil
	default:
		return nil, brokerErr(resp)
	}
	exts, err := message.DecodeRecords(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("cluster: pop response from %s: %w", req.Broker, err)
	}
	out := &proxy.PopResult{Messages: make([]*proxy.Message, 0, len(exts))}
	for _, e := range exts {
		m := proxy.MessageFromExt(e)
		m.ReceiptHandle = e.Property(message.PropertyPopCK)
		if m.ReceiptHandle == "" {
			return nil, fmt.Errorf("cluster: popped message without %s from %s", message.PropertyPopCK, req.Broker)
		}
		out.Messages = append(out.Messages, m)
	}
	return out, nil
}

// handleErr maps an ack-family response: forged handles (INVALID_PARAMETER) and stale ones
// (NO_MESSAGE) become the proxy's handle sentinels, the rest stays a BrokerError.
func handleErr(resp *remoting.Command) error {
	switch resp.Code {
	case remoting.InvalidParameter:
		return fmt.Errorf("%w: %s", proxy.ErrHandleInvalid, resp.Remark)
	case remoting.NoMessage:
		return fmt.Errorf("%w: %s", proxy.ErrHandleExpired, resp.Remark)
	default:
		return brokerErr(resp)
	}
}

func handleExt(group, topic string, h proxy.Handle) map[string]string {
	return map[string]string{
		"consumerGroup": group,
		"topic":         topic,
		"queueId":       strconv.Itoa(int(h.QueueID)),
		"offset":        strconv.FormatInt(h.QueueOffset, 10),
		"extraInfo":     h.Raw,
	}
}

// Ack implements proxy.Backend with ACK_MESSAGE.
func (b *Backend) Ack(ctx context.Context, req *proxy.AckRequest) error {
	addr, err := b.addrOf(ctx, req.Handle.Broker)
	if err != nil {
		return err
	}
	resp, err := b.invoke(ctx, addr, remoting.NewRequest(remoting.AckMessage, handleExt(req.Group, req.Topic, req.Handle), nil), 0)
	if err != nil {
		return err
	}
	if resp.Code != remoting.Success {
		return handleErr(resp)
	}
	return nil
}

// ChangeInvisible implements proxy.Backend with CHANGE_MESSAGE_INVISIBLETIME.
func (b *Backend) ChangeInvisible(ctx context.Context, req *proxy.ChangeInvisibleRequest) (string, error) {
	addr, err := b.addrOf(ctx, req.Handle.Broker)
	if err != nil {
		return "", err
	}
	ext := handleExt(req.Group, req.Topic, req.Handle)
	ext["invisibleTime"] = strconv.FormatInt(req.InvisibleTime.Milliseconds(), 10)
	resp, err := b.invoke(ctx, addr, remoting.NewRequest(remoting.ChangeMessageInvisibleTime, ext, nil), 0)
	if err != nil {
		return "", err
	}
	if resp.Code != remoting.Success {
		return "", handleErr(resp)
	}
	h := resp.ExtString("extraInfo")
	if h == "" {
		return "", fmt.Errorf("cluster: change invisible time answered without a new handle: %w", proxy.ErrUnavailable)
	}
	return h, nil
}

// ForwardToDLQ implements proxy.Backend: CONSUMER_SEND_MSG_BACK with delayLevel -1, then ack.
func (b *Backend) ForwardToDLQ(ctx context.Context, req *proxy.ForwardDLQRequest) error {
	addr, err := b.addrOf(ctx, req.Handle.Broker)
	if err != nil {
		return err
	}
	ext := map[string]string{
		"group":             req.Group,
		"offset":            strconv.FormatInt(req.Handle.CommitLogOffset, 10),
		"delayLevel":        "-1",
		"originMsgId":       req.MessageID,
		"originTopic":       req.Topic,
		"unitMode":          "false",
		"maxReconsumeTimes": strconv.Itoa(int(req.MaxReconsumeTimes)),
		"bname":             req.Handle.Broker,
	}
	resp, err := b.invoke(ctx, addr, remoting.NewRequest(remoting.ConsumerSendMsgBack, ext, nil), 0)
	if err != nil {
		return err
	}
	if resp.Code != remoting.Success {
		return brokerErr(resp)
	}
	return b.Ack(ctx, &proxy.AckRequest{Group: req.Group, Topic: req.Topic, Handle: req.Handle})
}

// EndTransaction implements proxy.Backend with END_TRANSACTION.
func (b *Backend) EndTransaction(ctx context.Context, req *proxy.EndTransactionRequest) error {
	addr, err := b.addrOf(ctx, req.Broker)
	if err != nil {
		return err
	}
	commit := "0"
	switch req.Resolution {
	case proxy.ResolutionCommit:
		commit = "8"
	case proxy.ResolutionRollback:
		commit = "12"
	}
	ext := map[string]string{
		"producerGroup":        req.ProducerGroup,
		"tranStateTableOffset": strconv.FormatInt(req.TranStateTableOffset, 10),
		"commitLogOffset":      strconv.FormatInt(req.CommitLogOffset, 10),
		"commitOrRollback":     commit,
		"fromTransactionCheck": strconv.FormatBool(req.FromCheck),
		"msgId":                req.MsgID,
		"transactionId":        req.TransactionID,
		"bname":                req.Broker,
	}
	resp, err := b.invoke(ctx, addr, remoting.NewRequest(remoting.EndTransaction, ext, nil), 0)
	if err != nil {
		return err
	}
	if resp.Code != remoting.Success {
		return brokerErr(resp)
	}
	return nil
}

// Recall implements proxy.Backend with RECALL_MESSAGE (370).
func (b *Backend) Recall(ctx context.Context, req *proxy.RecallRequest) (string, error) {
	addr, err := b.addrOf(ctx, req.Broker)
	if err != nil {
		return "", err
	}
	ext := map[string]string{
		"producerGroup": req.ProducerGroup,
		"topic":         req.Topic,
		"recallHandle":  req.Handle,
		"bname":         req.Broker,
	}
	resp, err := b.invoke(ctx, addr, remoting.NewRequest(remoting.RecallMessage, ext, nil), 0)
	if err != nil {
		return "", err
	}
	if resp.Code != remoting.Success {
		return "", brokerErr(resp)
	}
	return resp.ExtString("msgId"), nil
}

// ---- transaction check-backs ----------------------------------------------------------------

type heartbeatBody struct {
	ClientID        string         `json:"clientID"`
	ProducerDataSet []producerData `json:"producerDataSet"`
	ConsumerDataSet []consumerData `json:"consumerDataSet"`
}

type producerData struct {
	GroupName string `json:"groupName"`
}

// consumerData is a HEART_BEAT consumerDataSet element (RocketMQ ConsumerData).
type consumerData struct {
	GroupName           string             `json:"groupName"`
	ConsumeType         string             `json:"consumeType"`
	MessageModel        string             `json:"messageModel"`
	ConsumeFromWhere    string             `json:"consumeFromWhere"`
	SubscriptionDataSet []subscriptionData `json:"subscriptionDataSet"`
	UnitMode            bool               `json:"unitMode"`
}

type subscriptionData struct {
	Topic          string   `json:"topic"`
	SubString      string   `json:"subString"`
	Tags           []string `json:"tagsSet"`
	Codes          []int64  `json:"codeSet"`
	SubVersion     int64    `json:"subVersion"`
	ExpressionType string   `json:"expressionType"`
}

// heartbeat registers, on every known master, the topics with live gRPC producers as
// producer groups (so brokers route CHECK_TRANSACTION_STATE to this proxy) and every live
// gRPC consumer under its own client id (so the brokers list it in the group's consumer
// connections, as RocketMQ's proxy does); consumers gone since the last heartbeat are
// unregistered. Run's goroutine only.
func (b *Backend) heartbeat(ctx context.Context) {
	box := b.checker.Load()
	if box == nil {
		return
	}
	type hb struct {
		body     []byte
		language string // the client's, as the broker lists it (the request's language field)
		version  int32  // likewise the request's version field
	}
	var bodies []hb
	groups := box.c.ProducerGroups()
	producers := make(map[string]bool, len(groups))
	for _, g := range groups {
		producers[g] = true
	}
	var goneProducers []string
	for g := range b.producers {
		if !producers[g] {
			goneProducers = append(goneProducers, g)
		}
	}
	b.producers = producers
	if len(groups) > 0 {
		body := heartbeatBody{ClientID: b.cfg.ClientID, ConsumerDataSet: []consumerData{}}
		for _, g := range groups {
			body.ProducerDataSet = append(body.ProducerDataSet, producerData{GroupName: g})
		}
		if raw, err := json.Marshal(body); err == nil {
			bodies = append(bodies, hb{raw, remoting.LanguageGo, remoting.Version})
		}
	}
	var live []proxy.ConsumerInfo
	if roster, ok := box.c.(proxy.ConsumerRoster); ok {
		live = roster.Consumers()
	}
	now := time.Now().UnixMilli()
	want := make(map[string]string, len(live))
	for _, c := range live {
		want[c.ClientID] = c.Group
		cd := consumerData{GroupName: c.Group, ConsumeType: c.ConsumeType(), MessageModel: "CLUSTERING",
			ConsumeFromWhere: "CONSUME_FROM_LAST_OFFSET", SubscriptionDataSet: []subscriptionData{}}
		for _, s := range c.Subscriptions {
			tags, codes, typ := s.Parsed()
			cd.SubscriptionDataSet = append(cd.SubscriptionDataSet, subscriptionData{Topic: s.Topic, SubString: s.Expression,
				Tags: tags, Codes: codes, SubVersion: now, ExpressionType: typ})
		}
		body := heartbeatBody{ClientID: c.ClientID, ProducerDataSet: []producerData{}, ConsumerDataSet: []consumerData{cd}}
		if raw, err := json.Marshal(body); err == nil {
			bodies = append(bodies, hb{raw, c.Language, c.VersionOrdinal()})
		}
	}
	var gone [][2]string
	for id, g := range b.consumers {
		if want[id] != g {
			gone = append(gone, [2]string{id, g})
		}
	}
	b.consumers = want
	if len(bodies) == 0 && len(gone) == 0 && len(goneProducers) == 0 {
		return
	}
	masters := b.knownMasters()
	if len(masters) == 0 {
		if m, err := b.clusterMasters(ctx); err == nil {
			for _, a := range m {
				masters = append(masters, a)
			}
		}
	}
	for _, addr := range masters {
		for _, h := range bodies {
			req := remoting.NewRequest(remoting.HeartBeat, nil, h.body)
			req.Language, req.Version = h.language, h.version
			resp, err := b.invoke(ctx, addr, req, 0)
			if err != nil {
				b.logger.Debug("broker heartbeat failed", "broker", addr, "err", err)
				break
			}
			if resp.Code != remoting.Success {
				b.logger.Debug("broker heartbeat refused", "broker", addr, "code", resp.Code, "remark", resp.Remark)
			}
		}
	}
	for _, c := range gone {
		b.unregisterConsumer(ctx, c[0], c[1])
	}
	for _, g := range goneProducers {
		for _, addr := range masters {
			req := remoting.NewRequest(remoting.UnregisterClient, map[string]string{"clientID": b.cfg.ClientID, "producerGroup": g}, nil)
			if _, err := b.invoke(ctx, addr, req, 0); err != nil {
				b.logger.Debug("unregister producer group failed", "broker", addr, "group", g, "err", err)
			}
		}
	}
}

// unregisterConsumer removes one gRPC consumer from every known master (UNREGISTER_CLIENT).
func (b *Backend) unregisterConsumer(ctx context.Context, clientID, group string) {
	for _, addr := range b.knownMasters() {
		req := remoting.NewRequest(remoting.UnregisterClient, map[string]string{"clientID": clientID, "consumerGroup": group}, nil)
		if _, err := b.invoke(ctx, addr, req, 0); err != nil {
			b.logger.Debug("unregister consumer failed", "broker", addr, "client", clientID, "err", err)
		}
	}
}

// onCheckTransaction handles a broker's oneway CHECK_TRANSACTION_STATE.
func (b *Backend) onCheckTransaction(_ context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
	box := b.checker.Load()
	if box == nil {
		return nil
	}
	e, _, err := message.DecodeRecord(req.Body, false)
	if err != nil {
		b.logger.Warn("undecodable transaction check", "broker", c.RemoteAddr(), "err", err)
		return nil
	}
	m := proxy.MessageFromExt(e)
	m.Body = bytes.Clone(m.Body)
	if rt := m.Properties[message.PropertyRealTopic]; rt != "" {
		m.Topic = rt
	}
	addr := c.RemoteAddr()
	b.mu.Lock()
	name := b.names[addr]
	b.mu.Unlock()
	if name == "" {
		// Connections are dialled by address, so the remote address is the one we dialled
		// unless the broker advertises a different host; fall back to any name it maps to.
		b.logger.Warn("transaction check from an unknown broker address", "addr", addr)
		return nil
	}
	check := &proxy.TransactionCheck{
		Broker:               name,
		ProducerGroup:        m.Properties[message.PropertyProducerGroup],
		Message:              m,
		CommitLogOffset:      req.ExtInt64Or("commitLogOffset", e.CommitLogOffset),
		TranStateTableOffset: req.ExtInt64Or("tranStateTableOffset", e.QueueOffset),
		MsgID:                req.ExtString("msgId"),
		TransactionID:        req.ExtString("transactionId"),
	}
	if check.MsgID == "" {
		check.MsgID = e.UniqKey()
	}
	box.c.CheckTransaction(check)
	return nil
}

// decodeJSON decodes RocketMQ JSON, which fastjson may write with unquoted numeric map keys
// ({0:"addr"}); those keys are quoted first.
func decodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err == nil {
		return nil
	}
	fixed, err := quoteNumericKeys(b)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(fixed, v); err != nil {
		return fmt.Errorf("cluster: decode JSON: %w", err)
	}
	return nil
}

// quoteNumericKeys quotes bare integer object keys outside strings.
func quoteNumericKeys(b []byte) ([]byte, error) {
	out := make([]byte, 0, len(b)+16)
	inStr, esc := false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			out = append(out, c)
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		if c == '"' {
			inStr = true
			out = append(out, c)
			continue
		}
		out = append(out, c)
		if c != '{' && c != ',' {
			continue
		}
		j := i + 1
		for j < len(b) && (b[j] == ' ' || b[j] == '\n' || b[j] == '\r' || b[j] == '\t') {
			j++
		}
		k := j
		if k < len(b) && b[k] == '-' {
			k++
		}
		for k < len(b) && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		if k > j && k < len(b) && b[k] == ':' {
			out = append(out, b[i+1:j]...)
			out = append(out, '"')
			out = append(out, b[j:k]...)
			out = append(out, '"')
			i = k - 1
		}
	}
	if inStr {
		return nil, errors.New("cluster: decode JSON: unterminated string")
	}
	return out, nil
}

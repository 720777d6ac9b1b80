package admin

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rocketry-mq/rocketry/internal/message"
	"github.com/rocketry-mq/rocketry/internal/remoting"
)

// MessageDetail is one stored message, decoded (`message get`).
type MessageDetail struct {
	Topic           string            `json:"topic"`
	MsgID           string            `json:"msgId"`       // UNIQ_KEY when set, else the offset id
	OffsetMsgID     string            `json:"offsetMsgId"` // broker-assigned (store host + commit-log offset)
	Broker          string            `json:"broker,omitempty"`
	QueueID         int32             `json:"queueId"`
	QueueOffset     int64             `json:"queueOffset"`
	CommitLogOffset int64             `json:"commitLogOffset"`
	StoreSize       int32             `json:"storeSize"`
	SysFlag         int32             `json:"sysFlag"`
	Flag            int32             `json:"flag"`
	BornTimestamp   int64             `json:"bornTimestamp"` // Unix ms
	BornHost        string            `json:"bornHost"`
	StoreTimestamp  int64             `json:"storeTimestamp"` // Unix ms
	StoreHost       string            `json:"storeHost"`
	ReconsumeTimes  int32             `json:"reconsumeTimes"`
	Tags            string            `json:"tags,omitempty"`
	Keys            []string          `json:"keys,omitempty"`
	Properties      map[string]string `json:"properties"`
	BodySize        int               `json:"bodySize"`
	// Body is the body when it is valid UTF-8; otherwise BodyBase64 holds it.
	Body       *string `json:"body,omitempty"`
	BodyBase64 []byte  `json:"bodyBase64,omitempty"`
	// BodyNote explains a body that could not be decoded (unsupported compression).
	BodyNote string `json:"bodyNote,omitempty"`

	raw []byte // decompressed body (for the text renderer)
}

// RawBody returns the (decompressed) body bytes.
func (m *MessageDetail) RawBody() []byte { return m.raw }

func detailOf(e *message.Ext, broker string) *MessageDetail {
	d := &MessageDetail{Topic: e.Topic, MsgID: e.MsgID(), OffsetMsgID: e.OffsetMsgID(), Broker: broker,
		QueueID: e.QueueID, QueueOffset: e.QueueOffset, CommitLogOffset: e.CommitLogOffset, StoreSize: e.StoreSize,
		SysFlag: e.SysFlag, Flag: e.Flag, BornTimestamp: e.BornTimestamp, BornHost: e.BornHost.String(),
		StoreTimestamp: e.StoreTimestamp, StoreHost: e.StoreHost.String(), ReconsumeTimes: e.ReconsumeTimes,
		Tags: e.Tags(), Keys: e.Keys(), Properties: e.Properties}
	if d.Properties == nil {
		d.Properties = map[string]string{}
	}
	body, note := decompressBody(e)
	d.raw, d.BodyNote, d.BodySize = body, note, len(body)
	if utf8.Valid(body) {
		s := string(body)
		d.Body = &s
	} else {
		d.BodyBase64 = body
	}
	return d
}

// decompressBody returns the body, inflated when the sysFlag says it is zlib-compressed
// (compression type 0 = legacy zlib, 3 = zlib). Other algorithms are returned as stored with
// a note.
func decompressBody(e *message.Ext) ([]byte, string) {
	if e.SysFlag&message.SysFlagCompressed == 0 {
		return e.Body, ""
	}
	switch ct := (e.SysFlag & message.SysFlagCompressionTypeMask) >> 8; ct {
	case 0, 3:
		r, err := zlib.NewReader(bytes.NewReader(e.Body))
		if err != nil {
			return e.Body, "compressed body could not be inflated: " + err.Error()
		}
		b, err := io.ReadAll(io.LimitReader(r, 64<<20))
		if err != nil {
			return e.Body, "compressed body could not be inflated: " + err.Error()
		}
		return b, ""
	default:
		name := map[int32]string{1: "LZ4", 2: "ZSTD"}[ct]
		return e.Body, fmt.Sprintf("body compressed with %s (type %d); shown as stored", name, ct)
	}
}

// GetMessageByID finds a message by id. An offset message id (32/56 hex characters) is read
// with VIEW_MESSAGE_BY_ID from the broker it names; otherwise, or when that fails, the id is
// looked up as a unique id (UNIQ_KEY, including v5 ids) with QUERY_MESSAGE on every broker
// of the topic. Not found: ErrNotFound.
func (a *Admin) GetMessageByID(ctx context.Context, topic, id string) (*MessageDetail, error) {
	if id == "" {
		return nil, errors.New("message id is empty")
	}
	// unreachable: the broker an offset id names could not be asked (not "no such message":
	// an operator must not conclude the message is gone because its broker is down).
	var unreachable error
	var skip string // the broker named by the offset id, when it did not answer: not asked again
	if addr, off, err := message.ParseOffsetMsgID(id); err == nil {
		resp, err := a.invoke(ctx, addr.String(), remoting.ViewMessageByID, map[string]string{"offset": strconv.FormatInt(off, 10)}, nil)
		var ce *CodeError
		switch {
		case err == nil:
			msgs, derr := message.DecodeRecords(resp.Body)
			// A timer, half or retry record names its topic in REAL_TOPIC: the offset id of a
			// delayed send shows that record, as Apache's queryMsgById (QA R10R-1).
			if derr == nil && len(msgs) > 0 && (topic == "" || msgs[0].Topic == topic ||
				msgs[0].Properties[message.PropertyRealTopic] == topic) {
				return detailOf(msgs[0], ""), nil
			}
		case !errors.As(err, &ce):
			unreachable = fmt.Errorf("the broker %s named by offset id %s cannot be reached: %w", addr, id, err)
			skip = addr.String() // one timeout per hung broker (QA R13G-3)
		}
	}
	if topic == "" {
		if unreachable != nil {
			return nil, unreachable
		}
		return nil, errors.New("a topic is required to look a message up by unique id")
	}
	found, silent, err := a.queryIndex(ctx, topic, id, true, 32, skip)
	if err != nil {
		return nil, errors.Join(unreachable, err)
	}
	for _, d := range found {
		if d.Properties[message.PropertyUniqKey] == id || d.OffsetMsgID == id {
			return d, nil
		}
	}
	if unreachable != nil {
		return nil, unreachable
	}
	if err := notFoundWhere(silent); err != nil {
		return nil, fmt.Errorf("no message with id %s on the brokers of %s that answered: %w", id, topic, err)
	}
	return nil, &CodeError{Op: "QUERY_MESSAGE", Addr: "brokers of " + topic, Code: remoting.QueryNotFound, Remark: "no message with id " + id}
}

// notFoundWhere describes the brokers that did not answer a lookup (nil when all did): "not
// found" is then not an answer, the message may be on them (QA R12D-1).
func notFoundWhere(silent map[string]error) error {
	if len(silent) == 0 {
		return nil
	}
	names := make([]string, 0, len(silent))
	for n := range silent {
		names = append(names, n)
	}
	sort.Strings(names)
	errs := make([]error, 0, len(names))
	for _, n := range names {
		errs = append(errs, fmt.Errorf("broker %s did not answer: %w", n, silent[n]))
	}
	return errors.Join(errs...)
}

// GetMessagesByKey returns up to max messages of topic whose KEYS contain key (index
// lookup on every broker of the topic), oldest first. None: ErrNotFound.
func (a *Admin) GetMessagesByKey(ctx context.Context, topic, key string, max int) ([]*MessageDetail, error) {
	if max <= 0 {
		max = 64
	}
	found, silent, err := a.queryIndex(ctx, topic, key, false, max, "")
	if err != nil {
		return nil, err
	}
	var out []*MessageDetail
	for _, d := range found {
		for _, k := range d.Keys {
			if k == key {
				out = append(out, d)
				break
			}
		}
	}
	if len(out) == 0 {
		if err := notFoundWhere(silent); err != nil {
			return nil, fmt.Errorf("no message with key %s on the brokers of %s that answered: %w", key, topic, err)
		}
		return nil, &CodeError{Op: "QUERY_MESSAGE", Addr: "brokers of " + topic, Code: remoting.QueryNotFound, Remark: "no message with key " + key}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StoreTimestamp < out[j].StoreTimestamp })
	if len(out) > max {
		out = out[:max]
	}
	return out, nil
}

// queryIndex sends QUERY_MESSAGE to every master broker of topic (but the one at address
// skip, known not to answer) and decodes the results; silent holds the brokers that did not
// answer (their part is missing; warned about).
func (a *Admin) queryIndex(ctx context.Context, topic, key string, unique bool, max int, skip string) (found []*MessageDetail, silent map[string]error, err error) {
	r, err := a.route(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	masters := r.masters()
	names := make([]string, 0, len(masters))
	for n, addr := range masters {
		if skip == "" || addr != skip {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	ext := map[string]string{"topic": topic, "key": key, "maxNum": strconv.Itoa(max), "beginTimestamp": "0",
		"endTimestamp": strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)}
	if unique {
		ext["_UNIQUE_KEY_QUERY"] = "true"
	}
	var (
		mu  sync.Mutex
		out []*MessageDetail
	)
	failed := map[string]error{}
	err = parallel(ctx, a.cfg.Parallelism, names, func(ctx context.Context, name string) error {
		resp, err := a.invoke(ctx, masters[name], remoting.QueryMessage, ext, nil)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			// The other brokers' matches still count (QA R7H-6).
			mu.Lock()
			failed[name] = err
			mu.Unlock()
			return nil
		}
		msgs, err := message.DecodeRecords(resp.Body)
		if err != nil {
			return fmt.Errorf("QUERY_MESSAGE from %s: %w", masters[name], err)
		}
		mu.Lock()
		for _, m := range msgs {
			out = append(out, detailOf(m, name))
		}
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if err := partialFailure(a, names, failed, "message query"); err != nil {
		return nil, nil, err
	}
	return out, failed, nil
}

// pull reads up to n messages of one queue from offset with PULL_MESSAGE (no long poll).
// It returns the messages and the next offset; an empty queue range is (nil, next, nil).
func (a *Admin) pull(ctx context.Context, addr, group, topic, broker string, qid int32, offset int64, n int) ([]*message.Ext, int64, error) {
	if group == "" {
		group = message.GroupToolsConsumer
	}
	ext := map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(int(qid)), "queueOffset": strconv.FormatInt(offset, 10),
		"maxMsgNums": strconv.Itoa(n), "sysFlag": "4", "commitOffset": "0", "suspendTimeoutMillis": "0", // 4: the subscription is in the request
		"subscription": "*", "subVersion": "0", "expressionType": "TAG", "bname": broker,
	}
	resp, err := a.invoke(ctx, addr, remoting.PullMessage, ext, nil, remoting.PullNotFound, remoting.PullRetryImmediately, remoting.PullOffsetMoved)
	if err != nil {
		return nil, offset, err
	}
	next := resp.ExtInt64Or("nextBeginOffset", offset)
	if resp.Code != remoting.Success {
		return nil, next, nil
	}
	msgs, err := message.DecodeRecords(resp.Body)
	if err != nil {
		return nil, next, fmt.Errorf("PULL_MESSAGE from %s: %w", addr, err)
	}
	return msgs, next, nil
}

// send stores m on broker (addr, name), queue qid, with SEND_MESSAGE_V2, and returns the
// offset message id.
func (a *Admin) send(ctx context.Context, addr, brokerName string, qid int32, m *message.Message) (string, error) {
	ext := map[string]string{
		"a": message.GroupToolsConsumer, // producerGroup (admin tools)
		"b": m.Topic, "c": "TBW102", "d": "4", "e": strconv.Itoa(int(qid)), "f": "0",
		"g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": strconv.Itoa(int(m.Flag)),
		"i": string(message.EncodeProperties(m.Properties)), "j": "0", "k": "false", "l": "16", "m": "false", "n": brokerName,
	}
	resp, err := a.invoke(ctx, addr, remoting.SendMessageV2, ext, m.Body)
	if err != nil {
		return "", err
	}
	return resp.ExtString("msgId"), nil
}

// isPrintable reports whether b is text a terminal can show as is.
func isPrintable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	return !strings.ContainsFunc(string(b), func(r rune) bool {
		return (r < 0x20 && r != '\n' && r != '\r' && r != '\t') || r == 0x7f
	})
}

// Printable reports whether the body can be shown as text (else show hex).
func (m *MessageDetail) Printable() bool { return isPrintable(m.raw) }

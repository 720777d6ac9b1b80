//go:build !race

package compat

// Scenarios against a standalone started with nothing but data dir and listen addresses, the
// way a user (or an acceptance suite) runs it: default transaction check timing, end-to-end
// latency of long polls, /metrics, TLS modes.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	golang "github.com/apache/rocketmq-clients/golang/v5"
	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

var plainShared lazy

// plain is a shared standalone with no --config at all (every default).
func plain(t *testing.T) *deployment {
	return plainShared.get(t, "rocketry standalone (all defaults)", func() (*deployment, error) {
		d := &deployment{kind: "standalone"}
		dir, err := tempDir("plain-")
		if err != nil {
			return nil, err
		}
		d.dir = dir
		for _, a := range []*string{&d.ns, &d.broker, &d.grpc, &d.http} {
			if *a, err = freeAddr(); err != nil {
				return nil, err
			}
		}
		d.saArgs = []string{"standalone", "--data-dir", dir, "--namesrv-listen", d.ns, "--broker-listen", d.broker,
			"--grpc-listen", d.grpc, "--http-listen", d.http}
		return d, d.startSA()
	})
}

// TestDefaultsOrphanTransaction: with RocketMQ's default check timing (transactionTimeOut 6 s,
// transactionCheckInterval 30 s) an orphan go5 transaction is resolved by the checker within
// 6 s + one check interval.
func TestDefaultsOrphanTransaction(t *testing.T) {
	t.Parallel()
	d := plain(t)
	topic, group := uniq("def_txn"), uniq("def_txn_g")
	createTopic(t, d, topic, "TRANSACTION", 2)
	var mu sync.Mutex
	var checkedAt time.Time
	checker := &golang.TransactionChecker{Check: func(mv *golang.MessageView) golang.TransactionResolution {
		mu.Lock()
		if checkedAt.IsZero() {
			checkedAt = time.Now()
		}
		mu.Unlock()
		return golang.COMMIT
	}}
	p := go5Producer(t, d.grpc, golang.WithTopics(topic), golang.WithTransactionChecker(checker))
	sentAt := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := p.SendWithTransaction(ctx, &golang.Message{Topic: topic, Body: []byte("orphan")}, p.BeginTransaction())
	cancel()
	if err != nil {
		t.Fatalf("SendWithTransaction: %v", err)
	}
	c := go5Consumer(t, d.grpc, group, map[string]string{topic: "*"})
	var got bool
	receiveUntil(t, c, 4, 20*time.Second, 45*time.Second, func(mv *golang.MessageView) { got = true; ack(t, c, mv) }, func() bool { return got })
	mu.Lock()
	defer mu.Unlock()
	if checkedAt.IsZero() {
		t.Fatalf("orphan transaction not checked within 45 s of the send (defaults: 6 s + 30 s interval)")
	}
	t.Logf("orphan checked %s after the send", checkedAt.Sub(sentAt).Round(time.Millisecond))
	if el := checkedAt.Sub(sentAt); el < 5*time.Second {
		t.Errorf("orphan checked %s after the send, before transactionTimeOut (6 s)", el)
	}
	if !got {
		t.Errorf("orphan committed by the checker was not delivered")
	}
}

// TestDefaultsLatency: a message sent while a consumer is waiting in a long poll is delivered
// at once (the poll is woken by the arrival), for go5 (pop long polling) and go2 (pull
// suspension), not at the end of the poll.
func TestDefaultsLatency(t *testing.T) {
	t.Parallel()
	d := plain(t)
	t.Run("go5", func(t *testing.T) {
		t.Parallel()
		topic, group := uniq("lat5"), uniq("lat5_g")
		createTopic(t, d, topic, "NORMAL", 4)
		p := go5Producer(t, d.grpc, golang.WithTopics(topic))
		c, err := golang.NewSimpleConsumer(go5Config(d.grpc, group), golang.WithAwaitDuration(5*time.Second),
			golang.WithSubscriptionExpressions(map[string]*golang.FilterExpression{topic: golang.SUB_ALL}))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.GracefulStop() })
		// One empty poll so the group exists and the next poll starts at the queue's end.
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
		_, _ = c.Receive(ctx, 1, 20*time.Second)
		cancel()
		var lat []time.Duration
		for i := 0; i < 3; i++ {
			var sentAt time.Time
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(700 * time.Millisecond) // let the Receive below start its long poll
				sentAt = time.Now()
				go5Send(t, p, &golang.Message{Topic: topic, Body: []byte(fmt.Sprint("l", i))})
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
			mvs, err := c.Receive(ctx, 1, 20*time.Second)
			cancel()
			wg.Wait()
			if err != nil || len(mvs) == 0 {
				t.Fatalf("long poll with a message arriving after 0.7 s: %v", err)
			}
			lat = append(lat, time.Since(sentAt))
			ack(t, c, mvs[0])
		}
		t.Logf("go5 send -> receive latencies during a long poll: %v", lat)
		for _, l := range lat {
			if l > 2*time.Second {
				t.Errorf("go5 long poll returned %s after the message was sent (not woken by its arrival)", l)
			}
		}
	})
	t.Run("go2", func(t *testing.T) {
		t.Parallel()
		topic, group := uniq("lat2"), uniq("lat2_g")
		createTopic(t, d, topic, "NORMAL", 4)
		p := go2Producer(t, d.ns)
		var mu sync.Mutex
		at := map[string]time.Time{}
		go2Push(t, d.ns, group, topic, "*", func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				at[string(m.Body)] = time.Now()
			}
			return consumer.ConsumeSuccess, nil
		})
		// Warm-up message: the consumer has its queues and is parked in long polls afterwards.
		sendSync(t, p, primitive.NewMessage(topic, []byte("warm")))
		if !waitUntil(30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return !at["warm"].IsZero() }) {
			t.Fatal("warm-up message not consumed")
		}
		var lat []time.Duration
		for i := 0; i < 3; i++ {
			// Past the client's immediate re-pull: the pulls are now suspended on the broker.
			time.Sleep(time.Second)
			b := fmt.Sprint("l", i)
			sent := time.Now()
			sendSync(t, p, primitive.NewMessage(topic, []byte(b)))
			if !waitUntil(20*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return !at[b].IsZero() }) {
				t.Fatalf("%s not consumed within 20 s", b)
			}
			mu.Lock()
			lat = append(lat, at[b].Sub(sent))
			mu.Unlock()
		}
		t.Logf("go2 send -> consume latencies with suspended pulls: %v", lat)
		for _, l := range lat {
			if l > 2*time.Second {
				t.Errorf("go2 push consumer got the message %s after the send (suspended pull not woken)", l)
			}
		}
	})
}

// TestDefaultsMetrics: /metrics serves Prometheus text that counts the traffic.
func TestDefaultsMetrics(t *testing.T) {
	t.Parallel()
	d := plain(t)
	topic := uniq("metrics")
	p := go5Producer(t, d.grpc)
	go5Send(t, p, &golang.Message{Topic: topic, Body: []byte("m")})
	resp, err := http.Get("http://" + d.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(string(body), topic) {
		t.Errorf("/metrics has no series labelled with topic %s after a send (%d bytes)", topic, len(body))
	}
}

// TestTLSModes: permissive (default) serves TLS (go5) and plaintext (Node-style clients) on one
// port; enforcing refuses plaintext; disabled refuses TLS.
func TestTLSModes(t *testing.T) {
	t.Parallel()
	probe := func(addr string, useTLS bool) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		creds := insecure.NewCredentials()
		if useTLS {
			creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})
		}
		conn, err := grpc.DialContext(ctx, addr, grpc.WithTransportCredentials(creds), grpc.WithBlock())
		if err != nil {
			return err
		}
		defer conn.Close()
		md := metadata.Pairs("x-mq-client-id", "compat-tls-probe", "x-mq-language", "GO", "x-mq-protocol", "v2")
		resp, err := pb.NewMessagingServiceClient(conn).QueryRoute(metadata.NewOutgoingContext(ctx, md),
			&pb.QueryRouteRequest{Topic: &pb.Resource{Name: "TBW102"}, Endpoints: &pb.Endpoints{Addresses: []*pb.Address{{Host: "127.0.0.1", Port: 1}}}})
		if err != nil {
			return err
		}
		_ = resp // any gRPC answer (even a business error status) proves the transport works
		return nil
	}
	for _, c := range []struct {
		mode           string
		tlsOK, plainOK bool
	}{{"permissive", true, true}, {"enforcing", true, false}, {"disabled", false, true}} {
		t.Run(c.mode, func(t *testing.T) {
			t.Parallel()
			d, err := startStandalone("", nil, "--tls-mode", c.mode)
			if d != nil {
				t.Cleanup(d.close)
			}
			if err != nil {
				t.Fatalf("standalone --tls-mode %s: %v", c.mode, err)
			}
			if err := probe(d.grpc, true); (err == nil) != c.tlsOK {
				t.Errorf("--tls-mode %s: TLS client: err %v, want ok=%v", c.mode, err, c.tlsOK)
			}
			if err := probe(d.grpc, false); (err == nil) != c.plainOK {
				t.Errorf("--tls-mode %s: plaintext client: err %v, want ok=%v", c.mode, err, c.plainOK)
			}
		})
	}
	// An unknown mode is a start-up error.
	_, errOut, code := cli(20*time.Second, "standalone", "--data-dir", t.TempDir(), "--tls-mode", "maybe",
		"--namesrv-listen", "127.0.0.1:0", "--broker-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--http-listen", "")
	lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
	if last := lines[len(lines)-1]; code != 1 || !strings.HasPrefix(last, "rocketry: ") || !strings.Contains(last, "maybe") {
		t.Errorf("--tls-mode maybe: exit %d, stderr %q; want exit 1 and a last line \"rocketry: ...\" naming the mode", code, errOut)
	}
}

var saClusterModeShared lazy

// TestStandaloneProxyModeCluster: `rocketry standalone --proxy-mode cluster` (the proxy talks
// remoting to the in-process broker): quick start, FIFO order, delay, transaction commit and
// a go2 round trip.
func TestStandaloneProxyModeCluster(t *testing.T) {
	t.Parallel()
	d := saClusterModeShared.get(t, "rocketry standalone --proxy-mode cluster", func() (*deployment, error) {
		return startStandalone("", nil, "--proxy-mode", "cluster")
	})
	topic, fifo, delay, txn := uniq("pmc"), uniq("pmc_fifo"), uniq("pmc_delay"), uniq("pmc_txn")
	createTopic(t, d, fifo, "FIFO", 2)
	createTopic(t, d, delay, "DELAY", 2)
	createTopic(t, d, txn, "TRANSACTION", 2)
	createGroup(t, d, uniq("unused"), false, 16)
	fifoGroup := uniq("pmc_fifo_g")
	createGroup(t, d, fifoGroup, true, 16)
	p := go5Producer(t, d.grpc, golang.WithTopics(topic, fifo, delay, txn))
	go5Send(t, p, &golang.Message{Topic: topic, Body: []byte("auto-created")})
	for i := 0; i < 4; i++ {
		m := &golang.Message{Topic: fifo, Body: []byte(fmt.Sprint(i))}
		m.SetMessageGroup("g")
		go5Send(t, p, m)
	}
	due := time.Now().Add(2 * time.Second)
	dm := &golang.Message{Topic: delay, Body: []byte("delayed")}
	dm.SetDelayTimestamp(due)
	go5Send(t, p, dm)
	tx := p.BeginTransaction()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := p.SendWithTransaction(ctx, &golang.Message{Topic: txn, Body: []byte("committed")}, tx)
	cancel()
	if err != nil {
		t.Fatalf("SendWithTransaction: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	c := go5Consumer(t, d.grpc, uniq("pmc_g"), map[string]string{topic: "*", delay: "*", txn: "*"})
	got := map[string]time.Time{}
	receiveUntil(t, c, 8, 20*time.Second, 30*time.Second, func(mv *golang.MessageView) {
		got[string(mv.GetBody())] = time.Now()
		ack(t, c, mv)
	}, func() bool { return len(got) >= 3 })
	for _, b := range []string{"auto-created", "delayed", "committed"} {
		if _, ok := got[b]; !ok {
			t.Errorf("proxy-mode cluster: %q not received", b)
		}
	}
	if at, ok := got["delayed"]; ok && at.Before(due.Add(-time.Millisecond)) {
		t.Errorf("proxy-mode cluster: delay message %s early", due.Sub(at))
	}
	fc := go5Consumer(t, d.grpc, fifoGroup, map[string]string{fifo: "*"})
	var order []string
	receiveUntil(t, fc, 8, 20*time.Second, 30*time.Second, func(mv *golang.MessageView) {
		order = append(order, string(mv.GetBody()))
		ack(t, fc, mv)
	}, func() bool { return len(order) >= 4 })
	if strings.Join(order, ",") != "0,1,2,3" {
		t.Errorf("proxy-mode cluster: FIFO order %v", order)
	}
	col := newCollector()
	p2 := go2Producer(t, d.ns)
	sendSync(t, p2, primitive.NewMessage(topic, []byte("go2")))
	go2Push(t, d.ns, uniq("pmc_g2"), topic, "*", col.handler)
	waitUntil(20*time.Second, func() bool { return len(col.has([]string{"go2", "auto-created"})) == 0 })
	if m := col.has([]string{"go2", "auto-created"}); len(m) > 0 {
		t.Errorf("proxy-mode cluster: go2 consumer missed %v", m)
	}
}

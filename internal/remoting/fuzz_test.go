package remoting

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// checkStable asserts that a decoded command re-encodes to a frame that decodes to the
// same command and re-encodes to the same bytes (encoding is deterministic).
func checkStable(t *testing.T, c *Command, st SerializeType) {
	t.Helper()
	f1, err := EncodeFrame(c, st)
	if err != nil {
		// Only binary headers with 16-bit overflowing keys can fail; none decode from input.
		t.Fatalf("re-encode: %v", err)
	}
	c2, err := Decode(f1)
	if err != nil {
		t.Fatalf("decode of re-encoded frame: %v", err)
	}
	f2, err := EncodeFrame(c2, st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f1, f2) {
		t.Fatalf("encoding not stable:\n%q\n%q", f1, f2)
	}
	c3, err := Decode(f2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c2, c3); diff != "" {
		t.Fatalf("decode not stable: %s", diff)
	}
}

func isFrameError(err error) bool {
	for _, e := range []error{ErrFrameTooLarge, ErrBadFrameLength, ErrBadHeaderLength, ErrUnknownSerializeType, ErrBadHeader} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func addFrameSeeds(f *testing.F) {
	for _, st := range []SerializeType{SerializeJSON, SerializeRocketMQ} {
		fr, _ := EncodeFrame(sampleCommand(), st)
		f.Add(fr)
		fr, _ = EncodeFrame(NewResponse(TopicNotExist, "No topic route info in name server for the topic: T"), st)
		f.Add(fr)
	}
	f.Add(golden2Frame([]byte(goldenGo2JSONHeader), SerializeJSON, nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 4, 1, 0, 0, 0})
}

func FuzzDecodeFrame(f *testing.F) {
	addFrameSeeds(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		c, err := Decode(frame)
		if err != nil {
			if !isFrameError(err) {
				t.Fatalf("error %v is not one of the frame sentinels", err)
			}
			return
		}
		st := SerializeType(frame[4])
		checkStable(t, c, st)
		if len(c.Body) > len(frame) {
			t.Fatalf("body longer than frame")
		}
	})
}

func FuzzDecodeJSONHeader(f *testing.F) {
	f.Add([]byte(goldenGo2JSONHeader))
	f.Add([]byte(`{"code":0,"extFields":{"a":"1"},"flag":1,"language":"JAVA","opaque":9,"serializeTypeCurrentRPC":"JSON","version":479}`))
	f.Add([]byte(`{"code":1,"language":13,"remark":null}`))
	f.Add([]byte(`{"code":"x"}`))
	f.Add([]byte(` { "Code" : 1 , "remark" : "a\\b\n" , "x" : true , "extFields" : { "k" : "v\"" } } `))
	f.Add([]byte(`{"code":-2147483648,"flag":2147483647,"language":null,"extFields":null}`))
	f.Add([]byte(`{"code":1,"code":2}`))
	f.Add([]byte(`{"code":310,"extFields":{"i":"KEYS\u0001k1\u0002TAGS\u0001TagA\u0002","a":"PG"},"flag":0,"language":"GO","opaque":7,"remark":"","version":317}`))
	f.Add([]byte(`{"code":1,"remark":"\"\\\/\b\f\n\r\t\u0000\u001f\u007f\u00e9\u20AC"}`))
	f.Add([]byte(`{"code":1,"remark":"\ud83d\ude00 pair, \ud800 lone high, \udc00 lone low, \ud800\u0041 bad pair, \ud800\ud800\udc00"}`))
	f.Add([]byte(`{"code":1,"extFields":{"\u0063ode":"\uD83D\uDE00","k\u00e9y":"v"}}`))
	f.Fuzz(func(t *testing.T, h []byte) {
		// Differential: whenever the fast path accepts, encoding/json must agree exactly.
		if fast, ok := decodeJSONHeaderFast(h); ok {
			std, err := decodeJSONHeaderStd(h)
			if err != nil {
				t.Fatalf("fast path accepted %q, encoding/json rejects it: %v", h, err)
			}
			if diff := cmp.Diff(std, fast); diff != "" {
				t.Fatalf("fast and encoding/json differ on %q (-std +fast):\n%s", h, diff)
			}
		}
		c, err := DecodeJSONHeader(h)
		if err != nil {
			if !errors.Is(err, ErrBadHeader) {
				t.Fatalf("error %v does not wrap ErrBadHeader", err)
			}
			return
		}
		checkStable(t, c, SerializeJSON)
	})
}

func FuzzDecodeBinaryHeader(f *testing.F) {
	f.Add(mustHex(goldenGo2Binary))
	f.Add(mustHex("0001" + "00" + "01df" + "7fffffff" + "00000001" + "00000002" + "6f6b" + "00000000"))
	f.Add(mustHex("0001" + "09" + "0001" + "00000001" + "00000000" + "00000000" + "00000004" + "7fff0000"))
	f.Fuzz(func(t *testing.T, h []byte) {
		c, err := DecodeBinaryHeader(h)
		if err != nil {
			if !errors.Is(err, ErrBadHeader) {
				t.Fatalf("error %v does not wrap ErrBadHeader", err)
			}
			return
		}
		checkStable(t, c, SerializeRocketMQ)
	})
}

// FuzzServerStream writes arbitrary bytes on one connection to a running server, then
// checks that a healthy client on another connection is still served. Any panic in the
// reader, dispatcher or writer would crash the fuzzer.
func FuzzServerStream(f *testing.F) {
	addFrameSeeds(f)
	two, _ := EncodeFrame(NewRequest(HeartBeat, nil, []byte("a")), SerializeJSON)
	f.Add(append(append([]byte{}, two...), two...))
	un, _ := EncodeFrame(NewRequest(31337, nil, nil), SerializeRocketMQ)
	f.Add(un)

	var (
		once sync.Once
		srv  *Server
		cli  *Client
		addr string
	)
	f.Cleanup(func() {
		if srv != nil {
			cli.Close()
			srv.Shutdown(context.Background())
		}
	})
	f.Fuzz(func(t *testing.T, stream []byte) {
		once.Do(func() {
			srv = NewServer(ServerConfig{MaxFrameSize: 1 << 20, FirstFrameTimeout: 2 * time.Second, IdleTimeout: 2 * time.Second}, testLogger(nil))
			srv.Handle(HeartBeat, echoHandler)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr = ln.Addr().String()
			go srv.Serve(ln)
			cli = NewClient(ClientConfig{}, testLogger(nil))
		})
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.Write(stream)
		nc.(*net.TCPConn).CloseWrite()
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, nc); err != nil {
			t.Fatalf("server did not finish the connection: %v", err)
		}
		nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := cli.Invoke(ctx, addr, NewRequest(HeartBeat, nil, []byte("ok")))
		if err != nil || string(resp.Body) != "ok" {
			t.Fatalf("healthy client not served: %v %v", resp, err)
		}
	})
}

package remoting

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"testing"
)

// go2Signature reproduces rocketmq-client-go v2's ACLInterceptor content: the values of
// AccessKey and the ext fields ordered by key (SecurityToken is not in the order list),
// then the body.
func go2Signature(ext map[string]string, ak, sk, token string, body []byte) string {
	content := ""
	order := []string{"AccessKey"}
	for k := range ext {
		order = append(order, k)
	}
	for i := range order {
		for j := i + 1; j < len(order); j++ {
			if order[j] < order[i] {
				order[i], order[j] = order[j], order[i]
			}
		}
	}
	vals := map[string]string{"AccessKey": ak}
	for k, v := range ext {
		vals[k] = v
	}
	for _, k := range order {
		content += vals[k]
	}
	mac := hmac.New(sha1.New, []byte(sk))
	mac.Write(append([]byte(content), body...))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestSignMatchesGo2AndVerifies(t *testing.T) {
	ext := map[string]string{"topic": "T", "b": "2", "queueId": "3"}
	c := NewRequest(SendMessage, map[string]string{"topic": "T", "b": "2", "queueId": "3"}, []byte("xy"))
	Sign(c, "ak", "sk")
	if want := go2Signature(ext, "ak", "sk", "", []byte("xy")); c.ExtString(ExtSignature) != want {
		t.Fatalf("signature %s, go2 computes %s", c.ExtString(ExtSignature), want)
	}
	if err := VerifySignature(c, "sk"); err != nil {
		t.Fatal(err)
	}
	if err := VerifySignature(c, "other"); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("wrong secret: %v", err)
	}
	c.Body = []byte("xz")
	if err := VerifySignature(c, "sk"); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered body: %v", err)
	}
	c.Body = []byte("xy")
	c.SetExt("queueId", "4")
	if err := VerifySignature(c, "sk"); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered field: %v", err)
	}
	if err := VerifySignature(NewRequest(SendMessage, nil, nil), "sk"); !errors.Is(err, ErrNoSignature) {
		t.Fatalf("unsigned: %v", err)
	}
	// go2 with a security token leaves the token out of the signed content.
	g := NewRequest(SendMessage, map[string]string{"topic": "T"}, nil)
	g.SetExt(ExtSignature, go2Signature(map[string]string{"topic": "T"}, "ak", "sk", "tok", nil))
	g.SetExt(ExtAccessKey, "ak")
	g.SetExt(ExtSecurityToken, "tok")
	if err := VerifySignature(g, "sk"); err != nil {
		t.Fatalf("go2 token request: %v", err)
	}
	g.SetExt(ExtSignature, "!!notbase64")
	if err := VerifySignature(g, "sk"); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("garbage signature: %v", err)
	}
}

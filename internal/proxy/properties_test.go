package proxy

import (
	"testing"
	"time"
)

func TestApplyProperties(t *testing.T) {
	c := DefaultConfig()
	warn, err := c.ApplyProperties(map[string]string{
		"grpcServerPort": "9081", "tls.server.mode": "Enforcing", "authenticationEnabled": "true", "aclFile": "/etc/acl.json",
		"minInvisibleTimeMs": "2000", "namesrvAddr": "a:9876", "someJavaKey": "x",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.GRPCListen != ":9081" || c.TLSMode != TLSEnforcing || !c.Auth || c.ACLFile != "/etc/acl.json" || c.MinInvisible != 2*time.Second {
		t.Fatalf("config = %+v", c)
	}
	if len(warn) != 1 {
		t.Fatalf("warnings = %v, want one for someJavaKey", warn)
	}
	for k, v := range map[string]string{"auth": "yes", "grpcServerPort": "99999", "minInvisibleTimeMs": "-1", "maxMessageSize": "big"} {
		c := DefaultConfig()
		if _, err := c.ApplyProperties(map[string]string{k: v}); err == nil {
			t.Errorf("%s=%s accepted", k, v)
		}
	}
}

package auth

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func header(ak, sig string) string {
	return "MQv2-HMAC-SHA1 Credential=" + ak + "//Rocketmq, SignedHeaders=x-mq-date-time, Signature=" + sig
}

func TestParseAuthorization(t *testing.T) {
	sig := Sign("sk", "20240101T000000Z")
	for _, tc := range []struct {
		name, h string
		ak      string
		err     error
	}{
		{"go5 format", header("ak", sig), "ak", nil},
		{"reordered, spaces", "MQv2-HMAC-SHA1   Signature=" + sig + " ,Credential=ak/x/Rocketmq", "ak", nil},
		{"wrong algorithm", strings.Replace(header("ak", sig), "MQv2-HMAC-SHA1", "HMAC", 1), "", ErrMalformedHeader},
		{"no credential", "MQv2-HMAC-SHA1 Signature=" + sig, "", ErrMalformedHeader},
		{"empty access key", header("", sig), "", ErrMalformedHeader},
		{"no signature", "MQv2-HMAC-SHA1 Credential=ak//Rocketmq", "", ErrMalformedHeader},
		{"non-hex signature", header("ak", "zz"), "", ErrMalformedHeader},
		{"field without =", "MQv2-HMAC-SHA1 Credential=ak, junk", "", ErrMalformedHeader},
		{"empty", "", "", ErrMalformedHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseAuthorization(tc.h)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && a.AccessKey != tc.ak {
				t.Fatalf("access key = %q, want %q", a.AccessKey, tc.ak)
			}
		})
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add(header("ak", Sign("sk", "20240101T000000Z")))
	f.Add("MQv2-HMAC-SHA1 Credential=a/b/c,Signature=00")
	f.Add("MQv2-HMAC-SHA1 ,,,=")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := ParseAuthorization(h)
		if err != nil {
			if !errors.Is(err, ErrMalformedHeader) {
				t.Fatalf("error %v is not ErrMalformedHeader", err)
			}
			return
		}
		if a.AccessKey == "" || len(a.Signature) == 0 || strings.Contains(a.AccessKey, "/") {
			t.Fatalf("accepted header %q gave %+v", h, a)
		}
	})
}

func TestCheckDateTime(t *testing.T) {
	zone := time.FixedZone("UTC+8", 8*3600)
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, zone)
	skew := 15 * time.Minute
	utcStamp := now.UTC().Format(DateTimeLayout)
	localStamp := now.Format(DateTimeLayout) // what go5 sends: local time with a literal Z
	for _, tc := range []struct {
		name string
		dt   string
		err  error
	}{
		{"utc", utcStamp, nil},
		{"local with Z (go5)", localStamp, nil},
		{"10 min old", now.Add(-10 * time.Minute).UTC().Format(DateTimeLayout), nil},
		{"replayed 1h old", now.Add(-time.Hour).UTC().Format(DateTimeLayout), ErrStaleDateTime},
		{"1h in the future", now.Add(time.Hour).UTC().Format(DateTimeLayout), ErrStaleDateTime},
		{"missing", "", ErrNoDateTime},
		{"malformed", "yesterday", ErrBadDateTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckDateTime(tc.dt, now, skew, false); !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
	if err := CheckDateTime(now.Add(-48*time.Hour).UTC().Format(DateTimeLayout), now, 0, false); err != nil {
		t.Fatalf("skew 0 must disable the window: %v", err)
	}
}

// TestCheckDateTimeGo5AnyZone: a go5 client stamps its local wall time with a literal Z; from
// any real-world zone (here +05:30 and -09:30 against a UTC proxy) its stamp is accepted, while
// a stamp beyond every zone offset, or off the 15-minute zone grid by more than the skew, is
// still refused; other clients keep the exact window (QA F16).
func TestCheckDateTimeGo5AnyZone(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	skew := 2 * time.Minute
	for _, tc := range []struct {
		name    string
		stamp   time.Time // wall time written with a literal Z
		anyZone bool
		err     error
	}{
		{"go5 in Kolkata", now.In(time.FixedZone("IST", 5*3600+1800)), true, nil},
		{"go5 in Marquesas, 30 s slow", now.Add(-30 * time.Second).In(time.FixedZone("MART", -(9*3600 + 1800))), true, nil},
		{"go5 in Kiritimati", now.In(time.FixedZone("LINT", 14*3600)), true, nil},
		{"go5, 40 min off any zone grid point", now.Add(7*time.Hour + 40*time.Minute), true, ErrStaleDateTime},
		{"go5, two days old", now.Add(-48 * time.Hour), true, ErrStaleDateTime},
		{"node in Kolkata sends real UTC", now.UTC(), false, nil},
		{"non-go5 stamp 5 h 30 ahead", now.Add(5*time.Hour + 30*time.Minute), false, ErrStaleDateTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dt := tc.stamp.Format(DateTimeLayout) // the zone's wall clock, labelled Z
			if err := CheckDateTime(dt, now, skew, tc.anyZone); !errors.Is(err, tc.err) {
				t.Fatalf("CheckDateTime(%s) = %v, want %v", dt, err, tc.err)
			}
		})
	}
}

func testStore(t *testing.T) *Store {
	t.Helper()
	s, err := NewStaticStore(&ACL{Users: []User{
		{Username: "alice", Password: "a-secret", Policies: []Policy{{Resource: "*", Actions: []Action{ActionAll}, Decision: Allow}}},
		{Username: "off", Password: "o-secret", Disabled: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthenticate(t *testing.T) {
	now := time.Now()
	dt := now.UTC().Format(DateTimeLayout)
	a := NewAuthenticator(testStore(t), 15*time.Minute, func() time.Time { return now })
	for _, tc := range []struct {
		name, authz, dt string
		err             error
	}{
		{"ok", header("alice", Sign("a-secret", dt)), dt, nil},
		{"bad signature", header("alice", Sign("nope", dt)), dt, ErrSignatureInvalid},
		{"unknown user", header("mallory", Sign("a-secret", dt)), dt, ErrUnknownUser},
		{"disabled user", header("off", Sign("o-secret", dt)), dt, ErrDisabledUser},
		{"missing date-time", header("alice", Sign("a-secret", dt)), "", ErrNoDateTime},
		{"missing authorization", "", dt, ErrNoAuthorization},
		{"malformed", "Basic abc", dt, ErrMalformedHeader},
		{"replayed", header("alice", Sign("a-secret", "20200101T000000Z")), "20200101T000000Z", ErrStaleDateTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := a.Authenticate(tc.authz, tc.dt, false)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && u.Username != "alice" {
				t.Fatalf("user = %q", u.Username)
			}
		})
	}
	// Unknown users and wrong secrets look the same to clients.
	if ClientMessage(ErrUnknownUser) != ClientMessage(ErrSignatureInvalid) || ClientMessage(ErrDisabledUser) != ClientMessage(ErrSignatureInvalid) {
		t.Fatal("client messages reveal whether a user exists")
	}
}

func TestAuthorize(t *testing.T) {
	u := &User{Username: "u", Policies: []Policy{
		{Resource: "Topic:orders", Actions: []Action{ActionPub}, Decision: Allow},
		{Resource: "Topic:logs-*", Actions: []Action{ActionPub, ActionSub}, Decision: Allow},
		{Resource: "Topic:logs-secret", Actions: []Action{ActionAll}, Decision: Deny},
		{Resource: "Group:*", Actions: []Action{ActionSub}, Decision: Allow},
	}}
	for _, tc := range []struct {
		typ  ResourceType
		name string
		act  Action
		ok   bool
	}{
		{ResourceTopic, "orders", ActionPub, true},
		{ResourceTopic, "orders", ActionSub, false},
		{ResourceTopic, "orders2", ActionPub, false},
		{ResourceTopic, "logs-app", ActionSub, true},
		{ResourceTopic, "logs-secret", ActionSub, false}, // deny wins over the prefix allow
		{ResourceGroup, "any", ActionSub, true},
		{ResourceGroup, "any", ActionPub, false},
		{ResourceGroup, "orders", ActionPub, false}, // a topic policy does not cover a group
	} {
		err := u.Authorize(tc.typ, tc.name, tc.act, netip.Addr{})
		if (err == nil) != tc.ok {
			t.Errorf("%s %s:%s: err = %v, want ok=%v", tc.act, tc.typ, tc.name, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), tc.name)) {
			t.Errorf("error %v must wrap ErrForbidden and name the resource", err)
		}
	}
	if err := (&User{Super: true}).Authorize(ResourceTopic, "x", ActionPub, netip.Addr{}); err != nil {
		t.Errorf("super user refused: %v", err)
	}
}

func TestACLValidate(t *testing.T) {
	for want, a := range map[string]*ACL{
		"empty username":  {Users: []User{{Username: "", Password: "p"}}},
		"defined twice":   {Users: []User{{Username: "a", Password: "p"}, {Username: "a", Password: "p"}}},
		"Write":           {Users: []User{{Username: "a", Password: "p", Policies: []Policy{{Resource: "Topic:x", Actions: []Action{"Write"}, Decision: Allow}}}}},
		"Queue:x":         {Users: []User{{Username: "a", Password: "p", Policies: []Policy{{Resource: "Queue:x", Actions: []Action{ActionPub}, Decision: Allow}}}}},
		"only at the end": {Users: []User{{Username: "a", Password: "p", Policies: []Policy{{Resource: "Topic:a*b", Actions: []Action{ActionPub}, Decision: Allow}}}}},
		"Maybe":           {Users: []User{{Username: "a", Password: "p", Policies: []Policy{{Resource: "Topic:x", Actions: []Action{ActionPub}, Decision: "Maybe"}}}}},
		// R8K-7: anyone knowing the name could sign with an empty secret.
		"empty password": {Users: []User{{Username: "a", Super: true}}},
		"userStatus":     {Users: []User{{Username: "a", Password: "p", UserStatus: "paused"}}},
		"sourceIps":      {Users: []User{{Username: "a", Password: "p", Policies: []Policy{{Resource: "*", Actions: []Action{ActionAll}, Decision: Allow, SourceIPs: []string{"10.0.0.300"}}}}}},
	} {
		if err := a.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ACL %+v: err %v, want one naming %q", a, err, want)
		}
	}
	a := &ACL{Users: []User{{Username: "a", Password: "p", UserStatus: "disable"}}}
	if err := a.Validate(); err != nil || !a.Users[0].Disabled {
		t.Errorf("userStatus disable: %v, disabled %v", err, a.Users[0].Disabled)
	}
}

// TestSourceIPs (R8K-6): a policy naming sourceIps applies only to clients from them; an
// Allow does not reach other addresses, a Deny does not block them.
func TestSourceIPs(t *testing.T) {
	a := &ACL{Users: []User{{Username: "u", Password: "p", Policies: []Policy{
		{Resource: "Topic:*", Actions: []Action{ActionPub}, Decision: Allow, SourceIPs: []string{"10.1.0.0/16", "192.168.1.7"}},
		{Resource: "Topic:audit", Actions: []Action{ActionAll}, Decision: Deny, SourceIPs: []string{"10.1.2.0/24"}},
	}}}}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	u := &a.Users[0]
	for _, tc := range []struct {
		ip, topic string
		ok        bool
	}{
		{"10.1.9.9", "orders", true},
		{"::ffff:10.1.9.9", "orders", true}, // IPv4-mapped peer address
		{"192.168.1.7", "orders", true},
		{"192.168.1.8", "orders", false},
		{"10.1.2.3", "audit", false}, // the deny's network
		{"10.1.9.9", "audit", true},  // the deny does not apply here
		{"", "orders", false},        // unknown address: a restricted allow does not apply
	} {
		var ip netip.Addr
		if tc.ip != "" {
			ip = netip.MustParseAddr(tc.ip)
		}
		if err := u.Authorize(ResourceTopic, tc.topic, ActionPub, ip); (err == nil) != tc.ok {
			t.Errorf("%s -> %s: %v, want ok=%v", tc.ip, tc.topic, err, tc.ok)
		}
	}
	// A Policy used without Validate still honours its sourceIps (never fails open).
	raw := &User{Username: "r", Policies: []Policy{{Resource: "*", Actions: []Action{ActionAll}, Decision: Allow, SourceIPs: []string{"10.0.0.1"}}}}
	if raw.Authorize(ResourceTopic, "x", ActionPub, netip.MustParseAddr("10.0.0.2")) == nil {
		t.Error("unvalidated sourceIps ignored")
	}
}

// TestLoadRefusesUnknownKeys (R8K-6): a misspelt key or a restriction this version does not
// know fails the load instead of silently widening access.
func TestLoadRefusesUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"top-level typo":     `{"user":[{"username":"a","password":"p","super":true}]}`,
		"unknown policy key": `{"users":[{"username":"a","password":"p","policies":[{"resource":"*","actions":["All"],"decision":"Allow","sourceIp":["10.0.0.1"]}]}]}`,
		"trailing data":      `{"users":[]} {"users":[]}`,
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	path := filepath.Join(dir, "apache.json")
	os.WriteFile(path, []byte(`{"users":[{"username":"a","password":"p","userStatus":"disable"},
		{"username":"b","password":"q","policies":[{"resource":"Topic:t","actions":["Pub"],"decision":"Allow","sourceIps":["127.0.0.1"]}]}]}`), 0o600)
	a, err := Load(path)
	if err != nil || !a.Users[0].Disabled || a.Users[1].Authorize(ResourceTopic, "t", ActionPub, netip.MustParseAddr("127.0.0.2")) == nil {
		t.Fatalf("Apache-style keys: %+v, %v", a, err)
	}
}

func TestSaveLoadReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "acl.json")
	a := &ACL{Users: []User{{Username: "alice", Password: "one"}}}
	if err := Save(path, a); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", st.Mode().Perm())
	}
	back, err := Load(path)
	if err != nil || len(back.Users) != 1 || back.Users[0].Password != "one" {
		t.Fatalf("Load = %+v, %v", back, err)
	}
	s, err := NewStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.lookup("alice").Password != "one" {
		t.Fatal("store did not load")
	}
	// Change the file (different size so the check does not depend on mtime resolution).
	if err := Save(path, &ACL{Users: []User{{Username: "alice", Password: "two-longer"}}}); err != nil {
		t.Fatal(err)
	}
	if changed, err := s.reload(); err != nil || !changed {
		t.Fatalf("reload = %v, %v", changed, err)
	}
	if s.lookup("alice").Password != "two-longer" {
		t.Fatal("reload did not swap the ACL")
	}
	// A broken file keeps the previous ACL.
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.reload(); err == nil {
		t.Fatal("broken file reloaded without error")
	}
	if s.lookup("alice").Password != "two-longer" {
		t.Fatal("broken file replaced the ACL")
	}
}

func TestStoreRunPollsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acl.json")
	if err := Save(path, &ACL{Users: []User{{Username: "u", Password: "old"}}}); err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, 10*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	if err := Save(path, &ACL{Users: []User{{Username: "u", Password: "new-and-longer"}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.lookup("u").Password != "new-and-longer" {
		if time.Now().After(deadline) {
			t.Fatal("Run did not pick up the changed file")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

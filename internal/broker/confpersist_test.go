package broker

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rocketry-mq/rocketry/internal/remoting"
)

func TestRewriteProperties(t *testing.T) {
	src := "# broker.conf\r\nbrokerName = broker-a\nfileReservedTime=72\n! note\n" +
		"deleteWhen: 04\nmaxMessageSize=4194304\nmaxMessageSize=1000\nlong=a\\\n  b\n"
	out, err := rewriteProperties([]byte(src), map[string]string{
		"fileReservedTime": "48", "maxMessageSize": "2048", "long": "c", "brokerPermission": "4",
		"deleteWhen": "01;13",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	want := "# broker.conf\nbrokerName = broker-a\nfileReservedTime=48\n! note\n" +
		"deleteWhen=01;13\nmaxMessageSize=4194304\nmaxMessageSize=2048\nlong=c\nbrokerPermission=4\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("rewrite (-want +got):\n%s", diff)
	}
	// What was written reads back to the same values.
	props, err := ReadProperties(strings.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"fileReservedTime": "48", "maxMessageSize": "2048", "long": "c",
		"brokerPermission": "4", "deleteWhen": "01;13", "brokerName": "broker-a"} {
		if props[k] != v {
			t.Errorf("%s = %q, want %q", k, props[k], v)
		}
	}
	// Values that need escaping survive the round trip.
	odd := map[string]string{"a key": " lead\\back\nline"}
	enc, err := rewriteProperties(nil, odd)
	if err != nil {
		t.Fatal(err)
	}
	props, err = ReadProperties(bytes.NewReader(enc))
	if err != nil || props["a key"] != odd["a key"] {
		t.Fatalf("escaped round trip: %q, %v", props["a key"], err)
	}
}

// TestRuntimeConfigPersisted: UPDATE_BROKER_CONFIG on a broker started from a config file
// writes the changed keys into that file (Apache's Configuration.persist), so a restart
// keeps them; other lines are left alone.
func TestRuntimeConfigPersisted(t *testing.T) {
	cfg := testConfig(t)
	path := filepath.Join(t.TempDir(), "broker.conf")
	if err := os.WriteFile(path, []byte("# ops\nbrokerClusterName=DefaultCluster\nfileReservedTime=72\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := LoadConfigFile(&cfg, path, nil); err != nil {
		t.Fatal(err)
	}
	if cfg.ConfigFile != path {
		t.Fatalf("ConfigFile %q", cfg.ConfigFile)
	}
	tb := startBroker(t, cfg)
	if r := tb.invoke(remoting.UpdateBrokerConfig, nil, []byte("fileReservedTime=24\nautoCreateTopicEnable=false")); r.Code != remoting.Success {
		t.Fatalf("update: %d %q", r.Code, r.Remark)
	}
	// A refused update writes nothing.
	if r := tb.invoke(remoting.UpdateBrokerConfig, nil, []byte("fileReservedTime=abc")); r.Code != remoting.InvalidParameter {
		t.Fatalf("bad update: %d", r.Code)
	}
	tb.stop()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "# ops\nbrokerClusterName=DefaultCluster\nfileReservedTime=24\nautoCreateTopicEnable=false\n"
	if string(b) != want {
		t.Fatalf("file after update:\n%s\nwant:\n%s", b, want)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	cfg2 := testConfig(t)
	cfg2.DataDir = cfg.DataDir
	if err := LoadConfigFile(&cfg2, path, nil); err != nil {
		t.Fatal(err)
	}
	tb2 := startBroker(t, cfg2)
	if live := tb2.LiveConfig(); live.FileReservedTime != 24*time.Hour || live.AutoCreateTopicEnable {
		t.Fatalf("after restart: fileReservedTime %d autoCreateTopicEnable %v", live.FileReservedTime, live.AutoCreateTopicEnable)
	}
}

package message

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestValidateTopic(t *testing.T) {
	ok := []string{"T", "TopicTest", "a-b_c|d%e", strings.Repeat("a", 127), RetryTopic(strings.Repeat("g", 120)), DLQTopic("g")}
	for _, n := range ok {
		if err := ValidateTopic(n); err != nil {
			t.Errorf("ValidateTopic(%q) = %v", n, err)
		}
	}
	bad := map[string]error{
		"":                                   ErrNameBlank,
		"   ":                                ErrNameBlank,
		"a.b":                                ErrNameIllegal,
		"a/b":                                ErrNameIllegal,
		"../x":                               ErrNameIllegal,
		"a b":                                ErrNameIllegal,
		"tópico":                             ErrNameIllegal,
		strings.Repeat("a", 128):             ErrNameTooLong,
		"%RETRY%" + strings.Repeat("a", 249): ErrNameTooLong,
	}
	for n, want := range bad {
		err := ValidateTopic(n)
		if !errors.Is(err, want) {
			t.Errorf("ValidateTopic(%q) = %v, want %v", n, err, want)
		}
	}
	if err := ValidateTopic("a.b"); !strings.Contains(err.Error(), "allowing only ^[%|a-zA-Z0-9_-]+$") {
		t.Errorf("remark %q", err)
	}
}

func TestValidateGroup(t *testing.T) {
	if err := ValidateGroup(strings.Repeat("g", 120)); err != nil {
		t.Fatal(err)
	}
	if err := ValidateGroup(strings.Repeat("g", 121)); !errors.Is(err, ErrNameTooLong) {
		t.Fatal(err)
	}
	if err := ValidateGroup(""); !errors.Is(err, ErrNameBlank) {
		t.Fatal(err)
	}
	if err := ValidateGroup("g:1"); !errors.Is(err, ErrNameIllegal) {
		t.Fatal(err)
	}
}

func TestSystemNames(t *testing.T) {
	for _, n := range []string{TopicDefault, TopicSchedule, TopicTransHalf, TopicTransOpHalf, TopicTransCheckMax, TopicTrace, "rmq_sys_wheel_timer", "rmq_sys_REVIVE_LOG_DefaultCluster", "BenchmarkTest", "SELF_TEST_TOPIC", "OFFSET_MOVED_EVENT"} {
		if !IsSystemTopic(n) {
			t.Errorf("%s should be a system topic", n)
		}
	}
	for _, n := range []string{"TopicTest", RetryTopic("g"), DLQTopic("g")} {
		if IsSystemTopic(n) {
			t.Errorf("%s should not be a system topic", n)
		}
	}
	if !IsNotAllowedSendTopic(TopicTransHalf) || IsNotAllowedSendTopic(TopicDefault) {
		t.Error("IsNotAllowedSendTopic")
	}
	for _, g := range []string{"DEFAULT_CONSUMER", "TOOLS_CONSUMER", "CLIENT_INNER_PRODUCER", "CID_RMQ_SYS_TRANS"} {
		if !IsReservedGroup(g) {
			t.Errorf("%s should be reserved", g)
		}
	}
	if IsReservedGroup("my-group") {
		t.Error("my-group reserved")
	}
	if RetryTopic("g") != "%RETRY%g" || DLQTopic("g") != "%DLQ%g" {
		t.Error("retry/dlq topic names")
	}
}

var topicRE = regexp.MustCompile(`^[%|a-zA-Z0-9_-]+$`)

func FuzzValidateTopic(f *testing.F) {
	for _, s := range []string{"T", "", " ", "a.b", "%RETRY%g", strings.Repeat("x", 128), "\xff\xfe", "TBW102"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateTopic(s)
		limit := 127
		if strings.HasPrefix(s, "%RETRY%") || strings.HasPrefix(s, "%DLQ%") {
			limit = 255
		}
		want := topicRE.MatchString(s) && len(s) <= limit
		if (err == nil) != want {
			t.Fatalf("ValidateTopic(%q) = %v, want ok=%v", s, err, want)
		}
		gerr := ValidateGroup(s)
		if (gerr == nil) != (topicRE.MatchString(s) && len(s) <= 120) {
			t.Fatalf("ValidateGroup(%q) = %v", s, gerr)
		}
	})
}

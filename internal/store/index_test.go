package store

import (
	"strconv"
	"testing"

	"github.com/rocketry-mq/rocketry/internal/message"
)

func TestJavaHashMatchesStringHashCode(t *testing.T) {
	for _, c := range [][2]string{{"T", "k"}, {"TopicTest", "0A0000010000000000000000000000AB"}, {"t", "é😀"}, {"%RETRY%g", ""}} {
		h := int32(message.TagsHashCode(c[0] + "#" + c[1]))
		if h < 0 {
			h = -h
		}
		if h < 0 {
			h = 0
		}
		if got := javaHash(c[0], c[1]); got != h {
			t.Errorf("javaHash(%q, %q) = %d, want %d", c[0], c[1], got, h)
		}
	}
}

func TestIndexSurvivesRestartAndRolls(t *testing.T) {
	cfg := testConfig(t.TempDir())
	s := openT(t, cfg)
	var res []PutResult
	for i := 0; i < 600; i++ { // > 2 index files of 256 entries (3 keys per message)
		res = append(res, put(t, s, newMsg("I", 0, i, 20)))
	}
	s.Close()
	s = openT(t, cfg)
	defer s.Close()
	for _, i := range []int{0, 299, 599} {
		got, err := s.QueryByKey("I", "k"+strconv.Itoa(i), 3, 0, 1<<62)
		if err != nil || len(got) != 1 || got[0] != res[i].CommitLogOffset {
			t.Fatalf("k%d: %v %v", i, got, err)
		}
	}
	put(t, s, newMsg("I", 0, 1000, 20))
	waitDispatched(t, s)
	if got, _ := s.QueryByKey("I", "k1000", 3, 0, 1<<62); len(got) != 1 {
		t.Fatalf("key added after restart: %v", got)
	}
	if got, _ := s.QueryByKey("I", "shared", 1000, 0, 1<<62); len(got) != 601 {
		t.Fatalf("shared key after restart: %d (no duplicates, none lost)", len(got))
	}
}

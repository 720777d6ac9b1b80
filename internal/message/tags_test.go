package message

import "testing"

func TestTagsHashCodeMatchesJava(t *testing.T) {
	// Values of java.lang.String.hashCode().
	cases := map[string]int64{
		"":                   0,
		"hello":              99162322,
		"TagA":               2598919,
		"é":                  233,
		"😀":                  1772899, // surrogate pair D83D DE00
		"polygenelubricants": -2147483648,
	}
	for s, want := range cases {
		if got := TagsHashCode(s); got != want {
			t.Errorf("TagsHashCode(%q) = %d, want %d", s, got, want)
		}
	}
}

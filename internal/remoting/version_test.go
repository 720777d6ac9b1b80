package remoting

import "testing"

func TestVersionNames(t *testing.T) {
	for _, tc := range []struct {
		ordinal int32
		name    string
	}{
		{0, "V3_0_0_SNAPSHOT"}, {15, "V3_0_0_FINAL"}, {17, "V3_0_1"}, {317, "V4_5_2"},
		{Version, "V5_3_3"}, {412, "V5_0_0_SNAPSHOT"}, {611, "V5_9_9"}, {612, "HIGHER_VERSION"}, {9999, "HIGHER_VERSION"},
	} {
		if got := VersionName(tc.ordinal); got != tc.name {
			t.Errorf("VersionName(%d) = %s, want %s", tc.ordinal, got, tc.name)
		}
	}
	for _, tc := range []struct {
		version string
		ordinal int32
		ok      bool
	}{
		{"5.3.3", Version, true}, {"5.0.1-rc1", 415, true}, {"4.5.2", 317, true}, {"5.1", 0, false}, {"x.y.z", 0, false},
	} {
		if got, ok := VersionOrdinal(tc.version); got != tc.ordinal || ok != tc.ok {
			t.Errorf("VersionOrdinal(%q) = %d %v, want %d %v", tc.version, got, ok, tc.ordinal, tc.ok)
		}
	}
}

package remoting

import (
	"fmt"
	"strconv"
	"strings"
)

// RocketMQ numbers its versions by the ordinal of the MQVersion.Version enum, which the
// version field of every remoting command carries. The enum's layout (facts from
// apache/rocketmq common/MQVersion.java):
//
//   - ordinals 0-15: V3_0_0_SNAPSHOT, V3_0_0_ALPHA1, V3_0_0_BETA1..BETA5, then BETA6..BETA9
//     each preceded by its _SNAPSHOT, then V3_0_0_FINAL;
//   - then every later version as a (_SNAPSHOT, release) pair, in order: 3.0.1-3.0.15,
//     3.1.0-3.1.9, 3.2.0-3.2.9, 3.3.1-3.3.9 ... 3.9.1-3.9.9 (no x.y.0 for minors 3-9),
//     4.0.0-4.9.9, 5.0.0-5.9.9;
//   - last, HIGHER_VERSION (any larger ordinal reads as it).
var versionNames = buildVersionNames()

func buildVersionNames() []string {
	names := []string{"V3_0_0_SNAPSHOT", "V3_0_0_ALPHA1"}
	for b := 1; b <= 5; b++ {
		names = append(names, fmt.Sprintf("V3_0_0_BETA%d", b))
	}
	for b := 6; b <= 9; b++ {
		names = append(names, fmt.Sprintf("V3_0_0_BETA%d_SNAPSHOT", b), fmt.Sprintf("V3_0_0_BETA%d", b))
	}
	names = append(names, "V3_0_0_FINAL")
	pair := func(major, minor, patch int) {
		v := fmt.Sprintf("V%d_%d_%d", major, minor, patch)
		names = append(names, v+"_SNAPSHOT", v)
	}
	for p := 1; p <= 15; p++ {
		pair(3, 0, p)
	}
	for minor := 1; minor <= 9; minor++ {
		first := 0
		if minor >= 3 {
			first = 1
		}
		for p := first; p <= 9; p++ {
			pair(3, minor, p)
		}
	}
	for major := 4; major <= 5; major++ {
		for minor := 0; minor <= 9; minor++ {
			for p := 0; p <= 9; p++ {
				pair(major, minor, p)
			}
		}
	}
	return append(names, "HIGHER_VERSION")
}

// VersionName is MQVersion.getVersionDesc: the enum name of a version ordinal ("V4_5_2");
// ordinals past the end read as HIGHER_VERSION, negative ones as V3_0_0_SNAPSHOT.
func VersionName(ordinal int32) string {
	switch {
	case ordinal < 0:
		return versionNames[0]
	case int(ordinal) >= len(versionNames):
		return versionNames[len(versionNames)-1]
	}
	return versionNames[ordinal]
}

// VersionOrdinal parses a release version such as "5.1.2" (a gRPC SDK's user agent; any
// suffix after the patch number, as in "5.0.1-rc1", is ignored) into its ordinal; ok is false
// when it names no known release.
func VersionOrdinal(version string) (ordinal int32, ok bool) {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) != 3 {
		return 0, false
	}
	patch := parts[2]
	if i := strings.IndexFunc(patch, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		patch = patch[:i]
	}
	want := "V" + parts[0] + "_" + parts[1] + "_" + patch
	if _, err := strconv.Atoi(patch); err != nil {
		return 0, false
	}
	for i, n := range versionNames {
		if n == want {
			return int32(i), true
		}
	}
	return 0, false
}

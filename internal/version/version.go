// Package version holds the build version reported by every component.
package version

// Version is the Rocketry release; overridden with -ldflags "-X ...version.Version=...".
var Version = "0.1.0-dev"

// RocketMQVersion is the RocketMQ MQVersion ordinal Rocketry reports on the wire
// (V5_3_3 = 479), so clients that gate features on the broker version see a 5.x broker.
const RocketMQVersion = 479

// RocketMQVersionName is the human-readable name of RocketMQVersion.
const RocketMQVersionName = "V5_3_3"

// Package route holds the JSON bodies exchanged with a NameServer, with RocketMQ's field
// names, so that brokers, the proxy and admin tools can build and parse them without
// importing the NameServer itself: TopicConfig, DataVersion, RegisterBrokerBody (plain JSON
// and the compressed form of RegisterBrokerBody.encode(true)), TopicRouteData, QueueData,
// BrokerData, ClusterInfo, TopicList, KVTable and BrokerMemberGroup.
//
// Encoding is compact JSON (no spaces): rocketmq-client-go v2 string-splits brokerAddrs
// and needs it so. Decoding ignores unknown fields (Java brokers send more).
//
// The package has no state and no goroutines.
package route

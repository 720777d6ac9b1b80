// Package admin holds the cluster administration operations shared by `rocketry admin` and
// (later) the console: topics, subscription groups, offsets, cluster overview, message
// lookup and dead-letter replay. It speaks RocketMQ remoting to the NameServers and brokers
// (the same requests as RocketMQ's mqadmin, reference B.2-B.4), so it works against Rocketry
// and Apache RocketMQ alike.
//
// Usage sketch:
//
//	a, err := admin.New(admin.Config{NameServers: []string{"127.0.0.1:9876"}}, logger)
//	defer a.Close()
//	res, err := a.CreateTopic(ctx, admin.TopicSpec{Name: "orders", Type: admin.TopicFIFO, Queues: 8})
//	d, err := a.DescribeGroup(ctx, "billing")
//
// Results are plain structs with JSON tags: the CLI prints them as tables or as JSON, and the
// JSON field names are a stable contract for scripts (docs/cli.md).
//
// Errors: a broker or NameServer answering with a non-success code yields *CodeError
// (errors.Is(err, ErrNotFound) for TOPIC_NOT_EXIST, SUBSCRIPTION_GROUP_NOT_EXIST,
// QUERY_NOT_FOUND); transport errors are wrapped with the address.
//
// Bodies: RocketMQ's Java servers encode some maps with fastjson, whose JSON has unquoted
// numeric keys ({0:"addr"}) and object keys ({{"topic":..}:{..}}); decodeJSON accepts those
// as well as standard JSON.
//
// Concurrency: an *Admin is safe for concurrent use; per-broker requests of one operation run
// in parallel (bounded) and finish before the operation returns.
package admin

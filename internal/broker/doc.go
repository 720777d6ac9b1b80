// Package broker is the composition root of Rocketry's Broker: it wires the store, the
// metadata tables (topics, subscription groups, consumer offsets), the client registry, the
// remoting request handlers and NameServer registration, and offers the extension points the
// feature packages (timer, pop, txn) plug into through their feature_*.go adapter files.
//
// Usage sketch:
//
//	cfg := broker.DefaultConfig()
//	cfg.DataDir, cfg.NamesrvAddrs = dir, []string{"127.0.0.1:9876"}
//	cfg.ListenAddr = "127.0.0.1:0" // free port; b.Addr() tells which
//	b, err := broker.New(cfg, logger)
//	go b.Run(ctx) // serves until ctx ends, then unregisters, drains and closes
//	defer b.Close()
//
// Extension points (docs/broker-internals.md): featureInits run at the end of New,
// featureStarts when Run starts; Handle registers a remoting handler; AddPutHook lets a
// feature take over puts (delay/timer, half messages); PutMessage is the hooked put path and
// PutMessageDirect the raw one; Go runs a goroutine Close waits for; SetInflightCounter feeds
// GET_CONSUME_STATS; InitialOffset is the shared "where does a new group start" rule;
// WatchQueue wakes long-polling features on message arrival; ResponseFor and CodedError map
// Go errors to RocketMQ ResponseCodes (errors.go is the one table for this protocol edge).
//
// Goroutines: Run owns the remoting server; b.Go goroutines (register loop, offset flush
// loop, client expiry scan, feature goroutines) end when the run context or b.Context() is
// cancelled and Close waits for them. Parked long polls wait on channels closed by the
// store's dispatch callback (no polling loops) and are answered at shutdown.
//
// Locks: each table (TopicTable, GroupTable, OffsetTable) has its own RWMutex, never held
// while taking another table's; each table's persistMu (file writes) is taken before, never
// inside, its mu. ClientManager.mu, QueueLocks.mu and pollTable.mu are leaves; callbacks
// (consumer-change notifications) run outside them. No broker lock is held across network
// I/O or a store call.
//
// Persistence: <DataDir>/config/topics.json, subscriptionGroup.json and consumerOffset.json,
// RocketMQ-shaped JSON written atomically (temp file, fsync, rename, fsync dir). Topics and
// groups are written on every change; offsets every FlushConsumerOffsetInterval (5 s) and at
// shutdown.
package broker

package txn

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/store"
)

// openStoreLog opens a real store at dir (small segments, sync flush) wrapped in a StoreLog.
func openStoreLog(dir string) (*StoreLog, error) {
	cfg := store.DefaultConfig()
	cfg.StorePathRootDir = dir + "/store"
	cfg.MappedFileSizeCommitLog = 1 << 20
	cfg.MaxMessageSize = 64 << 10
	cfg.MappedFileSizeConsumeQueue = 1000 * 20
	cfg.FlushDiskType = store.SyncFlush
	cfg.PreallocMode = store.PreallocFallocate
	cfg.MaxHashSlotNum = 1024
	cfg.MaxIndexNum = 4096
	cfg.StoreHost = netip.MustParseAddrPort("127.0.0.1:10911")
	st, err := store.Open(cfg, nil)
	if err != nil {
		return nil, err
	}
	return &StoreLog{Store: st, Direct: st.Put, Full: st.Put, Recovered: st.Stats().MaxPhysicalOffset}, nil
}

// storeBackend runs the scenarios on the real store, reopened on restart.
func storeBackend() backend {
	return backend{name: "store", open: func(t *testing.T, dir string) (Log, func()) {
		l, err := openStoreLog(dir)
		if err != nil {
			t.Fatal(err)
		}
		return l, func() {
			if err := l.Store.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		}
	}}
}

// waitDispatched waits until a StoreLog's dispatch caught up with everything written.
func waitDispatched(l Log) error {
	sl, ok := l.(*StoreLog)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return sl.Store.WaitDispatched(ctx, sl.Store.Stats().MaxPhysicalOffset)
}

func init() {
	backends = append(backends, storeBackend)
	settle = func(t *testing.T, l Log) {
		if err := waitDispatched(l); err != nil {
			t.Fatal(err)
		}
	}
}

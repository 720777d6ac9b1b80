package txn

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/rocketry-mq/rocketry/internal/store"
)

// storeBackend runs the scenarios on the real store (small segments, sync flush), reopened
// on restart.
func storeBackend() backend {
	return backend{name: "store", open: func(t *testing.T, dir string) (Log, func()) {
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
			t.Fatal(err)
		}
		l := &StoreLog{Store: st, Direct: st.Put, Full: st.Put, Recovered: st.Stats().MaxPhysicalOffset}
		return l, func() {
			if err := st.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		}
	}}
}

func init() {
	backends = append(backends, storeBackend)
	settle = func(t *testing.T, l Log) {
		sl, ok := l.(*StoreLog)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sl.Store.WaitDispatched(ctx, sl.Store.Stats().MaxPhysicalOffset); err != nil {
			t.Fatal(err)
		}
	}
}

package pop

import "github.com/rocketry-mq/rocketry/internal/store"

// storeReadMaxBytes bounds the bytes of one read (32 messages of the 4 MiB maximum fit).
const storeReadMaxBytes = 256 << 20

// StoreReader adapts the broker's message store to Reader.
type StoreReader struct{ S *store.Store }

// Read implements Reader with store.Get.
func (r StoreReader) Read(topic string, queue int32, offset int64, max int, match func(int64) bool) (*ReadResult, error) {
	res, err := r.S.Get(topic, queue, offset, max, storeReadMaxBytes, match)
	if err != nil {
		return nil, err
	}
	out := &ReadResult{Next: res.NextBeginOffset, Max: res.MaxOffset, Release: res.Release}
	switch res.Status {
	case store.NoMessageInQueue, store.OffsetOverflowOne:
		out.Next = offset // empty, unknown or caught up; Max says where the queue ends
	}
	if len(res.Records) > 0 {
		out.Records = make([]StoredRecord, len(res.Records))
		for i, rec := range res.Records {
			out.Records[i] = StoredRecord{Data: rec.Data, QueueOffset: rec.QueueOffset, TagsCode: rec.TagsCode}
		}
	}
	return out, nil
}

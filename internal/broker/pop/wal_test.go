package pop

import (
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"syscall"
	"testing"
)

func sampleRecords() []*Record {
	k := QueueKey{"G", "T", 2}
	return []*Record{
		{Kind: RecInit, Key: k, Offset: 10},
		{Kind: RecPop, Key: k, Offset: 13, Deliveries: []Delivery{
			{Offset: 10, Reconsume: 0, Epoch: 1, PopTime: 1000, Invisible: 30000},
			{Offset: 12, Reconsume: 3, Epoch: 2, PopTime: 1000, Invisible: 30000}}},
		{Kind: RecAck, Key: k, Offset: 10, Epoch: 1},
		{Kind: RecChange, Key: k, Offset: 12, Epoch: 2, NewEpoch: 3, PopTime: 2000, Invisible: 0},
		{Kind: RecRewind, Key: k, Offset: 12},
		{Kind: RecForget, Key: k},
	}
}

func TestRecordCodecRoundTrip(t *testing.T) {
	for _, r := range sampleRecords() {
		var back Record
		if err := decodeRecord(appendRecord(nil, r), &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&back, r) {
			t.Fatalf("got %+v want %+v", back, *r)
		}
	}
}

func TestWALRecoverAfterTornTail(t *testing.T) {
	dir := t.TempDir()
	w, err := openWAL(dir, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	live := NewMachine()
	var wg sync.WaitGroup
	for _, r := range sampleRecords() {
		live.Apply(r)
		b, err := w.append(r)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.wait(b) }()
	}
	wg.Wait()
	end := w.pos
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	// A torn frame right after the last record (crash mid-write) is ignored.
	f, err := os.OpenFile(filepath.Join(dir, logName(0)), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0, 0, 0, 40, 1, 2, 3, 4, 5}, end); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m := NewMachine()
	next, n, err := recoverState(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	if next != 1 || n != len(sampleRecords()) {
		t.Fatalf("next=%d replayed=%d", next, n)
	}
	if !equalSnapshots(live.Snapshot(), m.Snapshot()) {
		t.Fatalf("recovered %+v want %+v", m.Snapshot(), live.Snapshot())
	}
}

func TestWALRotateAndSnapshot(t *testing.T) {
	dir := t.TempDir()
	w, err := openWAL(dir, 5, false)
	if err != nil {
		t.Fatal(err)
	}
	live := NewMachine()
	recs := sampleRecords()
	for _, r := range recs[:2] {
		live.Apply(r)
		w.append(r)
	}
	state := live.Snapshot()
	seq := w.rotate()
	for _, r := range recs[2:] {
		live.Apply(r)
		w.append(r)
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	if err := writeSnapshot(dir, &snapshotDoc{LogSeq: seq, State: state}); err != nil {
		t.Fatal(err)
	}
	if err := removeLogsBefore(dir, seq); err != nil {
		t.Fatal(err)
	}
	seqs, _ := listLogs(dir)
	if !reflect.DeepEqual(seqs, []uint64{6}) {
		t.Fatalf("logs = %v", seqs)
	}
	m := NewMachine()
	next, n, err := recoverState(dir, m)
	if err != nil || next != 7 || n != len(recs)-2 {
		t.Fatalf("next=%d n=%d err=%v", next, n, err)
	}
	if !equalSnapshots(live.Snapshot(), m.Snapshot()) {
		t.Fatalf("recovered %+v want %+v", m.Snapshot(), live.Snapshot())
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, r := range sampleRecords() {
		f.Add(appendRecord(nil, r))
	}
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if err := decodeRecord(b, &r); err != nil {
			return
		}
		var back Record
		if err := decodeRecord(appendRecord(nil, &r), &back); err != nil || !reflect.DeepEqual(r, back) {
			t.Fatalf("round trip: %+v vs %+v (%v)", r, back, err)
		}
		NewMachine().Apply(&r) // never panics
	})
}

func TestWALRecoverStopsAtCorruptFrame(t *testing.T) {
	dir := t.TempDir()
	w, err := openWAL(dir, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	recs := sampleRecords()
	var firstLen int64
	for i, r := range recs {
		b, err := w.append(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.wait(b); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			firstLen = w.pos
		}
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, logName(0)), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xff}, firstLen+frameHeader+2) // inside the second record's payload
	f.Close()
	m := NewMachine()
	if _, n, err := recoverState(dir, m); err != nil || n != 1 {
		t.Fatalf("replayed %d (err %v), want 1", n, err)
	}
}

// TestWALFullDiskAppendsWithoutPrealloc (R5C-3): when zero-filling the next chunk hits
// ENOSPC, the partial chunk is cut off again and records are still appended, durable and
// recovered; the disk-full store does not stop consumers from popping and acking.
func TestWALFullDiskAppendsWithoutPrealloc(t *testing.T) {
	dir := t.TempDir()
	w, err := openWAL(dir, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	written := int64(0)
	w.zeroWrite = func(b []byte, off int64) (int, error) {
		if written += int64(len(b)); written > 512<<10 { // room for 2 of the 16 zero blocks of a chunk
			return 0, syscall.ENOSPC
		}
		return w.f.WriteAt(b, off)
	}
	live := NewMachine()
	for _, r := range sampleRecords() {
		live.Apply(r)
		b, err := w.append(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.wait(b); err != nil {
			t.Fatalf("append on a full disk: %v", err)
		}
	}
	if !w.noPrealloc {
		t.Fatal("the injected ENOSPC was not hit")
	}
	if fi, err := os.Stat(filepath.Join(dir, logName(0))); err != nil || fi.Size() > w.pos {
		t.Fatalf("partial zero-fill left behind: size %d, records end at %d (%v)", fi.Size(), w.pos, err)
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	m := NewMachine()
	if _, n, err := recoverState(dir, m); err != nil || n != len(sampleRecords()) {
		t.Fatalf("replayed %d, %v", n, err)
	}
	if !equalSnapshots(live.Snapshot(), m.Snapshot()) {
		t.Fatalf("recovered %+v want %+v", m.Snapshot(), live.Snapshot())
	}
}

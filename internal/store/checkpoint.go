package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"

	"github.com/rocketry-mq/rocketry/internal/store/vfs"
)

// checkpoint is what <root>/checkpoint records: every commit-log byte below flushed was
// fdatasync'ed, and every record below dispatched has its consume-queue and index entries
// durable (they were synced before the checkpoint was written). dispatched <= flushed.
type checkpoint struct {
	flushed    int64
	dispatched int64
	timestamp  int64 // unix ms when written
}

const (
	checkpointMagic = 0x524B4350 // "RKCP"
	checkpointSize  = 4 + 4 + 8 + 8 + 8 + 4
)

func (c checkpoint) encode() []byte {
	b := make([]byte, 0, checkpointSize)
	b = binary.BigEndian.AppendUint32(b, checkpointMagic)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint64(b, uint64(c.flushed))
	b = binary.BigEndian.AppendUint64(b, uint64(c.dispatched))
	b = binary.BigEndian.AppendUint64(b, uint64(c.timestamp))
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

var errBadCheckpoint = errors.New("store: checkpoint unreadable")

func decodeCheckpoint(b []byte) (checkpoint, error) {
	if len(b) != checkpointSize || binary.BigEndian.Uint32(b) != checkpointMagic {
		return checkpoint{}, fmt.Errorf("%w: bad size or magic", errBadCheckpoint)
	}
	if crc32.ChecksumIEEE(b[:checkpointSize-4]) != binary.BigEndian.Uint32(b[checkpointSize-4:]) {
		return checkpoint{}, fmt.Errorf("%w: crc mismatch", errBadCheckpoint)
	}
	c := checkpoint{
		flushed:    int64(binary.BigEndian.Uint64(b[8:])),
		dispatched: int64(binary.BigEndian.Uint64(b[16:])),
		timestamp:  int64(binary.BigEndian.Uint64(b[24:])),
	}
	if c.flushed < 0 || c.dispatched < 0 || c.dispatched > c.flushed {
		return checkpoint{}, fmt.Errorf("%w: inconsistent offsets", errBadCheckpoint)
	}
	return c, nil
}

// readCheckpoint loads path; a missing file reports fs.ErrNotExist.
func readCheckpoint(fsys vfs.FS, path string) (checkpoint, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return checkpoint{}, err
	}
	defer f.Close()
	b := make([]byte, checkpointSize+1)
	n, err := f.ReadAt(b, 0)
	if err != nil && n == 0 {
		if errors.Is(err, fs.ErrNotExist) {
			return checkpoint{}, err
		}
	}
	return decodeCheckpoint(b[:n])
}

func writeCheckpoint(fsys vfs.FS, path string, c checkpoint) error {
	return vfs.WriteFileAtomic(fsys, path, c.encode(), 0o644)
}

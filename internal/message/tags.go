package message

import "unicode/utf8"

// TagsHashCode is the tag code a ConsumeQueue entry stores for a message: Java's
// String.hashCode of the tag string (computed over UTF-16 code units, int32 arithmetic),
// widened to int64. The empty string hashes to 0, as in RocketMQ.
func TagsHashCode(tags string) int64 {
	var h int32
	for i := 0; i < len(tags); {
		c := tags[i]
		if c < utf8.RuneSelf {
			h = 31*h + int32(c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(tags[i:])
		i += size
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return int64(h)
}

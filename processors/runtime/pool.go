package runtime

import (
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fetchPool keeps the buffers franz-go decompresses fetched batches into,
// and the slices of records it decodes them into, for the next fetches of
// a stage whose processor copies what it keeps (Processor.CopiesInput).
// Without it each fetched batch left a new buffer of its decompressed size
// to the garbage collector: 1.4 GB per million billing rows through every
// stage (docs/performance.md). The client puts a batch's buffers back when
// the last of its records is recycled (recycle), which the instance does
// once the transaction that read them has ended.
//
// At most poolMax of each, and poolBytes of buffers, are kept: what a
// transaction and the fetches buffered behind it hold at once. Kept
// buffers count as live heap, so the collector lets the heap grow by as
// much again; with 256 buffers kept per stage `process` peaked at 711-719
// MiB on the real broker instead of 503-551.
type fetchPool struct {
	mu    sync.Mutex
	bytes [][]byte
	kept  int // the capacity of bytes' buffers, summed
	recs  [][]kgo.Record
	// reused counts the buffers handed out again (tests read it).
	reused int
}

const (
	poolMax   = 32
	poolBytes = 16 << 20
)

// GetDecompressBytes implements kgo.PoolDecompressBytes: the smallest kept
// buffer that holds what a snappy block says it decodes to (every codec
// else: the smallest kept), or nil when none does, so that franz-go
// allocates one of the right size, which comes back with the records. A
// buffer too small would be dropped for a new one: the decoder allocates
// rather than grows.
func (p *fetchPool) GetDecompressBytes(compressed []byte, codec kgo.CompressionCodecType) []byte {
	want := 0
	if codec == kgo.CodecSnappy {
		if n, err := s2.DecodedLen(compressed); err == nil {
			want = n
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	best := -1
	for i, b := range p.bytes {
		if cap(b) >= want && (best < 0 || cap(b) < cap(p.bytes[best])) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	b := p.bytes[best]
	p.reused++
	p.kept -= cap(b)
	last := len(p.bytes) - 1
	p.bytes[best], p.bytes[last] = p.bytes[last], nil
	p.bytes = p.bytes[:last]
	return b
}

// PutDecompressBytes implements kgo.PoolDecompressBytes.
func (p *fetchPool) PutDecompressBytes(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.bytes) < poolMax && p.kept+cap(b) <= poolBytes {
		p.bytes = append(p.bytes, b)
		p.kept += cap(b)
	}
}

// GetRecords implements kgo.PoolRecords.
func (p *fetchPool) GetRecords(n int) []kgo.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.recs) - 1; i >= 0; i-- {
		if r := p.recs[i]; cap(r) >= n {
			last := len(p.recs) - 1
			p.recs[i], p.recs[last] = p.recs[last], nil
			p.recs = p.recs[:last]
			return r[:n]
		}
	}
	return make([]kgo.Record, n)
}

// PutRecords implements kgo.PoolRecords.
func (p *fetchPool) PutRecords(r []kgo.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.recs) < poolMax {
		p.recs = append(p.recs, r)
	}
}

// recycle hands every record of a transaction's polls back to the client's
// pools: the transaction has ended, and the processor kept none of their
// bytes (Processor.CopiesInput).
func recycle(batch []kgo.Fetches) {
	for _, fs := range batch {
		fs.EachRecord(func(r *kgo.Record) { r.Recycle() })
	}
}

// Package jsonl is the JSON Lines file sink: one line per event, the decoded
// Avro value as JSON (records/avro.JSONSchema: fields in schema order, ISO
// dates, RFC 3339 timestamps, unions unwrapped, as tail prints it) inside an
// envelope that says where the event was read:
//
//	{"topic":"usagestream.eligibility.v1","partition":2,"offset":41,"key":"C1",
//	 "timestamp":"2026-11-22T10:00:00.123Z","schema_id":7,"value":{...}}
//
// Files are per topic and partition, named after the offset of their first
// line: DIR/<topic>/<topic>-p<partition>-<first offset>.jsonl. The file being
// written ends in .jsonl.part; it becomes .jsonl (fsync, then rename) when it
// reaches the size limit or the age limit, or when the sink stops, so a
// finished .jsonl file is never changed again and never holds half a line.
//
// Crash safety: each batch is written and fsynced before its offsets are
// committed. On start, a .part file left by a crash is cut back to its last
// complete line and finished; events at or below the last offset on disk
// are skipped when Kafka delivers them again, so every event is in the files
// exactly once. One directory serves one sink instance.
//
// Replays: a replay into the live topics emits the same events again, with
// the same event_id, at new offsets. An event whose event_id is already in
// its partition's files is skipped, whether it was written in this run or
// before a restart (the ids are read back from the files when a partition is
// first written). The ids are kept in memory, 16 bytes of SHA-256 each, for
// the files in the directory: files moved away are forgotten.
package jsonl

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usagestream/usagestream/sinks/sink"
)

// Config configures the sink.
type Config struct {
	Dir      string        // required
	MaxBytes int64         // rotate when a file reaches this size. Default: 64 MiB.
	MaxAge   time.Duration // rotate a file this long after its first line. Default: 1h.
	Logger   *slog.Logger  // Default: discard.
	Metrics  *Metrics      // Default: unregistered.
}

// withDefaults returns c with the defaults its fields' docs state in place
// of zero values.
func (c Config) withDefaults() Config {
	if c.MaxBytes <= 0 {
		c.MaxBytes = 64 << 20
	}
	if c.MaxAge <= 0 {
		c.MaxAge = time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	return c
}

// Sink writes events to JSON Lines files.
type Sink struct {
	cfg   Config
	log   *slog.Logger
	mu    sync.Mutex // Revoke comes from the group's goroutine
	parts map[partKey]*partFile
}

type partKey struct {
	topic     string
	partition int32
}

// partFile is the state of one topic partition: the .part file being
// written (nil between files) and the last offset on disk.
type partFile struct {
	dir, prefix string
	f           *os.File
	path        string
	size        int64
	opened      time.Time
	last        int64 // last offset written; -1 when none
	buf         []byte
	ids         map[idHash]struct{} // event ids in the partition's files
}

// idHash is the first 16 bytes of the SHA-256 of an event id: a collision,
// which would drop an event, is out of reach (2^-64 at 10^10 events).
type idHash [16]byte

func hashID(id []byte) idHash {
	sum := sha256.Sum256(id)
	return idHash(sum[:16])
}

// eventID is the event_id field of a value's JSON, or nil when it has none.
func eventID(js []byte) []byte {
	var v struct {
		EventID *string `json:"event_id"`
	}
	if json.Unmarshal(js, &v) != nil || v.EventID == nil || *v.EventID == "" {
		return nil
	}
	return []byte(*v.EventID)
}

// Open checks that the directory is writable and returns the sink.
func Open(cfg Config) (*Sink, error) {
	if cfg.Dir == "" {
		return nil, errors.New("no directory for the JSON Lines files: set --jsonl-dir or USAGESTREAM_JSONL_DIR")
	}
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the JSON Lines directory: %w", err)
	}
	probe, err := os.CreateTemp(cfg.Dir, ".probe-")
	if err != nil {
		return nil, fmt.Errorf("the JSON Lines directory %s is not writable: %w", cfg.Dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	s := &Sink{cfg: cfg, log: cfg.Logger.With("sink", "jsonl"), parts: map[partKey]*partFile{}}
	if err := s.recover(); err != nil {
		return nil, err
	}
	return s, nil
}

// recover finishes the .part files a crash left: each is cut back to its
// last whole line and renamed to .jsonl (or removed when nothing is left),
// so readers get every line that was written even if its partition never
// sees another event. The directory belongs to one sink instance: another
// one's open files would be finished under it.
func (s *Sink) recover() error {
	parts, err := filepath.Glob(filepath.Join(s.cfg.Dir, "*", "*.jsonl.part"))
	if err != nil {
		return err
	}
	for _, path := range parts {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("recovering %s: %w", path, err)
		}
		size, cut, err := repair(f)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("recovering %s: %w", path, err)
		}
		if cut > 0 {
			s.cfg.Metrics.repaired.Inc()
			s.log.Warn("cut a half-written line at the end of a file (left by a crash)", "file", path, "bytes", cut)
		}
		if size == 0 {
			err = os.Remove(path)
		} else {
			err = os.Rename(path, strings.TrimSuffix(path, ".part"))
			s.cfg.Metrics.files.Inc()
		}
		if err == nil {
			err = syncDir(filepath.Dir(path))
		}
		if err != nil {
			return fmt.Errorf("recovering %s: %w", path, err)
		}
	}
	return nil
}

type line struct {
	Topic     string          `json:"topic"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Key       string          `json:"key"`
	Timestamp time.Time       `json:"timestamp"`
	SchemaID  int             `json:"schema_id"`
	Value     json.RawMessage `json:"value"`
}

// Write implements sink.Writer.
func (s *Sink) Write(_ context.Context, batch []sink.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	touched := map[*partFile]bool{}
	skipped, replayed := 0, 0
	for _, ev := range batch {
		p, err := s.part(ev.Topic, ev.Partition)
		if err != nil {
			return s.fail(err)
		}
		if ev.Offset <= p.last {
			skipped++
			continue
		}
		var h idHash
		id := eventID(ev.JSON)
		if id != nil {
			h = hashID(id)
			if _, dup := p.ids[h]; dup {
				replayed++
				continue
			}
		}
		b, err := json.Marshal(line{ev.Topic, ev.Partition, ev.Offset, string(ev.Key), ev.Timestamp.UTC(), ev.SchemaID, ev.JSON})
		if err != nil {
			return s.fail(sink.Permanent(fmt.Errorf("%s partition %d offset %d: rendering JSON: %w", ev.Topic, ev.Partition, ev.Offset, err)))
		}
		b = append(b, '\n')
		if p.f != nil && p.size+int64(len(p.buf))+int64(len(b)) > s.cfg.MaxBytes && p.size+int64(len(p.buf)) > 0 {
			if err := s.finish(p); err != nil {
				return s.fail(err)
			}
		}
		if p.f == nil {
			if err := s.create(p, ev.Offset); err != nil {
				return s.fail(err)
			}
		}
		p.buf = append(p.buf, b...)
		p.last = ev.Offset
		if id != nil {
			p.ids[h] = struct{}{}
		}
		touched[p] = true
	}
	for p := range touched {
		if err := s.flush(p); err != nil {
			return s.fail(err)
		}
	}
	if skipped > 0 {
		s.cfg.Metrics.skipped.Add(float64(skipped))
		s.log.Info("events already in the files skipped (delivered again after a restart)", "events", skipped)
	}
	if replayed > 0 {
		s.cfg.Metrics.skipped.Add(float64(replayed))
		s.log.Info("events whose event_id is already in the files skipped (emitted again by a replay)", "events", replayed)
	}
	return nil
}

// fail forgets every partition's state after an error: lines buffered but
// not written are dropped with it, and the next attempt reloads each
// partition from disk (cutting any half line) and skips what is there.
func (s *Sink) fail(err error) error {
	for k, p := range s.parts {
		if p.f != nil {
			p.f.Close()
		}
		delete(s.parts, k)
	}
	return err
}

// Tick rotates files older than MaxAge.
func (s *Sink) Tick(_ context.Context, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.parts {
		if p.f != nil && now.Sub(p.opened) >= s.cfg.MaxAge {
			if err := s.finish(p); err != nil {
				return s.fail(err)
			}
		}
	}
	return nil
}

// Revoke finishes the files of partitions that move to another member and
// forgets them; if they come back, their state is read from disk again.
func (s *Sink) Revoke(ps map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, parts := range ps {
		for _, n := range parts {
			k := partKey{topic, n}
			if p := s.parts[k]; p != nil {
				if err := s.finish(p); err != nil {
					s.log.Warn("finishing a file of a revoked partition", "topic", topic, "partition", n, "err", err)
				}
				delete(s.parts, k)
			}
		}
	}
}

// Close finishes every open file.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for k, p := range s.parts {
		errs = append(errs, s.finish(p))
		delete(s.parts, k)
	}
	return errors.Join(errs...)
}

func (s *Sink) part(topic string, partition int32) (*partFile, error) {
	k := partKey{topic, partition}
	if p := s.parts[k]; p != nil {
		return p, nil
	}
	dir := filepath.Join(s.cfg.Dir, safeName(topic))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p := &partFile{dir: dir, prefix: fmt.Sprintf("%s-p%d-", safeName(topic), partition), last: -1, ids: map[idHash]struct{}{}}
	if err := s.load(p); err != nil {
		return nil, fmt.Errorf("reading the files of %s partition %d in %s: %w", topic, partition, dir, err)
	}
	s.parts[k] = p
	return p, nil
}

// load finds where the partition's files end: the offset of the last line
// of its newest file (after recover, every file is finished).
func (s *Sink) load(p *partFile) error {
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return err
	}
	newest, newestFirst := "", int64(-1)
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), p.prefix)
		if !ok || !strings.HasSuffix(rest, ".jsonl") {
			continue
		}
		first, err := strconv.ParseInt(strings.TrimSuffix(rest, ".jsonl"), 10, 64)
		if err != nil {
			continue
		}
		if first > newestFirst {
			newest, newestFirst = e.Name(), first
		}
		if err := readIDs(filepath.Join(p.dir, e.Name()), p.ids); err != nil {
			return err
		}
	}
	if newest == "" {
		return nil
	}
	last, err := lastOffset(filepath.Join(p.dir, newest))
	if err != nil {
		return err
	}
	p.last = last
	return nil
}

// readIDs adds the event ids of the lines of a file to ids.
func readIDs(path string, ids map[idHash]struct{}) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for n := 1; sc.Scan(); n++ {
		var l struct {
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("%s line %d is not a line this sink wrote (%v): move the file away", path, n, err)
		}
		if id := eventID(l.Value); id != nil {
			ids[hashID(id)] = struct{}{}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the event ids of %s: %w", path, err)
	}
	return nil
}

// repair truncates f after its last newline and leaves it positioned at the
// end. It returns the new size and how many bytes it cut.
func repair(f *os.File) (size, cut int64, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	end := st.Size()
	keep := int64(0)
	buf := make([]byte, 64<<10)
	for pos := end; pos > 0; {
		n := min(int64(len(buf)), pos)
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil && err != io.EOF {
			return 0, 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			keep = pos + int64(i) + 1
			break
		}
	}
	if keep < end {
		if err := f.Truncate(keep); err != nil {
			return 0, 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, 0, err
		}
	}
	if _, err := f.Seek(keep, io.SeekStart); err != nil {
		return 0, 0, err
	}
	return keep, end - keep, nil
}

// lastOffset reads the offset of the last line of a file of whole lines.
func lastOffset(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := st.Size()
	if end == 0 {
		return -1, nil
	}
	// Grow the tail read until it holds the whole last line.
	for n := int64(64 << 10); ; n *= 2 {
		n = min(n, end)
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, end-n); err != nil && err != io.EOF {
			return 0, err
		}
		body := bytes.TrimSuffix(buf, []byte{'\n'})
		i := bytes.LastIndexByte(body, '\n')
		if i < 0 && n < end {
			continue
		}
		var l struct {
			Offset *int64 `json:"offset"`
		}
		if err := json.Unmarshal(body[i+1:], &l); err != nil || l.Offset == nil {
			return 0, fmt.Errorf("the last line of %s is not a line this sink wrote (%v): move the file away", path, err)
		}
		return *l.Offset, nil
	}
}

func (s *Sink) create(p *partFile, first int64) error {
	p.path = filepath.Join(p.dir, fmt.Sprintf("%s%020d.jsonl.part", p.prefix, first))
	f, err := os.OpenFile(p.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	p.f, p.size, p.opened = f, 0, time.Now()
	return syncDir(p.dir)
}

// flush writes the partition's buffered lines and fsyncs the file.
func (s *Sink) flush(p *partFile) error {
	if len(p.buf) == 0 {
		return nil
	}
	n, err := p.f.Write(p.buf)
	p.size += int64(n)
	if err != nil {
		return err
	}
	p.buf = p.buf[:0]
	s.cfg.Metrics.bytes.Add(float64(n))
	return p.f.Sync()
}

// finish flushes, closes and renames the .part file to .jsonl.
func (s *Sink) finish(p *partFile) error {
	if p.f == nil {
		return nil
	}
	if err := s.flush(p); err != nil {
		return err
	}
	if err := p.f.Close(); err != nil {
		return err
	}
	p.f = nil
	done := strings.TrimSuffix(p.path, ".part")
	if err := os.Rename(p.path, done); err != nil {
		return err
	}
	s.cfg.Metrics.files.Inc()
	return syncDir(p.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// safeName keeps a topic name usable as a file name.
func safeName(topic string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, topic)
}

// Metrics are the sink's own Prometheus metrics.
type Metrics struct {
	bytes    prometheus.Counter
	files    prometheus.Counter
	skipped  prometheus.Counter
	repaired prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		bytes:    prometheus.NewCounter(prometheus.CounterOpts{Name: "usagestream_sink_jsonl_bytes_total", Help: "Bytes written to JSON Lines files."}),
		files:    prometheus.NewCounter(prometheus.CounterOpts{Name: "usagestream_sink_jsonl_files_total", Help: "Files finished (renamed from .jsonl.part to .jsonl)."}),
		skipped:  prometheus.NewCounter(prometheus.CounterOpts{Name: "usagestream_sink_jsonl_duplicates_total", Help: "Events already in the files, skipped: delivered again after a restart (by offset) or emitted again by a replay (by event_id)."}),
		repaired: prometheus.NewCounter(prometheus.CounterOpts{Name: "usagestream_sink_jsonl_repaired_files_total", Help: "Files whose half-written last line (from a crash) was cut."}),
	}
	if reg != nil {
		reg.MustRegister(m.bytes, m.files, m.skipped, m.repaired)
	}
	return m
}

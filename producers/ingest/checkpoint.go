package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/kafkaconf"
)

// Checkpoint is an ingestion's progress through one file (identified by the
// SHA-256 of its bytes). It is written in the same Kafka transaction as the
// rows it accounts for, so what a read_committed reader sees of the rows and
// of the checkpoint always agree: that is what makes a resume exact.
type Checkpoint struct {
	SHA256         string           `json:"sha256"`
	File           string           `json:"file"`
	Generation     int              `json:"generation"`
	Status         string           `json:"status"` // running, completed, failed
	NextLine       int64            `json:"next_line"`
	Read           int64            `json:"read"`
	Published      int64            `json:"published"`
	Rejected       int64            `json:"rejected"`
	RejectedByCode map[string]int64 `json:"rejected_by_code,omitempty"`
	Error          string           `json:"error,omitempty"`
	Updated        time.Time        `json:"updated"`
}

const (
	statusRunning   = "running"
	statusCompleted = "completed"
	statusFailed    = "failed"
)

// loadCheckpoint reads the checkpoint topic to its end, read_committed, and
// returns the newest checkpoint of sha (nil when the file was never seen).
//
// Call it only after fencing this file's transactional id (ProducerID): a run
// killed mid-transaction leaves the transaction open, and the fence aborts it.
// Other files' transactions may still be open, so it first waits until the
// last stable offset reaches the high watermark seen at the start: a
// checkpoint committed behind another file's open transaction is then visible.
func loadCheckpoint(ctx context.Context, kc kafkaconf.Config, topic, sha string) (*Checkpoint, error) {
	cl, err := kc.NewClient(ctx, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s (does the topic exist? 'usagestream run' creates it): %w", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil, nil
	}
	if err := waitStable(ctx, adm, topic, want); err != nil {
		return nil, err
	}

	parts := map[int32]kgo.Offset{}
	for p := range want {
		parts[p] = kgo.NewOffset().AtStart()
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts})

	var found *Checkpoint
	remaining := len(want)
	reached := map[int32]bool{}
	for remaining > 0 {
		// An idle poll after the stable offset passed the target means the
		// rest was compacted or aborted away: nothing more to read.
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if fs.Empty() {
			break
		}
		if err := firstRealError(fs); err != nil {
			return nil, fmt.Errorf("reading the ingest checkpoints from %s: %w", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() && string(r.Key) == sha && r.Value != nil {
				var cp Checkpoint
				if json.Unmarshal(r.Value, &cp) == nil {
					found = &cp
				}
			}
			if !reached[r.Partition] && r.Offset >= want[r.Partition]-1 {
				reached[r.Partition] = true
				remaining--
			}
		})
	}
	return found, nil
}

func waitStable(ctx context.Context, adm *kadm.Client, topic string, want map[int32]int64) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		lso, err := adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			return fmt.Errorf("listing the stable offsets of %s: %w", topic, err)
		}
		ok := true
		lso.Each(func(o kadm.ListedOffset) {
			if o.Offset < want[o.Partition] {
				ok = false
			}
		})
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("another ingestion keeps a transaction open on %s for over 2 minutes: wait for it or check for a stuck producer", topic)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func firstRealError(fs kgo.Fetches) error {
	var first error
	fs.EachError(func(_ string, _ int32, err error) {
		if first == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			first = err
		}
	})
	return first
}

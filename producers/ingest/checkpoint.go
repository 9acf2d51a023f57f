package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/consume"
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

// loadCheckpoint returns the newest committed checkpoint of sha (nil when
// the file was never seen).
//
// Call it only after fencing this file's transactional id (ProducerID): a run
// killed mid-transaction leaves the transaction open, and the fence aborts it,
// so what is read here is exactly what was committed.
func loadCheckpoint(ctx context.Context, kc kafkaconf.Config, topic, sha string) (*Checkpoint, error) {
	var found *Checkpoint
	err := consume.Each(ctx, kc, topic, func(r *kgo.Record) {
		if string(r.Key) != sha || r.Value == nil {
			return
		}
		var cp Checkpoint
		if json.Unmarshal(r.Value, &cp) == nil {
			found = &cp
		}
	})
	if err != nil {
		return nil, fmt.Errorf("reading the ingest checkpoints: %w", err)
	}
	return found, nil
}

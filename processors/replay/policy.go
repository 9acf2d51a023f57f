package replay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/rules"
)

// PolicyTopic is the compacted topic where the live processors (run,
// process) publish the policy they run with, so that a replay into the live
// topics can refuse to write them with another one.
func PolicyTopic(prefix string) string { return prefix + "processor-policy.v1" }

// policyKey is the record key: the newest start of any instance tells.
const policyKey = "processors"

// PolicyInfo names a policy: its file and its hash.
type PolicyInfo struct {
	// File is the policy file given (--policy), "" for the built-in policy.
	File string `json:"file"`
	// SHA256 is PolicyHash of the policy.
	SHA256 string `json:"sha256"`
	// Host and At say which instance published it, and when (PublishPolicy).
	Host string    `json:"host,omitempty"`
	At   time.Time `json:"at,omitzero"`
}

// Name is the file, or "the built-in policy".
func (p PolicyInfo) Name() string {
	if p.File == "" {
		return "the built-in policy"
	}
	return p.File
}

// String names the policy with its hash.
func (p PolicyInfo) String() string { return fmt.Sprintf("%s (sha256 %s)", p.Name(), p.SHA256) }

// PolicyHash is the SHA-256 of the policy's settings as the processors use
// them (the validation thresholds, which only validate reads, are left
// out): two files with the same settings have the same hash, so a replay
// with a copy of the live policy is not refused.
func PolicyHash(p rules.Policy) string {
	p.Validation = rules.Validation{}
	b, err := json.Marshal(p)
	if err != nil {
		// A Policy holds plain values only; Marshal cannot fail on it.
		panic(fmt.Sprintf("encoding a policy: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// PublishPolicy records the policy the live processors run with on
// PolicyTopic (created when missing: compacted, one partition).
func PublishPolicy(ctx context.Context, kc kafkaconf.Config, p PolicyInfo) error {
	cl, err := kc.NewClient(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	topic := PolicyTopic(kc.TopicPrefix)
	if err := topics.Ensure(ctx, kadm.NewClient(cl), []topics.Spec{{Name: topic, Compacted: true}}, 1, -1); err != nil {
		return fmt.Errorf("creating %s: %w", topic, err)
	}
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(policyKey), Value: v}).FirstErr(); err != nil {
		return fmt.Errorf("publishing the policy on %s: %w", topic, err)
	}
	return nil
}

// LivePolicy reads the policy the live processors last published; ok is
// false when none did (processors of an older release, or never started).
func LivePolicy(ctx context.Context, kc kafkaconf.Config) (p PolicyInfo, ok bool, err error) {
	cl, err := kc.NewClient(ctx)
	if err != nil {
		return p, false, err
	}
	tds, err := kadm.NewClient(cl).ListTopics(ctx, PolicyTopic(kc.TopicPrefix))
	cl.Close()
	if err != nil {
		return p, false, fmt.Errorf("looking for %s: %w", PolicyTopic(kc.TopicPrefix), err)
	}
	if td, exists := tds[PolicyTopic(kc.TopicPrefix)]; !exists || td.Err != nil {
		return p, false, nil
	}
	var derr error
	err = consume.Each(ctx, kc, PolicyTopic(kc.TopicPrefix), func(r *kgo.Record) {
		if string(r.Key) != policyKey || r.Value == nil {
			return
		}
		var q PolicyInfo
		if e := json.Unmarshal(r.Value, &q); e != nil {
			derr = fmt.Errorf("%s offset %d is not a policy record: %w", r.Topic, r.Offset, e)
			return
		}
		p, ok = q, true
	})
	if err == nil {
		err = derr
	}
	return p, ok, err
}

package rules

import (
	"fmt"
	"github.com/usagestream/usagestream/records"
)

// Store keeps the state of one stage between inputs, by key. Load returns the
// state to apply the next input to (a new zero state when the key is absent);
// Save is called after every input applied to it, so a store that spills to
// disk knows what changed. A store may hand out the same pointer again.
type Store[S any] interface {
	Load(key string) (S, error)
	Save(key string, s S) error
}

// MemoryStore keeps every state in a map: right for files that fit in memory.
type MemoryStore[T any] struct {
	m map[string]*T
	// The key loaded last and its state: the rows of a key mostly come one
	// after another, and comparing a key is cheaper than hashing it.
	lastKey string
	last    *T
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore[T any]() *MemoryStore[T] { return &MemoryStore[T]{m: map[string]*T{}} }

// Load returns the state of key, creating it when absent.
func (s *MemoryStore[T]) Load(key string) (*T, error) {
	if s.last != nil && key == s.lastKey {
		return s.last, nil
	}
	v := s.m[key]
	if v == nil {
		v = new(T)
		key = string([]byte(key)) // kept: not a slice of the file line it came from
		s.m[key] = v
	}
	s.lastKey, s.last = key, v
	return v, nil
}

// Save does nothing: the map holds the pointer Load gave out.
func (s *MemoryStore[T]) Save(string, *T) error { return nil }

// Each calls fn for every state held, in no particular order.
func (s *MemoryStore[T]) Each(fn func(key string, v *T)) {
	for k, v := range s.m {
		fn(k, v)
	}
}

// Len is the number of states held.
func (s *MemoryStore[T]) Len() int { return len(s.m) }

// Chain runs every stage in one process, in input order: the offline
// validator's way through the same rules the streaming stages apply. The
// streaming runtime routes memberships through a repartition topic; Chain
// hands them over at once, which is one of the orders the streaming path can
// take, and the order a single-partition run takes.
type Chain struct {
	Policy        Policy
	ServicePoints Store[*ServicePoint]
	Sites         Store[*Site]
	Customers     Store[*Customer]

	scratch Stage1Output // ApplyRow's output, reused from row to row
}

// NewChain returns a Chain with its state in memory.
func NewChain(p Policy) *Chain {
	return &Chain{Policy: p, ServicePoints: NewMemoryStore[ServicePoint](),
		Sites: NewMemoryStore[Site](), Customers: NewMemoryStore[Customer]()}
}

// ChainOutput is everything one billing row caused, in every stage.
type ChainOutput struct {
	Stage1Output
	Eligibility []EligibilityChanged
}

// Apply runs one accepted billing row through stage 1, the memberships it
// caused through the premise stage, and what that forwards through stage 2.
// The source of a stage 2 input is the billing row behind it, so that every
// event names the file and line that caused it.
func (c *Chain) Apply(row *records.BillingRow, src Source) (ChainOutput, error) {
	sp, err := c.ServicePoints.Load(row.ServicePointID)
	if err != nil {
		return ChainOutput{}, fmt.Errorf("load service point state: %w", err)
	}
	out := ChainOutput{Stage1Output: sp.Apply(c.Policy, row, src)}
	if err := c.ServicePoints.Save(row.ServicePointID, sp); err != nil {
		return out, fmt.Errorf("save service point state: %w", err)
	}
	out.Eligibility, err = c.ApplyMemberships(out.Memberships, nil)
	return out, err
}

// ApplyRow runs one accepted billing row through stage 1 alone. It touches
// only ServicePoints, and ApplyMemberships only Sites and Customers, so the
// two may run on two goroutines, one row behind the other, as long as
// ApplyMemberships gets every row's memberships in row order: stage 1 never
// depends on what the later stages do with them. Apply is the two in turn.
//
// The slices of the output are reused by the next ApplyRow: use them, or
// copy them (the memberships for ApplyMemberships), before. Apply's output
// is the caller's.
func (c *Chain) ApplyRow(row *records.BillingRow, src Source) (Stage1Output, error) {
	sp, err := c.ServicePoints.Load(row.ServicePointID)
	if err != nil {
		return Stage1Output{}, fmt.Errorf("load service point state: %w", err)
	}
	o := &c.scratch
	o.Corrections, o.Anomalies = o.Corrections[:0], o.Anomalies[:0]
	o.AccountEvents, o.Memberships = o.AccountEvents[:0], o.Memberships[:0]
	sp.apply(c.Policy, row, src, o)
	if err := c.ServicePoints.Save(row.ServicePointID, sp); err != nil {
		return *o, fmt.Errorf("save service point state: %w", err)
	}
	return *o, nil
}

// ApplyMemberships runs memberships of stage 1, in the order it sent them,
// through the premise stage and what that forwards through stage 2,
// appending the eligibility changes to out. An error names the file and
// line of the row behind the membership.
func (c *Chain) ApplyMemberships(ms []Membership, out []EligibilityChanged) ([]EligibilityChanged, error) {
	for _, m := range ms {
		site, err := c.Sites.Load(m.PremiseID)
		if err != nil {
			return out, fmt.Errorf("%s line %d: load premise state: %w", m.Source.File, m.Source.Line, err)
		}
		ins := site.Apply(c.Policy, m)
		if err := c.Sites.Save(m.PremiseID, site); err != nil {
			return out, fmt.Errorf("%s line %d: save premise state: %w", m.Source.File, m.Source.Line, err)
		}
		for _, in := range ins {
			cu, err := c.Customers.Load(in.CustomerID)
			if err != nil {
				return out, fmt.Errorf("%s line %d: load customer state: %w", m.Source.File, m.Source.Line, err)
			}
			out = append(out, cu.Receive(c.Policy, in, in.Cause)...)
			if err := c.Customers.Save(in.CustomerID, cu); err != nil {
				return out, fmt.Errorf("%s line %d: save customer state: %w", m.Source.File, m.Source.Line, err)
			}
		}
	}
	return out, nil
}

package pipeline

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
)

// The values of the repartition topics: a version byte, the utility (a
// uvarint length and its bytes), then the record in its rules encoding
// (rules.AppendMembership and the like). A compact binary form: the stages
// write and read one per membership change, and JSON cost them about a tenth
// of their CPU.
//
// The first releases wrote JSON objects; a value that starts with '{' is
// read as such, so a repartition topic they left behind keeps being read
// after an upgrade.
const repartitionV1 = 1

// appendValueHeader starts a value: the version and the utility.
func appendValueHeader(b []byte, utility string) []byte {
	b = append(b, repartitionV1)
	b = binary.AppendUvarint(b, uint64(len(utility)))
	return append(b, utility...)
}

// decodeValue decodes a repartition value: legacy JSON into v, or the
// version and utility, and the rest with record.
func decodeValue(b []byte, v any, utility *string, record func([]byte) error) error {
	if len(b) > 0 && b[0] == '{' {
		return json.Unmarshal(b, v)
	}
	if len(b) == 0 {
		return errors.New("an empty value")
	}
	if b[0] != repartitionV1 {
		return fmt.Errorf("value version %d, this release reads %d (and JSON): run the release that wrote it, or a newer one", b[0], repartitionV1)
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > uint64(len(b)-1-k) {
		return errors.New("the utility is cut short")
	}
	start := 1 + k
	*utility = string(b[start : start+int(n)])
	return record(b[start+int(n):])
}

func (m *membership) appendBinary(b []byte) []byte {
	return rules.AppendMembership(appendValueHeader(b, m.Utility), &m.Membership)
}

// AppendValue makes m the value of an output (runtime.Out.Encode).
func (m *membership) AppendValue(b []byte) []byte { return m.appendBinary(b) }

// membershipRef is a membership value made only if its output is produced
// (runtime.Out.Encode). It points at the membership in the output the rules
// returned, which nothing changes afterwards: a copy of the membership per
// output cost more than encoding it.
type membershipRef struct {
	utility string
	m       *rules.Membership
}

// membershipOut holds, in one allocation, what an output of a membership
// points at: its value to make and its coalescing.
type membershipOut struct {
	ref membershipRef
	co  runtime.Coalesce
}

func (r *membershipRef) AppendValue(b []byte) []byte {
	return rules.AppendMembership(appendValueHeader(b, r.utility), r.m)
}

func (m *membership) decode(b []byte) error {
	*m = membership{}
	return decodeValue(b, m, &m.Utility, func(r []byte) error { return rules.DecodeMembership(r, &m.Membership) })
}

func (ci *customerInput) appendBinary(b []byte) []byte {
	return rules.AppendCustomerInput(appendValueHeader(b, ci.Utility), &ci.Input)
}

func (ci *customerInput) decode(b []byte) error {
	*ci = customerInput{}
	return decodeValue(b, ci, &ci.Utility, func(r []byte) error { return rules.DecodeCustomerInput(r, &ci.Input) })
}

func (h *intervalHistory) appendBinary(b []byte) []byte {
	return rules.AppendIntervalHistory(appendValueHeader(b, h.Utility), &h.History)
}

func (h *intervalHistory) decode(b []byte) error {
	*h = intervalHistory{}
	return decodeValue(b, h, &h.Utility, func(r []byte) error { return rules.DecodeIntervalHistory(r, &h.History) })
}

// exactValue encodes a repartition value with appendTo into a pooled
// buffer and returns a copy of exactly its length. The value lives until
// its transaction commits and most are coalesced away before that: a new
// buffer of a guessed capacity (256 bytes) per value was most of the bytes
// the servicepoint stage allocated (docs/performance.md).
func (p *Pipeline) exactValue(appendTo func([]byte) []byte) []byte {
	v, _ := p.exactBytes(func(b []byte) ([]byte, error) { return appendTo(b), nil })
	return v
}

// exactBytes is exactValue for an encoding that may fail. Events encoded
// from nothing grew their buffer five or six times each.
func (p *Pipeline) exactBytes(appendTo func([]byte) ([]byte, error)) ([]byte, error) {
	bp, _ := p.scratch.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b, err := appendTo((*bp)[:0])
	var v []byte
	if err == nil {
		v = bytes.Clone(b)
	}
	*bp = b[:0]
	p.scratch.Put(bp)
	return v, err
}

package ingest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzCheckpoint: values of the ingest-checkpoints topic, decoded as
// loadCheckpoint does (a value that does not decode is skipped; the newest
// one that does decides a resume).
//
// Properties: no panic; a value that decodes survives a JSON round trip
// unchanged (what a resume reads is what the next checkpoint writes). What
// the value says is not checked by ingest (a negative next_line or counts,
// an unknown status are taken as they are): reported in issue 13; this
// target checks only what holds.
func FuzzCheckpoint(f *testing.F) {
	f.Add([]byte(`{"sha256":"ab","file":"f.gz","generation":1,"status":"running","next_line":12,"read":10,"published":9,"rejected":1,"rejected_by_code":{"BAD_DATE":1},"updated":"2024-06-01T00:00:00Z"}`))
	f.Add([]byte(`{"status":"completed","next_line":-1,"generation":-9223372036854775808}`))
	f.Add([]byte(`{"updated":"not a time"}`))
	f.Add([]byte(`{"rejected_by_code":{"":-1}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Add([]byte("{\"file\":\"\xff\"}"))
	// Invalid UTF-8 grows six times in JSON (CI's fuzz lane found 2,778
	// bytes giving 8,283 under the bound of twice before).
	f.Add([]byte("{\"status\":\"" + strings.Repeat("\xe8", 400) + "\"}"))
	f.Fuzz(func(t *testing.T, value []byte) {
		if len(value) > 1<<14 {
			return
		}
		var cp Checkpoint
		if json.Unmarshal(value, &cp) != nil {
			return // skipped, as loadCheckpoint does
		}
		b, err := json.Marshal(cp)
		if err != nil {
			t.Fatalf("a decoded checkpoint does not encode: %v", err)
		}
		var back Checkpoint
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("a re-encoded checkpoint does not decode: %v (%s)", err, b)
		}
		// Times compare by instant; an empty map and none encode alike.
		if len(cp.RejectedByCode) == 0 {
			cp.RejectedByCode = nil
		}
		if !back.Updated.Equal(cp.Updated) {
			t.Fatalf("updated %v, want %v", back.Updated, cp.Updated)
		}
		back.Updated = cp.Updated
		if !reflect.DeepEqual(back, cp) {
			t.Fatalf("round trip:\n%+v\n%+v", back, cp)
		}
		// encoding/json writes an invalid UTF-8 byte or a control byte as a
		// six-byte escape (\ufffd, \u001f): six times is the bound.
		if len(b) > 6*len(value)+512 {
			t.Fatalf("%d bytes decoded to a checkpoint of %d", len(value), len(b))
		}
	})
}

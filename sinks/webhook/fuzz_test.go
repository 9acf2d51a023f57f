package webhook

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzVerify: the X-Usagestream-Signature header as a receiver checks it
// (Verify; the sink itself only signs).
//
// Properties: no panic; an error is non-empty and says what is wrong (the
// header's form, its time, or the signature); a header that verifies has a
// time within the tolerance and is the one Sign gives for its time and the
// body; a header that Sign gave verifies, and fails for any other body or
// secret.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	good := Sign("s3cret", now, []byte(`{"events":[]}`))
	f.Add("s3cret", good, []byte(`{"events":[]}`), int64(0))
	f.Add("s3cret", good, []byte(`{"events":[]}`), int64(301))
	f.Add("s3cret", good+",v1=00", []byte(`{"events":[]}`), int64(0))
	f.Add("s3cret", "v1="+strings.Repeat("0", 64)+",t=1700000000", []byte("x"), int64(0))
	f.Add("", "t=,v1=", []byte{}, int64(0))
	f.Add("k", "t=-9223372036854775808,v1=ab", []byte{}, int64(0))
	f.Add("k", "t=9223372036854775807,v1=ab", []byte{}, int64(0))
	f.Add("k", "t=+1700000000,v1="+strings.Repeat("0", 64), []byte{}, int64(0))
	f.Add("k", strings.Repeat(",", 100), []byte{}, int64(0))
	f.Fuzz(func(t *testing.T, secret, header string, body []byte, skew int64) {
		if len(header) > 1<<12 || len(body) > 1<<14 {
			return
		}
		const tol = 5 * time.Minute
		at := now.Add(time.Duration(skew%int64(time.Hour/time.Second)) * time.Second)
		err := Verify(secret, header, body, at, tol)
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, "signature") {
				t.Fatalf("error does not say what is wrong: %q", msg)
			}
		} else {
			var ts string
			for _, part := range strings.Split(header, ",") {
				if v, ok := strings.CutPrefix(part, "t="); ok {
					ts = v
				}
			}
			sec, perr := strconv.ParseInt(ts, 10, 64)
			if perr != nil {
				t.Fatalf("verified a header without a time: %q", header)
			}
			if d := at.Sub(time.Unix(sec, 0)); d > tol || d < -tol {
				t.Fatalf("verified a signature %s away from now", d)
			}
			if want := Sign(secret, time.Unix(sec, 0), body); !strings.Contains(header, want[strings.Index(want, ",v1=")+1:]) {
				t.Fatalf("verified %q, which is not the signature %q", header, want)
			}
		}
		// What Sign gives verifies, and only for its own body and secret.
		h := Sign(secret, at, body)
		if err := Verify(secret, h, body, at, tol); err != nil {
			t.Fatalf("own signature refused: %v", err)
		}
		if err := Verify(secret, h, append(append([]byte{}, body...), 'x'), at, tol); err == nil {
			t.Fatal("signature verified for another body")
		}
		if err := Verify(secret+"x", h, body, at, tol); err == nil {
			t.Fatal("signature verified with another secret")
		}
	})
}

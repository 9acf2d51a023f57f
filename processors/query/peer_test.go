package query

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/usagestream/usagestream/processors/runtime"
)

// recorder stands in for whatever listens at an advertised address: it
// counts the connections it accepts and keeps the Authorization header of
// every request, so a test can tell whether, and with what, it was called.
type recorder struct {
	*httptest.Server
	conns atomic.Int32
	mu    sync.Mutex
	auth  []string
}

func newRecorder(t *testing.T, addr string) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.auth = append(r.auth, req.Header.Get("Authorization"))
		r.mu.Unlock()
		w.Header().Set(servedByHeader, "recorder")
		writeJSON(w, http.StatusOK, map[string]string{"forged": "yes"})
	}))
	r.Listener.Close()
	r.Listener = ln
	r.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.conns.Add(1)
		}
	}
	r.Start()
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) headers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.auth)
}

// beside serves an API over the instances of another API (without
// advertising anything, so the topic keeps what the test wrote there): a
// fresh directory, so it reads the advertised addresses anew.
func beside(t *testing.T, insts []*runtime.Instance, cfg Config) *httptest.Server {
	t.Helper()
	s := New(cfg)
	for _, in := range insts {
		s.inst[in.Name()] = append(s.inst[in.Name()], in)
	}
	ts := httptest.NewServer(s.Handler())
	s.Listening(strings.TrimPrefix(ts.URL, "http://"))
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return ts
}

// nonLoopbackIP is an address of this host outside 127.0.0.0/8 and ::1, or
// "" when it has none.
func nonLoopbackIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}

// TestPeerForwarding (issue 13): with two instances splitting the
// partitions, a key held by the other one is fetched from it with this
// instance's peer token, never the caller's; an address advertised outside
// the allowlist is never contacted; and the owner answers a request passed
// on with the peer token, and only such a request.
func TestPeerForwarding(t *testing.T) {
	const callerTok, peerTok = "caller-token", "peer-token"
	f := newFixture(t)
	peer := func(c *Config) { c.PeerToken = peerTok }
	_, _, instA := f.start(t, t.TempDir(), callerTok, peer)
	_, tsB, instB := f.start(t, t.TempDir(), callerTok, peer)
	waitCaughtUp(t, f)
	waitSplit(t, f, instA[0], instB[0])
	n := partitions(t, f)
	memberB, err := instB[0].MemberID()
	if err != nil {
		t.Fatal(err)
	}
	var onB string // a service point B holds
	for id := range stage1(t, f.files) {
		if slices.Contains(instB[0].Owned(), runtime.KeyPartition([]byte(id), n)) {
			onB = id
			break
		}
	}
	if onB == "" {
		t.Fatal("B holds no service point")
	}
	path := "/v1/service-points/" + url.PathEscape(onB)
	advertise := func(t *testing.T, u string) {
		t.Helper()
		d := newDirectory(f.env.Kafka)
		defer d.Close()
		if err := d.advertise(f.ctx, memberB, u); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("peer token is answered by the owner", func(t *testing.T) {
		code, hdr, body := get(t, tsB.URL, path, peerTok, forwardedHeader, "http://a")
		if code != http.StatusOK || hdr.Get(servedByHeader) != memberB {
			t.Fatalf("B, passed on with the peer token: %d (served by %q) %s; want 200 from %s", code, hdr.Get(servedByHeader), body, memberB)
		}
		if v := decode[ServicePoint](t, body); v.ServicePointID != onB {
			t.Errorf("B answered %+v", v)
		}
		// The peer token is no API token: without the forwarded mark it is
		// refused, and a request passed on is not passed on again.
		if code, _, body := get(t, tsB.URL, path, peerTok); code != http.StatusUnauthorized {
			t.Errorf("B, peer token without the forwarded mark: %d %s; want 401", code, body)
		}
		// Through A: the caller's token, B's answer.
		a := beside(t, instA, Config{Kafka: f.env.Kafka, Token: callerTok, PeerToken: peerTok})
		if code, hdr, body := get(t, a.URL, path, callerTok); code != http.StatusOK || hdr.Get(servedByHeader) != memberB {
			t.Errorf("A for a key on B: %d (served by %q) %s", code, hdr.Get(servedByHeader), body)
		}
		// A's peer token is not B's: a clear 502, not B's 401 passed back.
		wrong := beside(t, instA, Config{Kafka: f.env.Kafka, Token: callerTok, PeerToken: "not-B's"})
		if code, _, body := get(t, wrong.URL, path, callerTok); code != http.StatusBadGateway || !strings.Contains(string(body), "--peer-token") {
			t.Errorf("A with another peer token than B: %d %s; want 502 naming --peer-token", code, body)
		}
	})

	t.Run("caller token is never forwarded", func(t *testing.T) {
		rec := newRecorder(t, "127.0.0.1:0")
		advertise(t, rec.URL)
		a := beside(t, instA, Config{Kafka: f.env.Kafka, Token: callerTok, PeerToken: peerTok})
		code, _, body := get(t, a.URL, path, callerTok)
		got := rec.headers()
		if len(got) != 1 {
			t.Fatalf("the advertised address got %d requests (%d, %s), want 1", len(got), code, body)
		}
		if strings.Contains(got[0], callerTok) || got[0] != "Bearer "+peerTok {
			t.Errorf("the request passed on carried Authorization %q, want the peer token and never the caller's", got[0])
		}
		// An API token and no peer token: nothing is passed on (the API
		// token also admits POST /v1/intervals); 421 names the owner.
		rec2 := newRecorder(t, "127.0.0.1:0")
		advertise(t, rec2.URL)
		none := beside(t, instA, Config{Kafka: f.env.Kafka, Token: callerTok})
		code, _, body = get(t, none.URL, path, callerTok)
		if code != http.StatusMisdirectedRequest || !strings.Contains(string(body), "--peer-token") || rec2.conns.Load() != 0 {
			t.Errorf("no peer token: %d %s, %d connections to the owner; want 421 naming --peer-token and none", code, body, rec2.conns.Load())
		}
	})

	t.Run("address outside --peer-allow is never contacted", func(t *testing.T) {
		var logs bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&logs, nil))
		rec := newRecorder(t, "127.0.0.1:0")
		advertise(t, rec.URL)
		only, err := ParseAllowlist([]string{"192.0.2.0/24", "[::1]:8089"})
		if err != nil {
			t.Fatal(err)
		}
		a := beside(t, instA, Config{Kafka: f.env.Kafka, Token: callerTok, PeerToken: peerTok, PeerAllow: only, Logger: log})
		code, _, body := get(t, a.URL, path, callerTok)
		if rec.conns.Load() != 0 {
			t.Errorf("%s, outside the allowlist, got %d connections", rec.URL, rec.conns.Load())
		}
		e := decode[Error](t, body)
		if code != http.StatusBadGateway || !strings.Contains(e.Error, "outside --peer-allow") || !strings.Contains(e.Error, memberB) {
			t.Errorf("answer %d %+v; want 502 naming the instance and --peer-allow", code, e)
		}
		if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), "peer-allow") {
			t.Errorf("no WARN about --peer-allow in the log:\n%s", logs.String())
		}
		if strings.Contains(logs.String(), onB) || strings.Contains(logs.String(), callerTok) || strings.Contains(logs.String(), peerTok) {
			t.Errorf("the log names the key or a token:\n%s", logs.String())
		}

		// The default allowlist is loopback: another address of this very
		// host is refused too.
		ip := nonLoopbackIP()
		if ip == "" {
			t.Log("this host has no address outside loopback: the default allowlist is checked with the explicit one only")
			return
		}
		rec2 := newRecorder(t, net.JoinHostPort(ip, "0"))
		advertise(t, rec2.URL)
		def := beside(t, instA, Config{Kafka: f.env.Kafka, Token: callerTok, PeerToken: peerTok})
		code, _, body = get(t, def.URL, path, callerTok)
		if rec2.conns.Load() != 0 || code != http.StatusBadGateway {
			t.Errorf("%s with the default allowlist: %d %s, %d connections; want 502 and none", rec2.URL, code, body, rec2.conns.Load())
		}
	})
}

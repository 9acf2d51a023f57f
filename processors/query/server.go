// Package query answers operators' questions from the processors' state
// over HTTP: a service point's timeline, accounts and open anomalies, and a
// customer's eligibility at a premise with every reason, its rule, dates and
// the file line that caused it (docs/openapi.yaml).
//
// Each instance answers for the partitions it owns. A key whose partition
// another instance owns is fetched from that instance (found through the
// consumer group's description and the addresses instances advertise on a
// small compacted topic), or, when that fails, answered with 421 naming it.
// Whoever can write that topic picks those addresses, so a request is passed
// on only to an address inside an allowlist, and with this instance's own
// peer token, never the caller's (peer.go).
package query

import (
	"cmp"
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/processors/pipeline"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/producers/interval/readrules"
)

// Config configures the API of one process.
type Config struct {
	Kafka kafkaconf.Config
	// Token, when set, is the bearer token every request must carry.
	Token string
	// PeerToken is this instance's own credential towards the others: sent
	// when it passes a request on to the instance that owns the key, and
	// accepted, besides Token, on requests passed on to it (and only on
	// those, which are never passed on again). The caller's token is never
	// sent on. Empty with a Token set: nothing is passed on (421), as the
	// only credential left, Token, also admits POST /v1/intervals.
	PeerToken string
	// PeerAllow is where requests may be passed on to (nil: loopback only,
	// DefaultPeerAllow). An owner advertising another address is answered
	// 502 without being contacted.
	PeerAllow *Allowlist
	// PeerRootCAs verifies https peers (nil: the system's roots).
	PeerRootCAs *x509.CertPool
	// Advertise is the base URL other instances reach this one at; empty:
	// derived from the listening address (see Listening).
	Advertise string
	Logger    *slog.Logger
	// Client proxies requests to other instances (default: 10s timeout, and
	// connections only to PeerAllow). A Client given here dials as it
	// likes; PeerAllow is still checked before each request.
	Client *http.Client
	// Metrics registers the API's metrics (nil: not exported).
	Metrics prometheus.Registerer
	// Gatherer is where GET /v1/stages reads the stages' and sinks'
	// metrics (nil: it lists none).
	Gatherer prometheus.Gatherer
}

// Server is the query API of one process. Instances are attached as the
// processors start; until then lookups answer 503.
type Server struct {
	cfg  Config
	log  *slog.Logger
	dir  *directory
	mu   sync.Mutex
	inst map[string][]*runtime.Instance // by stage name: one per instance of the stage this process runs
	self string                         // advertised URL
	// warned is when each refusal to pass on was last logged, so that a bad
	// advertisement gives a WARN a minute, not one per request.
	warned map[string]time.Time

	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec

	actions actions // the writer of POST /v1/overrides
	dec     decoder // of the event topics (feeds.go)
}

// forwardedHeader marks a request one instance passed to another, so that a
// stale view of the group cannot make two instances pass it back and forth.
const forwardedHeader = "X-Usagestream-Forwarded-By"

// servedByHeader names the group member that answered.
const servedByHeader = "X-Usagestream-Served-By"

// New returns an API with no instances attached yet.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PeerAllow == nil {
		cfg.PeerAllow = defaultAllowlist()
	}
	if cfg.Client == nil {
		cfg.Client = peerClient(cfg.PeerAllow, cfg.PeerRootCAs)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "queryapi"), inst: map[string][]*runtime.Instance{}, warned: map[string]time.Time{},
		dir: newDirectory(cfg.Kafka), self: strings.TrimRight(cfg.Advertise, "/"),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usagestream_query_requests_total", Help: "Query API requests answered, by endpoint and HTTP status (401s included).",
		}, []string{"endpoint", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "usagestream_query_request_seconds", Help: "Time to answer a query API request, another instance's answer included.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}, []string{"endpoint"}),
	}
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(s.requests, s.seconds)
	}
	if cfg.Token != "" && cfg.PeerToken == cfg.Token {
		s.log.Warn("the peer token is the API token: whoever gets it from a peer can also POST /v1/intervals; set a distinct USAGESTREAM_PEER_TOKEN")
	}
	return s
}

// statusWriter remembers the status code for the metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// instrument counts and times the requests of one endpoint.
func (s *Server) instrument(endpoint string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		s.requests.WithLabelValues(endpoint, strconv.Itoa(sw.code)).Inc()
		s.seconds.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	})
}

// Listening tells the API the address its HTTP server listens on, from which
// it derives the advertised URL unless one was configured.
func (s *Server) Listening(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.self == "" {
		s.self = advertiseURL(addr)
	}
	if host, _, err := net.SplitHostPort(addr); err == nil && s.cfg.Token == "" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			s.log.Warn("the query API answers beyond this host without a token: set USAGESTREAM_API_TOKEN", "addr", addr)
		}
	}
}

// URL is the address this API advertises to the other instances.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.self
}

// Attach makes inst's state answerable and advertises this API's address as
// the place to ask for the partitions inst owns. A failed advertisement is
// logged, not fatal: local keys are still served.
func (s *Server) Attach(ctx context.Context, inst *runtime.Instance) {
	member, err := inst.MemberID()
	s.mu.Lock()
	// A restarted instance (runtime.Supervise) has the member id of the one
	// it replaces.
	insts := s.inst[inst.Name()]
	i := slices.IndexFunc(insts, func(o *runtime.Instance) bool { id, _ := o.MemberID(); return err == nil && id == member })
	if i >= 0 {
		insts[i] = inst
	} else {
		s.inst[inst.Name()] = append(insts, inst)
	}
	self := s.self
	s.mu.Unlock()
	if err == nil && self != "" {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = s.dir.advertise(actx, member, self)
		cancel()
	}
	if err != nil {
		s.log.Warn("could not advertise the query API address; other instances will answer 421 for keys held here", "stage", inst.Name(), "err", err)
	}
}

// TokenRequired says whether requests must carry a bearer token.
func (s *Server) TokenRequired() bool { return s.cfg.Token != "" }

// instances are the instances of stage this process runs: one, or more
// with process --instances.
func (s *Server) instances(stage string) []*runtime.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.inst[stage])
}

// Handler serves the API under /v1/, behind the bearer token if one is set.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, e := range []struct {
		pattern, name string
		h             http.HandlerFunc
	}{
		{"GET /v1/service-points/{id}", "service_point", s.servicePoint},
		{"GET /v1/customers/{id}", "customer", s.customer},
		{"GET /v1/customers/{id}/premises/{premise}", "premise", s.premise},
		{"GET /v1/service-points/{id}/corrections", "corrections", s.corrections},
		{"GET /v1/service-points/{id}/intervals", "intervals", s.intervals},
		{"GET /v1/premises/{id}", "premise_site", s.premiseSite},
		{"GET /v1/files", "files", s.files},
		{"GET /v1/stages", "stages", s.stages},
		{"POST /v1/overrides", "override_post", s.postOverride},
		{"GET /v1/overrides", "overrides", s.listOverrides},
		{"/v1/", "other", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "no such endpoint: see docs/openapi.yaml", nil)
		}},
	} {
		mux.Handle(e.pattern, s.instrument(e.name, s.auth(e.h)))
	}
	return mux
}

func (s *Server) auth(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	want := []byte("Bearer " + s.cfg.Token)
	var peer []byte
	if s.cfg.PeerToken != "" {
		peer = []byte("Bearer " + s.cfg.PeerToken)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		ok := subtle.ConstantTimeCompare(got, want) == 1
		// The peer token only on a request passed on: remote never passes
		// such a request on again, so the peer token reads this instance's
		// partitions and nothing more (no second hop, no POST /v1/intervals).
		if !ok && peer != nil && r.Header.Get(forwardedHeader) != "" {
			ok = subtle.ConstantTimeCompare(got, peer) == 1
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="usagestream"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token: send 'Authorization: Bearer <USAGESTREAM_API_TOKEN>'", nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkID refuses ids no billing file can carry: empty, too long, not UTF-8,
// with control characters (tabs and newlines split file columns) or with
// surrounding spaces.
func checkID(field, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%s is empty", field)
	case len(id) > readrules.MaxIDBytes: // the longest id a producer accepts
		return fmt.Errorf("%s is longer than %d bytes", field, readrules.MaxIDBytes)
	case !utf8.ValidString(id):
		return fmt.Errorf("%s is not valid UTF-8", field)
	case strings.TrimSpace(id) != id:
		return fmt.Errorf("%s has leading or trailing spaces", field)
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return fmt.Errorf("%s contains a control character", field)
	}
	return nil
}

func (s *Server) servicePoint(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := checkID("service_point_id", id); err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	st, p, ok := s.lookup(w, r, pipeline.StageServicePoint, id)
	if !ok {
		return
	}
	sp, _ := st.(*rules.ServicePoint)
	if sp == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("service point %q is unknown: no billing row for it has been processed", id), nil)
		return
	}
	writeJSON(w, http.StatusOK, servicePointView(sp, p))
}

func (s *Server) customerState(w http.ResponseWriter, r *http.Request) (*rules.Customer, int32, bool) {
	id := r.PathValue("id")
	if err := checkID("customer_id", id); err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return nil, 0, false
	}
	st, p, ok := s.lookup(w, r, pipeline.StageCustomer, id)
	if !ok {
		return nil, 0, false
	}
	c, _ := st.(*rules.Customer)
	if c == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("customer %q is unknown: no account of it has been processed", id), nil)
		return nil, 0, false
	}
	return c, p, true
}

func (s *Server) customer(w http.ResponseWriter, r *http.Request) {
	if c, p, ok := s.customerState(w, r); ok {
		writeJSON(w, http.StatusOK, customerView(c, p))
	}
}

func (s *Server) premise(w http.ResponseWriter, r *http.Request) {
	premise := r.PathValue("premise")
	if err := checkID("premise_id", premise); err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	c, p, ok := s.customerState(w, r)
	if !ok {
		return
	}
	pr := c.Premises[premise]
	if pr == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("customer %q has no account at premise %q (GET /v1/customers/%s lists its premises)", c.ID, premise, c.ID), nil)
		return
	}
	writeJSON(w, http.StatusOK, premiseView(c, pr, premise, p))
}

// lookup finds key's state in stage. When the answer was written here (an
// error, or a proxied answer from the owner), ok is false. A nil state with
// ok is an unknown key.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, stage, key string) (state any, p int32, ok bool) {
	insts := s.instances(stage)
	if len(insts) == 0 {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "the processors are starting (or not run by this process): retry shortly", nil)
		return nil, 0, false
	}
	ctx := r.Context()
	inst := insts[0]
	n, err := s.dir.partitions(ctx, inst.Inputs()[0])
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
		return nil, 0, false
	}
	p = runtime.KeyPartition([]byte(key), n)
	// The instance of this process that owns p, if one does.
	var (
		st    any
		found bool
	)
	for _, inst = range insts {
		if st, found, err = inst.Lookup(p, []byte(key)); !errors.Is(err, runtime.ErrNotOwned) {
			break
		}
	}
	if member, merr := inst.MemberID(); merr == nil && !errors.Is(err, runtime.ErrNotOwned) {
		w.Header().Set(servedByHeader, member)
	}
	switch {
	case errors.Is(err, runtime.ErrNotOwned):
		s.remote(w, r, inst, p)
		return nil, p, false
	case err != nil:
		s.log.Error("reading the local state", "stage", stage, "partition", p, "err", err)
		writeError(w, http.StatusInternalServerError, "reading the local state failed; see the server log", nil)
		return nil, p, false
	case !found:
		return nil, p, true
	}
	return st, p, true
}

// remote answers from the instance that owns partition p: the request is
// passed on to it, or, when it cannot be (no address known, the owner
// unreachable, the request was already passed on once, or no peer token),
// 421 names it. An owner advertising an address outside the allowlist is
// not contacted and not named: 502.
func (s *Server) remote(w http.ResponseWriter, r *http.Request, inst *runtime.Instance, p int32) {
	w.Header().Del(servedByHeader)
	ctx := r.Context()
	owner, err := s.dir.owner(ctx, inst.Group(), inst.Inputs()[0], p)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("partition %d of %s has no owner right now (%v): retry shortly", p, inst.Name(), err), nil)
		return
	}
	self := s.URL()
	if slices.ContainsFunc(s.instances(inst.Name()), func(o *runtime.Instance) bool { me, err := o.MemberID(); return err == nil && owner.Member == me }) {
		// The group gave the partition here and its restore is not done.
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("partition %d of %s is being restored here: retry shortly", p, inst.Name()), nil)
		return
	}
	misdirected := func(why string) {
		writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("partition %d of %s lives on instance %s%s", p, inst.Name(), owner.Member, why), &owner)
	}
	if owner.URL != "" && owner.URL != self {
		// Checked before anything else: a 421 would hand the address to the
		// caller, who might send its token there.
		if err := s.cfg.PeerAllow.checkPeerURL(ctx, owner.URL); err != nil {
			s.refuse(w, inst, owner, err)
			return
		}
	}
	if owner.URL == "" || owner.URL == self || r.Header.Get(forwardedHeader) != "" {
		misdirected("")
		return
	}
	if s.cfg.Token != "" && s.cfg.PeerToken == "" {
		s.warnOnce("no-peer-token", "a key is held by another instance and no peer token is set: answering 421; set USAGESTREAM_PEER_TOKEN (--peer-token), the same on every instance")
		misdirected(": this instance has no --peer-token (USAGESTREAM_PEER_TOKEN) to pass the request on with; ask that instance, or set the same --peer-token on every instance")
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, owner.URL+r.URL.RequestURI(), nil)
	if err != nil {
		misdirected("")
		return
	}
	// This instance's own credential, never the caller's: the caller's
	// token is not this instance's to hand out.
	if s.cfg.PeerToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.PeerToken)
	}
	req.Header.Set(forwardedHeader, self)
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		if errors.Is(err, errOutside) {
			s.refuse(w, inst, owner, err)
			return
		}
		s.log.Warn("the owner of a partition did not answer", "stage", inst.Name(), "partition", p, "owner", owner.Member, "err", err)
		misdirected(", which did not answer")
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		s.warnOnce("peer-401:"+owner.Member, "another instance refused this instance's peer token: set the same USAGESTREAM_PEER_TOKEN on every instance", "owner", owner.Member)
		writeError(w, http.StatusBadGateway, fmt.Sprintf("partition %d of %s lives on instance %s, which refused this instance's peer token: set the same --peer-token (USAGESTREAM_PEER_TOKEN) on every instance", p, inst.Name(), owner.Member), &Owner{Member: owner.Member, Partition: p})
		return
	}
	for _, h := range []string{"Content-Type", servedByHeader, "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// refuse answers 502 for an owner whose advertised address this instance
// will not contact. The address is in the message for the operator but not
// in the owner field, which clients may follow.
func (s *Server) refuse(w http.ResponseWriter, inst *runtime.Instance, owner Owner, why error) {
	s.warnOnce("allow:"+owner.Member+" "+owner.URL, "an instance advertises a query API address outside --peer-allow: not passing requests on to it; if the address is right, add it to USAGESTREAM_PEER_ALLOW, else find who writes the endpoints topic",
		"stage", inst.Name(), "owner", owner.Member, "address", owner.URL, "err", why)
	writeError(w, http.StatusBadGateway, fmt.Sprintf("partition %d of %s lives on instance %s, which advertises address %q outside --peer-allow (%v): not contacted; if that address is right, add it to --peer-allow (USAGESTREAM_PEER_ALLOW)",
		owner.Partition, inst.Name(), owner.Member, owner.URL, why), &Owner{Member: owner.Member, Partition: owner.Partition})
}

// warnOnce logs msg at most once a minute per key.
func (s *Server) warnOnce(key, msg string, args ...any) {
	s.mu.Lock()
	last, seen := s.warned[key]
	if seen && time.Since(last) < time.Minute {
		s.mu.Unlock()
		return
	}
	if len(s.warned) > 1000 {
		// The keys hold advertised addresses, which a topic writer picks:
		// bound the memory they take.
		clear(s.warned)
	}
	s.warned[key] = time.Now()
	s.mu.Unlock()
	s.log.Warn(msg, args...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string, owner *Owner) {
	writeJSON(w, status, Error{Error: msg, Owner: owner})
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, cmp.Compare)
	return out
}

// Close releases the API's Kafka clients.
func (s *Server) Close() {
	s.dir.Close()
	s.actions.close()
}

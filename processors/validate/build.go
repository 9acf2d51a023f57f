package validate

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/validate/report"
	"github.com/usagestream/usagestream/producers/filereader"
	"github.com/usagestream/usagestream/records"
)

var statsZero filereader.Stats

// endFile records one file's counts; err is why it stopped early, if it did.
func (r *run) endFile(f *report.File, st filereader.Stats, err error, notTaken bool) {
	f.Lines, f.Accepted, f.Rejected = st.Lines, st.Accepted, st.Rejected
	f.RejectedByCode = r.codeCounts(st.RejectedByCode)
	if err != nil {
		f.Error, f.NotTaken = err.Error(), notTaken
		if fe, ok := errors.AsType[*filereader.FileError](err); ok {
			f.ErrorLine, f.ErrorField = fe.Line, fe.Field
		}
	}
	r.rep.Files = append(r.rep.Files, *f)
	r.rep.Lines += st.Lines
	r.rep.Accepted += st.Accepted
	r.rep.Rejected += st.Rejected
}

// codeCounts lists counts by reject code, most first, each with the rule the
// reader gave it.
func (r *run) codeCounts(m map[string]int64) []report.CodeCount {
	out := []report.CodeCount{}
	for c, n := range m {
		out = append(out, report.CodeCount{Rule: r.codeRule[c], Code: c, Count: n})
	}
	slices.SortFunc(out, func(a, b report.CodeCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Code, b.Code))
	})
	return out
}

// worstOffenders is how many service points the report ranks.
const worstOffenders = 25

// finish builds the report's sections from what the run gathered and judges
// it against the policy.
func (r *run) finish() {
	rep := r.rep
	e := &rep.Entities
	e.Customers, e.Premises = int64(r.customers.len()), int64(r.premises.len())
	e.Accounts, e.ServicePoints = int64(r.accounts.len()), int64(r.points.len())
	if r.first != 0 {
		rep.FirstDay, rep.LastDay = day(r.first), day(r.last)
	}
	byCode := map[string]int64{}
	for _, f := range rep.Files {
		for _, c := range f.RejectedByCode {
			byCode[c.Code] += c.Count
		}
	}
	rep.RejectedByCode = r.codeCounts(byCode)

	// Rows by month, every month between the first and the last shown, so a
	// month with no rows is a visible hole.
	rep.RowsByMonth = []report.MonthRows{}
	months := map[monthFuel]int64{}
	r.months.each(func(k monthFuel, n int64) { months[k] = n })
	if len(months) > 0 {
		lo, hi := int32(1<<30), int32(-1)
		for k := range months {
			lo, hi = min(lo, k.month), max(hi, k.month)
		}
		for m := lo; m <= hi; m++ {
			mr := report.MonthRows{Month: fmt.Sprintf("%04d-%02d", m/12, m%12+1), ByFuel: map[string]int64{}}
			for k, n := range months {
				if k.month == m {
					mr.ByFuel[k.fuel] = n
				}
			}
			rep.RowsByMonth = append(rep.RowsByMonth, mr)
		}
	}

	need := r.opts.Policy.Validation.HistoryMonths
	h := report.History{NeedMonths: need}
	top := max(2*need, 24)
	counts := make([]int64, top+1)
	r.history.each(func(_ uint64, s spSummary) {
		if !s.usage || s.inactive {
			return
		}
		h.ServicePoints++
		if int(s.months) >= need {
			h.WithNeed++
		}
		counts[min(int(s.months), top)]++
	})
	for m, n := range counts {
		h.Histogram = append(h.Histogram, report.MonthsCount{Months: m, Count: n, OrMore: m == top})
	}
	if h.ServicePoints > 0 {
		h.Share = float64(h.WithNeed) / float64(h.ServicePoints)
	}
	// The list keeps the Examples most short (a 12-month file leaves
	// every service point short): a bounded sorted insert, not a sort of
	// them all.
	h.Short = []report.ShortHistory{}
	h.ShortCount = int64(r.short.len())
	worse := func(a, b report.ShortHistory) int {
		return cmp.Or(cmp.Compare(b.Missing, a.Missing), cmp.Compare(a.ServicePointID, b.ServicePointID))
	}
	limit := r.opts.Examples
	r.short.each(func(id string, months int) {
		s := report.ShortHistory{ServicePointID: id, Months: months, Missing: need - months}
		switch {
		case limit == 0:
			h.Short = append(h.Short, s) // all of them: sorted below
		case len(h.Short) == limit && worse(s, h.Short[limit-1]) >= 0:
		default:
			i, _ := slices.BinarySearchFunc(h.Short, s, worse)
			h.Short = slices.Insert(h.Short, i, s)
			h.Short = h.Short[:min(len(h.Short), limit)]
		}
	})
	if limit == 0 {
		slices.SortFunc(h.Short, worse)
	}
	rep.History = h
	if r.iv != nil {
		rep.IntervalHistory = r.intervalHistory()
	}

	if rep.Resolved == nil {
		rep.Resolved = []report.Resolved{}
	}
	rep.Rules = []report.RuleFindings{}
	for _, g := range r.groups {
		rep.Rules = append(rep.Rules, *g)
	}
	sevRank := map[string]int{report.SeverityError: 0, report.SeverityWarning: 1, report.SeverityInfo: 2}
	slices.SortFunc(rep.Rules, func(a, b report.RuleFindings) int {
		return cmp.Or(cmp.Compare(sevRank[a.Severity], sevRank[b.Severity]), cmp.Compare(b.Count, a.Count),
			cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Code, b.Code))
	})

	rep.Eligibility = []report.Program{}
	for pi, p := range r.programs {
		prog := report.Program{Program: p, Reasons: []report.ReasonCount{}, Examples: []report.Subject{}}
		perBit := make([]int64, otherBit+1)
		for _, at := range r.subjects {
			m := r.masks[int(at)+pi]
			if m&evalBit == 0 {
				continue
			}
			prog.Subjects++
			if m&^evalBit == 0 {
				prog.Eligible++
				continue
			}
			prog.NotEligible++
			for b := range perBit {
				if m&(1<<b) != 0 {
					perBit[b]++
				}
			}
		}
		for b, n := range perBit {
			if n == 0 {
				continue
			}
			rc := report.ReasonCount{Code: "OTHER", Rule: "", Subjects: n}
			if b < len(r.reasonList) {
				rc.Code, rc.Rule = r.reasonList[b][0], r.reasonList[b][1]
			}
			prog.Reasons = append(prog.Reasons, rc)
		}
		slices.SortFunc(prog.Reasons, func(a, b report.ReasonCount) int {
			return cmp.Or(cmp.Compare(b.Subjects, a.Subjects), cmp.Compare(a.Code, b.Code), cmp.Compare(a.Rule, b.Rule))
		})
		for _, k := range slices.SortedFunc(maps.Keys(r.examples[pi]), func(a, b [2]string) int {
			return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
		}) {
			prog.Examples = append(prog.Examples, r.examples[pi][k])
		}
		rep.Eligibility = append(rep.Eligibility, prog)
	}

	rep.NoUsage = []string{}
	r.noUsage.each(func(id string, _ int) { rep.NoUsage = append(rep.NoUsage, id) })
	slices.Sort(rep.NoUsage)
	rep.NoUsageCount = int64(len(rep.NoUsage))
	if n := r.opts.Examples; n > 0 && len(rep.NoUsage) > n {
		rep.NoUsage = rep.NoUsage[:n]
	}
	rep.Totals.Rows = int64(len(r.rowsWith))
	rep.KnockOns = []report.KnockOn{}
	for _, k := range r.knockOns {
		rep.KnockOns = append(rep.KnockOns, *k)
	}
	slices.SortFunc(rep.KnockOns, func(a, b report.KnockOn) int {
		return cmp.Or(cmp.Compare(b.Findings, a.Findings), cmp.Compare(a.Code, b.Code))
	})
	rep.Duplicates, rep.ActiveDateChanges = []report.Finding{}, []report.Finding{}
	for _, g := range rep.Rules {
		switch {
		case g.Kind == report.KindCorrection && (g.Code == "EXACT" || g.Rule == "I2"),
			g.Kind == report.KindAnomaly && g.Code == rules.AnomalyDuplicateRow:
			rep.Duplicates = append(rep.Duplicates, g.Findings...)
		case g.Kind == report.KindAnomaly && g.Rule == "A3":
			for _, f := range g.Findings {
				if !f.Cleared {
					rep.ActiveDateChanges = append(rep.ActiveDateChanges, f)
				}
			}
		}
	}

	rep.WorstOffenders = []report.Offender{}
	for _, o := range r.offenders {
		rep.WorstOffenders = append(rep.WorstOffenders, *o)
	}
	slices.SortFunc(rep.WorstOffenders, func(a, b report.Offender) int {
		return cmp.Or(cmp.Compare(b.Rows, a.Rows), cmp.Compare(b.Findings, a.Findings), cmp.Compare(a.ServicePointID, b.ServicePointID))
	})
	rep.WorstOffenders = rep.WorstOffenders[:min(len(rep.WorstOffenders), worstOffenders)]

	r.judge()
}

// judge applies the policy's validation thresholds.
func (r *run) judge() {
	rep, v := r.rep, r.opts.Policy.Validation
	var failed []string
	for _, f := range rep.Files {
		if f.Error != "" {
			failed = append(failed, f.Name)
		}
	}
	files := report.Check{ID: "files", Name: "files read to the end", Pass: len(failed) == 0, Value: float64(len(failed)),
		Detail: fmt.Sprintf("%d of %s read to the end", len(rep.Files)-len(failed), plural(len(rep.Files), "file"))}
	if len(failed) > 0 {
		files.Detail += "; stopped early: " + strings.Join(failed, ", ")
	}
	rep.Checks = append(rep.Checks, files)

	share := 0.0
	if rep.Lines > 0 {
		share = float64(rep.Rejected) / float64(rep.Lines)
	}
	rep.Checks = append(rep.Checks, report.Check{ID: "rejected-rows", Name: "rejected rows", Pass: share <= v.MaxRejectedRowShare,
		Value: share, Threshold: v.MaxRejectedRowShare,
		Detail: fmt.Sprintf("%d of %d rows rejected (%.2f%%; at most %.2f%% allowed: validation.max_rejected_row_share)",
			rep.Rejected, rep.Lines, 100*share, 100*v.MaxRejectedRowShare)})

	h := rep.History
	hc := report.Check{ID: "history", Name: "history", Pass: h.ServicePoints == 0 || h.Share >= v.MinHistoryShare,
		Value: h.Share, Threshold: v.MinHistoryShare}
	if h.ServicePoints == 0 {
		hc.Detail = "no active service point with usage: nothing to measure (a customer file alone carries no usage)"
	} else {
		hc.Detail = fmt.Sprintf("%d of %d active service points with usage have %d months of history (%.1f%%; at least %.1f%% needed: validation.min_history_share)",
			h.WithNeed, h.ServicePoints, h.NeedMonths, 100*h.Share, 100*v.MinHistoryShare)
	}
	rep.Checks = append(rep.Checks, hc)
	if ih := rep.IntervalHistory; ih != nil {
		c := report.Check{ID: "interval-history", Name: "interval history", Pass: ih.ServicePoints == 0 || ih.Share >= v.MinHistoryShare,
			Value: ih.Share, Threshold: v.MinHistoryShare}
		c.Detail = fmt.Sprintf("%d of %d service points with interval reads have %d months of interval history (%.1f%%; at least %.1f%% needed: validation.min_history_share; I5)",
			ih.WithNeed, ih.ServicePoints, ih.NeedMonths, 100*ih.Share, 100*v.MinHistoryShare)
		rep.Checks = append(rep.Checks, c)
	}

	switch rep.Phase {
	case PhaseHistorical:
		c := report.Check{ID: "accounts-with-usage", Name: "history of every account", Pass: rep.NoUsageCount == 0, Value: float64(rep.NoUsageCount),
			Detail: fmt.Sprintf("%d service points with an account (active or inactive) have no usage row; a historical file holds the history of every account (phase historical)", rep.NoUsageCount)}
		if rep.NoUsageCount > 0 {
			c.Detail += ": " + strings.Join(rep.NoUsage[:min(len(rep.NoUsage), 5)], ", ")
		}
		rep.Checks = append(rep.Checks, c)
		span := 0
		if rep.FirstDay != "" {
			span = int(math.Round(float64(r.last-r.first+1) / (365.25 / 12))) // months of 30.44 days, as the history check counts
		}
		rep.Checks = append(rep.Checks, report.Check{ID: "span", Name: "months of history in the file", Pass: span >= v.HistoryMonths,
			Value: float64(span), Threshold: float64(v.HistoryMonths),
			Detail: fmt.Sprintf("usage from %s to %s: %d months; a historical file spans at least %d (validation.history_months; phase historical)", orNone(rep.FirstDay), orNone(rep.LastDay), span, v.HistoryMonths)})
	case PhaseIncremental:
		c := report.Check{ID: "continuity", Name: "continues the loaded history", Pass: rep.ContinuityCount == 0, Value: float64(rep.ContinuityCount),
			Detail: fmt.Sprintf("%d gaps after the loaded history or changed active dates on service points already loaded (phase incremental, --state-from)", rep.ContinuityCount)}
		rep.Checks = append(rep.Checks, c)
	}

	// The caps judge what is still open at the end of the run: a gap a
	// historical file raises and fills again is listed apart, not counted.
	perRule, resolved := map[string]int64{}, map[string]int64{}
	for _, g := range rep.Rules {
		perRule[g.Rule] += g.Open
		resolved[g.Rule] += g.Resolved
	}
	for _, rule := range slices.Sorted(maps.Keys(v.MaxFindingsPerRule)) {
		n, limit := perRule[rule], v.MaxFindingsPerRule[rule]
		detail := fmt.Sprintf("%d findings of rule %s open at the end of the run (at most %d allowed: validation.max_findings_per_rule)", n, rule, limit)
		if m := resolved[rule]; m > 0 {
			detail += fmt.Sprintf("; %d more raised and cleared within the run, not counted", m)
		}
		rep.Checks = append(rep.Checks, report.Check{ID: "rule-" + rule, Name: "findings of rule " + rule, Pass: n <= limit,
			Value: float64(n), Threshold: float64(limit), Detail: detail})
	}
	rep.Pass = true
	for _, c := range rep.Checks {
		rep.Pass = rep.Pass && c.Pass
	}
}

// runInfo fills the provenance of a report: the time, the version, and the
// name, size and SHA-256 of the policy file and of every input.
func runInfo(info *report.RunInfo, paths []string, opts Options) error {
	info.Time = opts.Now().UTC().Format(time.RFC3339)
	info.Version = opts.Version
	if info.Version == "" {
		info.Version = "unknown"
	}
	info.Policy = report.Input{Name: "(built-in default)"}
	if opts.PolicyFile != "" {
		in, err := hashFile(opts.PolicyFile)
		if err != nil {
			return err
		}
		info.Policy = in
	}
	info.Inputs = make([]report.Input, 0, len(paths))
	for _, p := range records.Order(paths) {
		in, err := hashFile(p)
		if err != nil {
			return err
		}
		info.Inputs = append(info.Inputs, in)
	}
	return nil
}

func hashFile(path string) (report.Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return report.Input{}, fmt.Errorf("validate: hashing %s: %w; check the path", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return report.Input{}, fmt.Errorf("validate: hashing %s: %w", path, err)
	}
	return report.Input{Name: filepath.Base(path), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// plural writes a count with its noun in the right number.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

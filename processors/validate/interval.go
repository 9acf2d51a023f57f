package validate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/validate/report"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
)

// isInterval says whether a path is an interval file, as ingest decides it:
// a conforming name of kind interval<mm>, or a name off the convention when
// an interval length was given explicitly.
func isInterval(path string, opts interval.Options) bool {
	name, err := records.ParseFileName(filepath.Base(path))
	return (err == nil && name.IntervalMinutes > 0) || (err != nil && opts.Minutes > 0)
}

// intervals is the interval stage of a run: one rules.IntervalPoint per
// service point, fed the billing rows (for the sum check, I6, and the
// account I5 needs) and then the interval reads. The streaming path's
// interval stage calls the same two methods on the same state.
type intervals struct {
	points map[string]*rules.IntervalPoint
}

func (iv *intervals) point(id string) *rules.IntervalPoint {
	ip := iv.points[id]
	if ip == nil {
		ip = &rules.IntervalPoint{ID: id}
		iv.points[id] = ip
	}
	return ip
}

// billing gives an accepted billing row to the interval rules.
func (r *run) intervalBilling(file string, row *records.BillingRow) {
	ip := r.iv.point(row.ServicePointID)
	r.intervalOut(ip.ApplyBilling(r.opts.Policy, row, rules.Source{File: file, Line: row.Line}))
}

// intervalFiles reads the interval files after every billing file: the
// billed periods are then known, and I6 compares each one as its last day
// of intervals completes, as the stage does whichever comes first.
func (r *run) intervalFiles(ctx context.Context, paths []string) error {
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		f := &report.File{Name: filepath.Base(p)}
		rd, err := interval.Open(p, r.opts.Interval)
		if err != nil {
			r.endFile(f, statsZero, err, true)
			continue
		}
		f.Layout, f.Warnings = fmt.Sprintf("interval%d", rd.Minutes()), rd.Warnings()
		r.layout = f.Layout
		// I4's stale-feed timer runs on wall-clock time; offline the
		// file's own timestamp stands in for when a read arrived.
		at := rd.Name().Timestamp.UnixMilli()
		if rd.Name().Timestamp.IsZero() {
			at = time.Now().UnixMilli()
		}
		for {
			rec, err := rd.Next()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				r.endFile(f, rd.Stats(), err, false)
				rd.Close()
				break
			}
			r.rows++
			if rj := rec.Rejected; rj != nil {
				r.intervalRejected(f.Name, rj)
				r.rejected(f.Name, rj)
				continue
			}
			rdg := rec.Read
			r.count(r.points, &r.lastPoint, rdg.ServicePointID)
			ip := r.iv.point(rdg.ServicePointID)
			r.intervalOut(ip.ApplyRead(r.opts.Policy, r.opts.Policy.Intervals, rdg, at, rules.Source{File: f.Name, Line: rdg.Line}))
			if r.opts.Progress != nil && r.rows%batchRows == 0 {
				r.opts.Progress(r.rows)
			}
		}
	}
	return nil
}

// intervalOut turns the interval rules' events into findings: I2
// corrections and the anomalies of I1, I3, I6 and I7.
func (r *run) intervalOut(o rules.IntervalOutput) {
	for _, c := range o.Corrections {
		end := time.UnixMilli(c.EndMs).UTC().Format(time.RFC3339)
		r.add(report.Finding{Kind: report.KindCorrection, Rule: "I2", Code: rules.CorrectionInterval, Severity: report.SeverityWarning,
			File: c.Source.File, Line: c.Source.Line, ServicePointID: c.ServicePointID, Date: day(c.Date),
			Message: fmt.Sprintf("the %d-minute interval ending %s of channel %q sent again: %g (estimate %v) replaced by %g (estimate %v)",
				c.Minutes, end, c.Channel, c.OldValue, c.OldEstimate, c.NewValue, c.NewEstimate)})
	}
	r.stage1(rules.Stage1Output{Anomalies: o.Anomalies})
}

// intervalHistory lists the service points with interval reads against the
// months of interval history I5 needs, those short of it first.
func (r *run) intervalHistory() *report.IntervalHistory {
	need := r.opts.Policy.IntervalHistoryMonths
	h := &report.IntervalHistory{NeedMonths: need, Short: []report.ShortHistory{}}
	for id, ip := range r.iv.points {
		if len(ip.Channels) == 0 {
			continue // billing rows only: no interval reads
		}
		h.ServicePoints++
		if ip.HistoryMonths >= need {
			h.WithNeed++
			continue
		}
		h.Short = append(h.Short, report.ShortHistory{ServicePointID: id, Months: ip.HistoryMonths, Missing: need - ip.HistoryMonths})
	}
	slices.SortFunc(h.Short, func(a, b report.ShortHistory) int {
		return cmp.Or(cmp.Compare(b.Missing, a.Missing), cmp.Compare(a.ServicePointID, b.ServicePointID))
	})
	if h.ServicePoints > 0 {
		h.Share = float64(h.WithNeed) / float64(h.ServicePoints)
	}
	return h
}

// intervalRejected notes the local day of a rejected read whose service
// point and date can be read, for the gap its absence leaves (causeOf). A
// read is the interval ending at its time: 0000 ends the day before.
func (r *run) intervalRejected(file string, rj *records.Rejected) {
	if rj.ServicePointID == "" || len(rj.Reasons) == 0 {
		return
	}
	f := strings.SplitN(rj.Raw, "\t", 5)
	if len(f) < 4 {
		return
	}
	d, err := dates.Parse(f[2])
	if err != nil {
		return
	}
	if f[3] == "0000" {
		d--
	}
	k := spDay{strings.Clone(rj.ServicePointID), d}
	if _, ok := r.ivRejected[k]; !ok {
		r.ivRejected[k] = report.Cause{File: file, Line: rj.Line, Rule: rj.Reasons[0].Rule, Code: rj.Reasons[0].Code}
	}
}

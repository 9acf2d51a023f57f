package validate

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/usagestream/usagestream/processors/validate/report"
	"github.com/usagestream/usagestream/records"
)

// RejectedWriter writes the rejected rows of a run as TSV, one line per
// reason: file, original line number, service point, column, the
// column's value (personal columns redacted, as the reader gives them
// unless told to keep them), rule, code, reason and how to fix it. Give
// its Write as Options.Rejected.
type RejectedWriter struct {
	w    *bufio.Writer
	err  error
	cols map[string][]string // column names by layout
}

// NewRejectedWriter writes the header to w.
func NewRejectedWriter(w io.Writer) *RejectedWriter {
	rw := &RejectedWriter{w: bufio.NewWriterSize(w, 64<<10), cols: map[string][]string{}}
	rw.line("file", "line", "service_point_id", "column", "value", "rule", "code", "reason", "how_to_fix")
	return rw
}

// Write writes the reasons of one rejected row of file, whose layout is
// the report's (full, customer, usage, interval<mm>).
func (rw *RejectedWriter) Write(file, layout string, rj *records.Rejected) {
	var fields []string
	for _, rs := range rj.Reasons {
		value := ""
		if rs.Field != "" {
			if fields == nil {
				fields = strings.Split(rj.Raw, "\t")
			}
			if i := rw.index(layout, rs.Field); i >= 0 && i < len(fields) && len(fields) == len(rw.cols[layout]) {
				value = fields[i]
			}
		}
		rw.line(file, strconv.FormatInt(rj.Line, 10), rj.ServicePointID, rs.Field, value, rs.Rule, rs.Code, rs.Message, report.FixFor(rs.Code, rs.Rule))
	}
}

func (rw *RejectedWriter) index(layout, field string) int {
	cols, ok := rw.cols[layout]
	if !ok {
		if strings.HasPrefix(layout, "interval") {
			cols = records.IntervalColumns()
		} else {
			for _, c := range records.LayoutColumns(records.Layout(layout)) {
				cols = append(cols, c.Name)
			}
		}
		rw.cols[layout] = cols
	}
	for i, c := range cols {
		if c == field {
			return i
		}
	}
	return -1
}

// line writes one TSV line; tabs and line breaks inside a value are
// written as \t, \n and \r so every line has nine fields.
func (rw *RejectedWriter) line(fields ...string) {
	if rw.err != nil {
		return
	}
	for i, f := range fields {
		if i > 0 {
			rw.w.WriteByte('\t')
		}
		if strings.ContainsAny(f, "\t\n\r") {
			f = strings.NewReplacer("\t", "\\t", "\n", "\\n", "\r", "\\r").Replace(f)
		}
		rw.w.WriteString(f)
	}
	if err := rw.w.WriteByte('\n'); err != nil {
		rw.err = fmt.Errorf("writing the rejected rows: %w", err)
	}
}

// Close flushes the rows written; it returns the first write error.
func (rw *RejectedWriter) Close() error {
	if rw.err != nil {
		return rw.err
	}
	if err := rw.w.Flush(); err != nil {
		return fmt.Errorf("writing the rejected rows: %w", err)
	}
	return nil
}

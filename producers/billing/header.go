package billing

import (
	"fmt"
	"strings"

	"github.com/usagestream/usagestream/records"
)

// readHeader reads line 1 and checks it names the layout's columns in canonical
// order (docs/data-contract.md §2.1, §2.4); unknown names may only follow them.
func (r *Reader) readHeader() error {
	b, err := r.f.Header(fmt.Sprintf("the %d columns of the %s layout", len(r.cols), r.layout))
	if err != nil {
		return err
	}

	names := strings.Split(string(b), "\t")
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	if err := r.checkHeader(names); err != nil {
		return err
	}
	r.extra = names[len(r.cols):]
	r.nFields = len(names)
	r.fields = make([]string, r.nFields)
	r.personal = make([]bool, r.nFields)
	for i := range r.personal {
		// Extra columns are unknown, so they may be contact data: redact them.
		r.personal[i] = i >= len(r.cols) || r.cols[i].Personal
	}
	return nil
}

func (r *Reader) checkHeader(names []string) error {
	fix := fmt.Sprintf("send the header with the %d columns of the %s layout in canonical order (docs/data-contract.md §2.4), extra columns only at the end%s",
		len(r.cols), r.layout, r.layoutHint(names))

	if !namesAnyColumn(names) {
		return r.fileErr(1, "", fmt.Errorf("line 1 is not a header (its first field %q names no known column, so it looks like data); %s", clip(names[0]), fix))
	}
	for i, c := range r.cols {
		pos := i + 1
		if i >= len(names) {
			return r.fileErr(1, c.Name, fmt.Errorf("the header has %d columns and column %q (position %d) is missing; %s", len(names), c.Name, pos, fix))
		}
		got := names[i]
		if strings.EqualFold(got, c.Name) {
			continue
		}
		at := indexFold(names, c.Name)
		switch {
		case got == "":
			return r.fileErr(1, c.Name, fmt.Errorf("header position %d is empty, expected %q; %s", pos, c.Name, fix))
		case at < 0:
			return r.fileErr(1, c.Name, fmt.Errorf("column %q is missing: header position %d holds %q instead; %s", c.Name, pos, clip(got), fix))
		case layoutHas(r.cols, got):
			return r.fileErr(1, c.Name, fmt.Errorf("columns are out of order: header position %d holds %q, expected %q (found at position %d); %s", pos, clip(got), c.Name, at+1, fix))
		default:
			return r.fileErr(1, got, fmt.Errorf("unknown column %q at header position %d, before the known column %q (position %d); unknown columns are allowed only after all known ones; %s", clip(got), pos, c.Name, at+1, fix))
		}
	}
	all := records.BillingColumns()
	for i := len(r.cols); i < len(names); i++ {
		got := names[i]
		if got == "" {
			return r.fileErr(1, "", fmt.Errorf("header position %d (an extra column) has no name; name every column or remove the trailing tab", i+1))
		}
		if j := indexFold(names[:i], got); j >= 0 {
			return r.fileErr(1, got, fmt.Errorf("column %q appears twice, at header positions %d and %d; %s", clip(got), j+1, i+1, fix))
		}
		if layoutHas(all, got) {
			return r.fileErr(1, got, fmt.Errorf("column %q at header position %d belongs to another layout, not the %s layout; %s", clip(got), i+1, r.layout, fix))
		}
	}
	return nil
}

// layoutHint names the layout the header belongs to when it is not the one in use:
// the usual cause is a file name whose kind is wrong.
func (r *Reader) layoutHint(names []string) string {
	all := records.BillingColumns()
	for _, l := range []records.Layout{records.LayoutFull, records.LayoutCustomer, records.LayoutUsage} {
		if l == r.layout {
			continue
		}
		cols := records.LayoutColumns(l)
		if len(names) < len(cols) {
			continue
		}
		match := true
		for i, c := range cols {
			if !strings.EqualFold(names[i], c.Name) {
				match = false
				break
			}
		}
		if match && (len(names) == len(cols) || !layoutHas(all, names[len(cols)])) {
			return fmt.Sprintf(" (this header is that of the %s layout: check the file name's kind or Options.Layout)", l)
		}
	}
	return ""
}

func namesAnyColumn(names []string) bool {
	all := records.BillingColumns()
	for _, n := range names {
		if layoutHas(all, n) {
			return true
		}
	}
	return false
}

func layoutHas(cols []records.Column, name string) bool {
	for _, c := range cols {
		if strings.EqualFold(c.Name, name) {
			return true
		}
	}
	return false
}

func indexFold(names []string, name string) int {
	for i, n := range names {
		if strings.EqualFold(n, name) {
			return i
		}
	}
	return -1
}

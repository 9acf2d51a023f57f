package ingest

import (
	"errors"
	"fmt"
	"io"

	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/records"
)

// EachRow reads billing files in the order ingest publishes them (records.Order) and
// calls fn for every accepted row with the base name of its file, for tools
// and tests that apply the rules to files without Kafka. Rejected rows are
// skipped; a file that cannot be read to its end is an error naming it.
func EachRow(files []string, opts billing.Options, fn func(file string, row *records.BillingRow) error) error {
	for _, f := range records.Order(files) {
		if err := eachRow(f, opts, fn); err != nil {
			return err
		}
	}
	return nil
}

func eachRow(path string, opts billing.Options, fn func(string, *records.BillingRow) error) error {
	rd, err := billing.Open(path, opts)
	if err != nil {
		return err
	}
	defer rd.Close()
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if rec.Row == nil {
			continue
		}
		if err := fn(rd.Name().Base, rec.Row); err != nil {
			return fmt.Errorf("%s line %d: %w", rd.Name().Base, rec.Row.Line, err)
		}
	}
}

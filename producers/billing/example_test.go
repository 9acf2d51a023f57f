package billing_test

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/records"
)

// One goroutine reads the lines (NextLine), another parses them with a
// Parser into one reused row: a usage-layout file with a good row and a row
// whose duration is 0.
func ExampleParser() {
	file := records.HeaderLine(records.LayoutUsage) + "\n" +
		"SP-17\t412.5\t20240131\t31\tA\t61.20\n" +
		"SP-18\t12\t20240131\t0\tA\t\n"
	r, err := billing.NewReader("opwr_gec_res_v1-19-0_usage_20240301120000.tsv", strings.NewReader(file), billing.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	type line struct {
		text string
		n    int64
	}
	lines := make(chan line)
	done := make(chan struct{})
	p := r.NewParser()
	go func() {
		defer close(done)
		var row records.BillingRow
		for l := range lines {
			if rej := p.Parse(&row, l.text, l.n); rej != nil {
				fmt.Printf("line %d rejected: %s %s\n", rej.Line, rej.Reasons[0].Field, rej.Reasons[0].Code)
				continue
			}
			fmt.Printf("line %d: %s %g on %s\n", row.Line, row.ServicePointID, row.UsageValue, row.DateTo)
		}
	}()
	for {
		b, n, rej, err := r.NextLine()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || rej != nil {
			fmt.Println(err, rej)
			break
		}
		lines <- line{string(b), n} // b is reused by the next call
	}
	close(lines)
	<-done
	// Output:
	// line 2: SP-17 412.5 on 20240131
	// line 3 rejected: duration BAD_DURATION
}

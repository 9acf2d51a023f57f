package validate_test

import (
	"fmt"
	"os"

	"github.com/usagestream/usagestream/processors/validate"
	"github.com/usagestream/usagestream/records"
)

// A RejectedWriter's Write is Options.Rejected: every rejected row of a run
// becomes TSV lines to send back, one per reason.
func ExampleRejectedWriter() {
	rw := validate.NewRejectedWriter(os.Stdout)
	rw.Write("opwr_gec_res_v1-19-0_usage_20250315120000.tsv", "usage", &records.Rejected{
		Line: 7, ServicePointID: "SP1", Raw: "SP1\t500\t20250231\t30\tA\t", // service_point_id, usage_value, date_to, duration, is_estimate, usage_charge
		Reasons: []records.Reason{{Field: "date_to", Code: records.CodeBadDate, Rule: "DC-2.4", Message: `date_to "20250231" is not a real calendar date (yyyymmdd)`}}})
	if err := rw.Close(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// file	line	service_point_id	column	value	rule	code	reason	how_to_fix
	// opwr_gec_res_v1-19-0_usage_20250315120000.tsv	7	SP1	date_to	20250231	DC-2.4	BAD_DATE	date_to "20250231" is not a real calendar date (yyyymmdd)	write a real calendar date as yyyyMMdd
}

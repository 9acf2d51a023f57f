package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/producers/ingest"
)

// TestSummaryQuotesControlCharactersInNames (issue 13): a file name with an
// escape sequence or a newline reaches the terminal quoted, never raw.
func TestSummaryQuotesControlCharactersInNames(t *testing.T) {
	name := "opwr_gec_\x1b[2J\x1b[31mred\nFAKE LINE.csv"
	var out bytes.Buffer
	printSummary(&out, []ingest.Result{
		{File: name, Status: ingest.Failed, Err: errors.New("bad file " + name)},
		{File: name, Status: ingest.Skipped, Note: "seen " + name},
	})
	s := out.String()
	if strings.ContainsRune(s, '\x1b') || strings.Contains(s, "\nFAKE LINE") {
		t.Fatalf("raw control characters reached the output:\n%q", s)
	}
	if !strings.Contains(s, `\x1b[2J`) {
		t.Fatalf("the name is not shown quoted:\n%s", s)
	}
}

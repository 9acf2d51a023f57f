package billing

import (
	"strconv"
	"strings"

	"github.com/usagestream/usagestream/records"
)

// FileError is a problem with the file as a whole: the reader stops there.
// Rows returned before it stand.
type FileError struct {
	File  string
	Line  int64  // 0 when no line is concerned (open, compression container)
	Field string // column name, when one is concerned
	Err   error  // "<what is wrong>; <what to do>"
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString("file ")
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(", line ")
		b.WriteString(strconv.FormatInt(e.Line, 10))
	}
	if e.Field != "" {
		b.WriteString(", field ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *FileError) Unwrap() error { return e.Err }

// Record is one data line: exactly one of Row or Rejected is set.
type Record struct {
	Row      *records.BillingRow
	Rejected *records.Rejected
}

// Stats counts data lines (the header excluded). Lines == Accepted + Rejected
// always holds. RejectedByCode counts rejected rows per code: a row rejected
// for two codes counts once under each, so the sum may exceed Rejected.
type Stats struct {
	Lines, Accepted, Rejected int64
	RejectedByCode            map[string]int64
}

package ingest

import (
	"time"

	"github.com/usagestream/usagestream/records"
	recavro "github.com/usagestream/usagestream/records/avro"
)

// source identifies the file every record of one ingestion comes from.
type source struct {
	utility string
	file    string
	sha256  string
}

func rejectedRecord(rj *records.Rejected, layout string, src source) *recavro.RejectedRow {
	reasons := make([]recavro.RejectReason, 0, len(rj.Reasons))
	for _, r := range rj.Reasons {
		reasons = append(reasons, recavro.RejectReason{Field: recavro.Opt(r.Field), Code: r.Code, Rule: r.Rule, Message: r.Message})
	}
	return &recavro.RejectedRow{
		Utility: src.utility, Layout: layout,
		Source: recavro.SourceRef{File: src.file, Line: rj.Line, FileSHA256: src.sha256},
		Raw:    rj.Raw, ServicePointID: recavro.Opt(rj.ServicePointID), Reasons: reasons,
	}
}

// fileEvent is the FileEvent record before encoding.
type fileEvent struct {
	Status      string
	Generation  int
	Name        records.FileName
	Layout      string
	Size        int64
	Time        time.Time
	Read        int64
	Published   int64
	Rejected    int64
	ByCode      map[string]int64
	ResumedFrom int64
	Err         string
}

func fileEventRecord(e fileEvent, src source) *recavro.FileEvent {
	byCode := e.ByCode
	if byCode == nil {
		byCode = map[string]int64{}
	}
	var ts *time.Time
	if e.Name.Conforms {
		t := e.Name.Timestamp
		ts = &t
	}
	return &recavro.FileEvent{
		EventID: eventID(src.sha256, e.Generation, e.Status), Status: e.Status, Utility: src.utility,
		File: src.file, FileSHA256: src.sha256, SizeBytes: e.Size, Generation: int32(e.Generation),
		Layout: e.Layout, Kind: e.Name.Kind, Population: recavro.Opt(e.Name.Population),
		SpecVersion: recavro.Opt(e.Name.SpecVersion), NameTimestamp: ts, NameConforms: e.Name.Conforms,
		EventTime: e.Time, RowsRead: e.Read, RowsPublished: e.Published, RowsRejected: e.Rejected,
		RejectedByCode: byCode, ResumedFromLine: e.ResumedFrom, Error: recavro.Opt(e.Err),
	}
}

func eventID(sha string, generation int, status string) string {
	return sha + ":" + itoa(int64(generation)) + ":" + status
}

package ingest

import (
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/records"
)

// source identifies the file every record of one ingestion comes from.
type source struct {
	utility string
	file    string
	sha256  string
}

func (s source) native(line int64) map[string]any {
	return map[string]any{"file": s.file, "line": line, "file_sha256": s.sha256}
}

func extraNative(attrs []records.Attribute) map[string]any {
	m := make(map[string]any, len(attrs))
	for _, a := range attrs {
		m[a.Name] = a.Value
	}
	return m
}

func rejectedNative(rj *records.Rejected, layout string, src source) map[string]any {
	reasons := make([]any, 0, len(rj.Reasons))
	for _, r := range rj.Reasons {
		reasons = append(reasons, map[string]any{
			"field":   serde.OptString(r.Field),
			"code":    r.Code,
			"rule":    r.Rule,
			"message": r.Message,
		})
	}
	return map[string]any{
		"utility":          src.utility,
		"layout":           layout,
		"source":           src.native(rj.Line),
		"raw":              rj.Raw,
		"service_point_id": serde.OptString(rj.ServicePointID),
		"reasons":          reasons,
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

func fileEventNative(e fileEvent, src source) map[string]any {
	byCode := make(map[string]any, len(e.ByCode))
	for k, v := range e.ByCode {
		byCode[k] = v
	}
	var ts any
	if e.Name.Conforms {
		ts = goavro.Union("long.timestamp-millis", e.Name.Timestamp)
	}
	var errText any
	if e.Err != "" {
		errText = goavro.Union("string", e.Err)
	}
	return map[string]any{
		"event_id":          eventID(src.sha256, e.Generation, e.Status),
		"status":            e.Status,
		"utility":           src.utility,
		"file":              src.file,
		"file_sha256":       src.sha256,
		"size_bytes":        e.Size,
		"generation":        int32(e.Generation),
		"layout":            e.Layout,
		"kind":              e.Name.Kind,
		"population":        serde.OptString(e.Name.Population),
		"spec_version":      serde.OptString(e.Name.SpecVersion),
		"name_timestamp":    ts,
		"name_conforms":     e.Name.Conforms,
		"event_time":        e.Time,
		"rows_read":         e.Read,
		"rows_published":    e.Published,
		"rows_rejected":     e.Rejected,
		"rejected_by_code":  byCode,
		"resumed_from_line": e.ResumedFrom,
		"error":             errText,
	}
}

func eventID(sha string, generation int, status string) string {
	return sha + ":" + itoa(int64(generation)) + ":" + status
}

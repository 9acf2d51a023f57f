package avro

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	twavro "github.com/twmb/avro"
)

// JSONSchema renders Avro values of one schema as JSON for people and for
// JSON tools (tail, the JSON Lines sink): record fields in the schema's
// order, a date as an ISO date ("2025-01-31"), timestamps as RFC 3339
// ("2025-01-31T14:05:00Z"), unions unwrapped (null, or the value itself),
// enums as their symbol, map entries by key, bytes and fixed in base64. This
// is not Avro's own JSON encoding (tagged unions, day numbers), which no
// consumer of these renderings wants. Safe for concurrent use.
type JSONSchema struct {
	schema *twavro.Schema
	root   *twavro.SchemaNode
	names  map[string]*twavro.SchemaNode // named types, for the references expansion leaves (recursive types)
}

// NewJSONSchema prepares the rendering of values written with schema.
func NewJSONSchema(schema *twavro.Schema) *JSONSchema {
	j := &JSONSchema{schema: schema, root: schema.Root().ExpandReferences(), names: map[string]*twavro.SchemaNode{}}
	j.collect(j.root, "")
	return j
}

func (j *JSONSchema) collect(n *twavro.SchemaNode, ns string) {
	switch n.Type {
	case "record", "error", "enum", "fixed":
		full := fullName(n, ns)
		if _, ok := j.names[full]; ok {
			return
		}
		j.names[full] = n
		j.names[n.Name] = n
		ns = namespaceOf(full)
	}
	for i := range n.Fields {
		j.collect(&n.Fields[i].Type, ns)
	}
	for i := range n.Branches {
		j.collect(&n.Branches[i], ns)
	}
	if n.Items != nil {
		j.collect(n.Items, ns)
	}
	if n.Values != nil {
		j.collect(n.Values, ns)
	}
}

func fullName(n *twavro.SchemaNode, ns string) string {
	switch {
	case strings.Contains(n.Name, "."):
		return n.Name
	case n.Namespace != "":
		return n.Namespace + "." + n.Name
	case ns != "":
		return ns + "." + n.Name
	}
	return n.Name
}

func namespaceOf(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i]
	}
	return ""
}

// AppendBody appends the rendering of body (the Avro binary of one value
// written with the schema) to dst. Bytes after the value are an error.
func (j *JSONSchema) AppendBody(dst, body []byte) ([]byte, error) {
	var v any
	rest, err := j.schema.Decode(body, &v, twavro.TaggedUnions())
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%d bytes left after the value", len(rest))
	}
	if err != nil {
		return dst, err
	}
	return j.appendValue(dst, j.root, v, "")
}

// AppendJSON appends the rendering of v (one of this package's records,
// encoded with its embedded schema) to dst.
func AppendJSON[T any, P pointer[T]](dst []byte, v *T) ([]byte, error) {
	s, err := Codec[T, P]()
	if err != nil {
		return dst, err
	}
	body, err := s.Schema().Encode(v)
	if err != nil {
		return dst, fmt.Errorf("encoding %s: %w", s.Name(), err)
	}
	return NewJSONSchema(s.Schema()).AppendBody(dst, body)
}

func (j *JSONSchema) appendValue(dst []byte, n *twavro.SchemaNode, v any, ns string) ([]byte, error) {
	switch n.Type {
	case "null":
		return append(dst, "null"...), nil
	case "boolean":
		b, ok := v.(bool)
		if !ok {
			return dst, mismatch(n, v)
		}
		return strconv.AppendBool(dst, b), nil
	case "int", "long":
		return appendInteger(dst, n, v)
	case "float", "double":
		return appendFloat(dst, n, v)
	case "string", "enum":
		s, ok := v.(string)
		if !ok {
			return dst, mismatch(n, v)
		}
		return appendString(dst, s), nil
	case "bytes", "fixed":
		return appendBytes(dst, n, v)
	case "array":
		items, ok := v.([]any)
		if !ok || n.Items == nil {
			return dst, mismatch(n, v)
		}
		dst = append(dst, '[')
		for i, x := range items {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = j.appendValue(dst, n.Items, x, ns); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case "map":
		m, ok := v.(map[string]any)
		if !ok || n.Values == nil {
			return dst, mismatch(n, v)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(appendString(dst, k), ':')
			var err error
			if dst, err = j.appendValue(dst, n.Values, m[k], ns); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	case "record", "error":
		m, ok := v.(map[string]any)
		if !ok {
			return dst, mismatch(n, v)
		}
		ns = namespaceOf(fullName(n, ns))
		dst = append(dst, '{')
		for i := range n.Fields {
			f := &n.Fields[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(appendString(dst, f.Name), ':')
			var err error
			if dst, err = j.appendValue(dst, &f.Type, m[f.Name], ns); err != nil {
				return dst, fmt.Errorf("%s: %w", f.Name, err)
			}
		}
		return append(dst, '}'), nil
	case "union":
		if v == nil {
			return append(dst, "null"...), nil
		}
		tagged, ok := v.(map[string]any)
		if !ok || len(tagged) != 1 {
			return dst, mismatch(n, v)
		}
		for branch, x := range tagged {
			for i := range n.Branches {
				b := j.deref(&n.Branches[i], ns)
				if b.Type == branch || b.Name == branch || fullName(b, ns) == branch {
					return j.appendValue(dst, b, x, ns)
				}
			}
			return dst, fmt.Errorf("union value of branch %q, which the schema does not have", branch)
		}
	}
	if ref, ok := j.names[n.Type]; ok {
		return j.appendValue(dst, ref, v, ns)
	}
	if ref, ok := j.names[ns+"."+n.Type]; ok {
		return j.appendValue(dst, ref, v, ns)
	}
	return dst, fmt.Errorf("schema type %q is not one this rendering knows", n.Type)
}

// deref is the definition of a named reference, or n itself.
func (j *JSONSchema) deref(n *twavro.SchemaNode, ns string) *twavro.SchemaNode {
	switch n.Type {
	case "null", "boolean", "int", "long", "float", "double", "string", "bytes", "fixed", "enum", "array", "map", "record", "error", "union":
		return n
	}
	if ref, ok := j.names[n.Type]; ok {
		return ref
	}
	if ref, ok := j.names[ns+"."+n.Type]; ok {
		return ref
	}
	return n
}

func mismatch(n *twavro.SchemaNode, v any) error {
	return fmt.Errorf("a %s value decoded as %T", n.Type, v)
}

func appendInteger(dst []byte, n *twavro.SchemaNode, v any) ([]byte, error) {
	switch x := v.(type) {
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case time.Time:
		switch n.LogicalType {
		case "date":
			return appendString(dst, x.UTC().Format(time.DateOnly)), nil
		case "local-timestamp-millis", "local-timestamp-micros", "local-timestamp-nanos":
			return appendString(dst, x.UTC().Format("2006-01-02T15:04:05.999999999")), nil
		}
		return appendString(dst, x.UTC().Format(time.RFC3339Nano)), nil
	case time.Duration: // time-millis, time-micros: a time of day
		t := time.Time{}.Add(x)
		return appendString(dst, t.Format("15:04:05.999999")), nil
	}
	return dst, mismatch(n, v)
}

func appendFloat(dst []byte, n *twavro.SchemaNode, v any) ([]byte, error) {
	var f float64
	bits := 64
	switch x := v.(type) {
	case float32:
		f, bits = float64(x), 32
	case float64:
		f = x
	default:
		return dst, mismatch(n, v)
	}
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...), nil
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...), nil
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...), nil
	}
	// As encoding/json writes numbers: no exponent in the usual range.
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(dst, f, format, -1, bits), nil
}

func appendBytes(dst []byte, n *twavro.SchemaNode, v any) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		return appendString(dst, base64.StdEncoding.EncodeToString(x)), nil
	case *big.Rat: // decimal
		return appendString(dst, x.FloatString(n.Scale)), nil
	case [16]byte: // uuid on fixed(16)
		h := fmt.Sprintf("%x", x)
		return appendString(dst, h[:8]+"-"+h[8:12]+"-"+h[12:16]+"-"+h[16:20]+"-"+h[20:]), nil
	case twavro.Duration:
		return appendString(dst, x.String()), nil
	}
	return dst, mismatch(n, v)
}

// appendString appends s as a JSON string: invalid UTF-8 becomes U+FFFD,
// control characters are escaped, nothing else is (no HTML escaping).
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029': // valid JSON, but not in JavaScript source
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

package httpin

import (
	"strconv"
	"unicode/utf8"
)

// fastLine decodes the common shape of a line, a flat JSON object of the
// known keys with plain strings (no escapes, valid UTF-8) and numbers,
// without encoding/json's reflection: most of the endpoint's time went
// there. It returns false for anything else (whitespace aside), and the
// line is then decoded by encoding/json, whose errors the answers explain:
// so the result, or the error, is the same either way (FuzzFastLine).
func fastLine(b []byte, l *line) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return false
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return false
		}
		if b[i] == '"' {
			s, j, ok := plainString(b, i)
			if !ok {
				return false
			}
			v := string(s)
			switch string(key) {
			case "service_point_id":
				l.ServicePointID = &v
			case "channel":
				l.Channel = v
			case "service_type":
				l.ServiceType = v
			case "interval_end":
				l.IntervalEnd = &v
			case "units":
				l.Units = &v
			case "is_estimate":
				l.IsEstimate = v
			default:
				return false
			}
			i = j
		} else {
			num, j, ok := number(b, i)
			if !ok {
				return false
			}
			switch string(key) {
			case "minutes":
				n, err := strconv.Atoi(string(num))
				if err != nil {
					return false
				}
				l.Minutes = &n
			case "value":
				f, err := strconv.ParseFloat(string(num), 64)
				if err != nil {
					return false
				}
				l.Value = &f
			default:
				return false
			}
			i = j
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at b[i] that needs no decoding: no
// escape, no control character, valid UTF-8.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	ascii := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s := b[i+1 : j]
			return s, j + 1, ascii || utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, j, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, len(b), false
}

// number reads a JSON number at b[i] by the JSON grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func number(b []byte, i int) ([]byte, int, bool) {
	s := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() bool {
		k := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > k
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return nil, i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return nil, i, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return nil, i, false
		}
	}
	return b[s:i], i, true
}

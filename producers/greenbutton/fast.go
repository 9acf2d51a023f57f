package greenbutton

import (
	"bytes"
	"encoding/binary"
	"io"
)

// The fast path. encoding/xml costs 4.5 to 5 µs of a core per indented
// IntervalReading (about 20 tokens, each read a byte at a time through an
// interface and allocated), ten times what an Opower line costs, and
// nearly all of a Green Button file is IntervalReadings. So where the
// decoder stands right inside an IntervalBlock, fastReading reads the next
// IntervalReading straight from the buffer when it has the plain shape
// exporters write: the element names below, with or without a namespace
// prefix, without attribute or space inside a tag, leaf text of printable ASCII without '&', ']' or
// '>', and whitespace between elements. It files the reading exactly as
// the decoder's tokens would have (FuzzFastPathSameAsDecoder checks it on
// arbitrary input). Anything else (a comment, CDATA, an entity, another
// element, a reading longer than the window, the end of the input) makes
// it consume nothing and leave the reading to the decoder, which also
// reports every malformation, with its line.

const (
	sourceBuf  = 64 << 10
	fastWindow = 4 << 10 // the longest IntervalReading the fast path takes
)

// source is the decoder's input. It is an io.ByteReader, so the decoder
// reads from its buffer without buffering ahead of it, and the fast path
// can read the same bytes. It remembers the error reading the file
// returned, to tell a damaged file or failing storage from what the
// decoder itself refuses.
type source struct {
	r        io.Reader
	err      error // the error reading the file returned, except io.EOF
	buf      []byte
	pos, end int   // unread bytes: buf[pos:end]
	rerr     error // the error to return once buf[pos:end] is drained
}

// ReadByte is the decoder's way in: a byte from the buffer.
func (s *source) ReadByte() (byte, error) {
	if s.pos < s.end {
		b := s.buf[s.pos]
		s.pos++
		return b, nil
	}
	if !s.more(1) {
		return 0, s.rerr
	}
	b := s.buf[s.pos]
	s.pos++
	return b, nil
}

// Read makes source an io.Reader; the decoder uses ReadByte.
func (s *source) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.pos == s.end && !s.more(1) {
		return 0, s.rerr
	}
	n := copy(p, s.buf[s.pos:s.end])
	s.pos += n
	return n, nil
}

// more reads until n bytes are buffered (n <= fastWindow), or the input
// ends or fails; it reports whether they are. Two bytes already read stay
// before pos, for selfClosed.
func (s *source) more(n int) bool {
	for s.end-s.pos < n && s.rerr == nil {
		if len(s.buf)-s.pos < fastWindow+2 && s.pos > 2 {
			copy(s.buf, s.buf[s.pos-2:s.end])
			s.end -= s.pos - 2
			s.pos = 2
		}
		m, err := s.r.Read(s.buf[s.end:])
		s.end += m
		if err != nil {
			s.rerr = err
			if err != io.EOF {
				s.err = err
			}
		}
	}
	return s.end-s.pos >= n
}

// selfClosed says whether the start tag the decoder just returned ended
// in "/>" (strict XML quotes attribute values, so a '/' right before its
// '>' is the empty-element mark). Unknown (the start of the buffer): yes,
// so the fast path stays off.
func (s *source) selfClosed() bool {
	return s.pos < 2 || s.buf[s.pos-2] == '/'
}

// fastReading reads one IntervalReading of the plain shape at the
// decoder's position and files it as endElement would. ok false: it
// consumed nothing, the decoder goes on.
func (r *Reader) fastReading() (ok bool, err error) {
	s := r.src
	s.more(fastWindow)
	p := fastParser{b: s.buf[s.pos:s.end]}
	if len(p.b) > fastWindow {
		p.b = p.b[:fastWindow]
	}
	p.space()
	rp, name, ok := p.start()
	if !ok || string(name) != "IntervalReading" {
		return false, nil
	}
	rd := &r.reading
	*rd = rawReading{line: r.line() + p.lines, qualities: rd.qualities[:0]}
	for {
		p.space()
		if p.end(rp, "IntervalReading") {
			s.pos += p.i
			r.skipped += p.lines
			r.fast++
			return true, r.endReading()
		}
		pre, name, ok := p.start()
		if !ok {
			return false, nil
		}
		switch string(name) {
		case "value":
			if rd.value, rd.hasValue = p.text(pre, "value"); !rd.hasValue {
				return false, nil
			}
		case "timePeriod":
			for {
				p.space()
				if p.end(pre, "timePeriod") {
					break
				}
				leaf, name, ok := p.start()
				switch {
				case ok && string(name) == "start":
					if rd.start, rd.hasStart = p.text(leaf, "start"); !rd.hasStart {
						return false, nil
					}
				case ok && string(name) == "duration":
					if rd.duration, rd.hasDuration = p.text(leaf, "duration"); !rd.hasDuration {
						return false, nil
					}
				default:
					return false, nil
				}
			}
		case "ReadingQuality":
			for {
				p.space()
				if p.end(pre, "ReadingQuality") {
					break
				}
				leaf, name, ok := p.start()
				if !ok || string(name) != "quality" {
					return false, nil
				}
				v, ok := p.text(leaf, "quality")
				if !ok {
					return false, nil
				}
				rd.qualities = append(rd.qualities, v)
			}
		default:
			return false, nil
		}
	}
}

// fastParser scans b from i, counting the newlines it passes.
type fastParser struct {
	b     []byte
	i     int
	lines int
}

// space skips XML whitespace: mostly indentation, eight spaces at a time.
func (p *fastParser) space() {
	for {
		for p.i+8 <= len(p.b) && binary.LittleEndian.Uint64(p.b[p.i:]) == 0x2020202020202020 {
			p.i += 8
		}
		if p.i >= len(p.b) {
			return
		}
		switch p.b[p.i] {
		case '\n':
			p.lines++
		case ' ', '\t', '\r':
		default:
			return
		}
		p.i++
	}
}

// start consumes a start tag without attributes or space, <name> or
// <prefix:name>, and returns its prefix (nil when none) and local name.
// Names are taken in ASCII only, and only where encoding/xml's RawToken
// reads them the same way: one colon at most, with a prefix that starts
// with a letter or '_' and a local name after it.
func (p *fastParser) start() (prefix, local []byte, ok bool) {
	i := p.i
	if i >= len(p.b) || p.b[i] != '<' {
		return nil, nil, false
	}
	i++
	n := i
	for i < len(p.b) && nameByte(p.b[i]) {
		i++
	}
	if i == n || i >= len(p.b) || p.b[i] != '>' {
		return nil, nil, false
	}
	name := p.b[n:i]
	if c := name[0]; !(c == '_' || c|0x20 >= 'a' && c|0x20 <= 'z') {
		return nil, nil, false
	}
	if c := bytes.IndexByte(name, ':'); c >= 0 {
		prefix, local = name[:c], name[c+1:]
		if len(local) == 0 || bytes.IndexByte(local, ':') >= 0 {
			return nil, nil, false
		}
	} else {
		local = name
	}
	p.i = i + 1
	return prefix, local, true
}

// end consumes the end tag </prefix:local> (</local> when prefix is nil)
// if it comes next.
func (p *fastParser) end(prefix []byte, local string) bool {
	b := p.b[p.i:]
	n := 2 + len(local) + 1
	if len(prefix) > 0 {
		n += len(prefix) + 1
	}
	if len(b) < n || b[0] != '<' || b[1] != '/' || b[n-1] != '>' {
		return false
	}
	b = b[2 : n-1]
	if len(prefix) > 0 {
		if !bytes.HasPrefix(b, prefix) || b[len(prefix)] != ':' {
			return false
		}
		b = b[len(prefix)+1:]
	}
	if string(b) != local {
		return false
	}
	p.i += n
	return true
}

func nameByte(c byte) bool {
	return c|0x20 >= 'a' && c|0x20 <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':'
}

// text reads a leaf's text up to its end tag, trimmed as endElement trims
// it. false: a byte the decoder would treat otherwise (an entity, a
// carriage return it would turn into a newline, a non-ASCII character
// it would check, markup) or no end tag in the window.
func (p *fastParser) text(prefix []byte, local string) (string, bool) {
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '<':
			v := p.b[start:p.i]
			for len(v) > 0 && (v[0] == ' ' || v[0] == '\t' || v[0] == '\n') {
				v = v[1:]
			}
			for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t' || v[len(v)-1] == '\n') {
				v = v[:len(v)-1]
			}
			if !p.end(prefix, local) {
				return "", false
			}
			return string(v), true
		case c == '\n':
			p.lines++
		case c == ' ' || c == '\t':
		case c <= ' ' || c >= 0x7f || c == '&' || c == ']' || c == '>':
			return "", false
		}
		p.i++
	}
	return "", false
}

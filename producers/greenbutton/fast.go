package greenbutton

import "io"

// The fast path. encoding/xml costs 4.5 to 5 µs of a core per indented
// IntervalReading (about 20 tokens, each read a byte at a time through an
// interface and allocated), ten times what an Opower line costs, and
// nearly all of a Green Button file is IntervalReadings. So where the
// decoder stands right inside an IntervalBlock, fastReading reads the next
// IntervalReading straight from the buffer when it has the plain shape
// exporters write: the element names below without prefix, attribute or
// space inside a tag, leaf text of printable ASCII without '&', ']' or
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
	if !p.tag("<IntervalReading>") {
		return false, nil
	}
	rd := &r.reading
	*rd = rawReading{line: r.line() + p.lines, qualities: rd.qualities[:0]}
	for {
		p.space()
		switch {
		case p.tag("</IntervalReading>"):
			s.pos += p.i
			r.skipped += p.lines
			r.fast++
			return true, r.endReading()
		case p.tag("<value>"):
			if rd.value, rd.hasValue = p.text("</value>"); !rd.hasValue {
				return false, nil
			}
		case p.tag("<timePeriod>"):
		period:
			for {
				p.space()
				switch {
				case p.tag("</timePeriod>"):
					break period
				case p.tag("<start>"):
					if rd.start, rd.hasStart = p.text("</start>"); !rd.hasStart {
						return false, nil
					}
				case p.tag("<duration>"):
					if rd.duration, rd.hasDuration = p.text("</duration>"); !rd.hasDuration {
						return false, nil
					}
				default:
					return false, nil
				}
			}
		case p.tag("<ReadingQuality>"):
			for {
				p.space()
				if p.tag("</ReadingQuality>") {
					break
				}
				if !p.tag("<quality>") {
					return false, nil
				}
				v, ok := p.text("</quality>")
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

// space skips XML whitespace.
func (p *fastParser) space() {
	for p.i < len(p.b) {
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

// tag consumes t if it comes next.
func (p *fastParser) tag(t string) bool {
	if len(p.b)-p.i >= len(t) && string(p.b[p.i:p.i+len(t)]) == t {
		p.i += len(t)
		return true
	}
	return false
}

// text reads a leaf's text up to its end tag, trimmed as endElement trims
// it. false: a byte the decoder would treat otherwise (an entity, a
// carriage return it would turn into a newline, a non-ASCII character
// it would check, markup) or no end tag in the window.
func (p *fastParser) text(end string) (string, bool) {
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
			if !p.tag(end) {
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

package rules

// The binary encodings of what one stage sends another through a
// repartition topic: a membership (service point stage -> premise stage), a
// stage 2 input (premise stage -> customer stage) and an interval history
// (interval stage -> customer stage). They use the state encodings'
// machinery (state.go), so a field added to Membership or Reason is carried
// by both at once. The caller frames them (a version byte, the utility):
// see processors/pipeline.

// AppendMembership appends the encoding of m to b.
func AppendMembership(b []byte, m *Membership) []byte {
	e := enc{b: b}
	e.membership(m)
	return e.b
}

// DecodeMembership decodes all of b, written by AppendMembership, into m.
func DecodeMembership(b []byte, m *Membership) error {
	d := dec{b: b}
	*m = Membership{}
	d.membership(m)
	return d.end()
}

// AppendCustomerInput appends the encoding of ci to b.
func AppendCustomerInput(b []byte, ci *CustomerInput) []byte {
	e := enc{b: b}
	e.str(ci.CustomerID)
	e.str(ci.PremiseID)
	e.flag(ci.Membership != nil)
	if ci.Membership != nil {
		e.membership(ci.Membership)
	}
	e.flag(ci.Replacements != nil)
	if ci.Replacements != nil {
		e.reasons(*ci.Replacements)
	}
	e.source(ci.Cause)
	// A snapshot (Memberships) after what earlier releases wrote, which
	// they still decode to the end.
	if ci.Memberships != nil {
		e.uint(uint64(len(ci.Memberships)))
		for i := range ci.Memberships {
			e.membership(&ci.Memberships[i])
		}
	}
	return e.b
}

// DecodeCustomerInput decodes all of b, written by AppendCustomerInput,
// into ci.
func DecodeCustomerInput(b []byte, ci *CustomerInput) error {
	d := dec{b: b}
	*ci = CustomerInput{CustomerID: d.str(), PremiseID: d.str()}
	if d.flag() {
		ci.Membership = &Membership{}
		d.membership(ci.Membership)
	}
	if d.flag() {
		rs := d.reasons()
		ci.Replacements = &rs
	}
	ci.Cause = d.source()
	if d.err == nil && d.i < len(d.b) {
		n := d.count()
		ci.Memberships = make([]Membership, n)
		for i := range ci.Memberships {
			d.membership(&ci.Memberships[i])
		}
	}
	return d.end()
}

// AppendIntervalHistory appends the encoding of h to b.
func AppendIntervalHistory(b []byte, h *IntervalHistory) []byte {
	e := enc{b: b}
	e.str(h.ServicePointID)
	e.str(h.CustomerID)
	e.str(h.PremiseID)
	e.int(int64(h.Months))
	e.date(h.Since)
	e.source(h.Source)
	return e.b
}

// DecodeIntervalHistory decodes all of b, written by
// AppendIntervalHistory, into h.
func DecodeIntervalHistory(b []byte, h *IntervalHistory) error {
	d := dec{b: b}
	*h = IntervalHistory{ServicePointID: d.str(), CustomerID: d.str(), PremiseID: d.str()}
	h.Months = int(d.int())
	h.Since = d.date()
	h.Source = d.source()
	return d.end()
}

package gen

import (
	"math"
	"math/rand/v2"

	"github.com/usagestream/usagestream/internal/dates"
)

// generator holds everything one run needs. Buffers are reused from service
// point to service point: after the first few, building one allocates nothing.
type generator struct {
	cfg    Config
	np     int64   // premises
	gas    float64 // effective gas share
	assign map[int64]*assignment

	src rand.PCG
	rng *rand.Rand

	prem    premise
	periods []period // the premise's billing periods, shared by its fuels

	// The service point being built: account states, rows, pending labels.
	accts    []acct
	rendered []rendered
	arena    []byte
	rows     []row
	pend     []pending

	labels []Label
}

// premise holds the attributes shared by every service point of one premise.
type premise struct {
	idx, no  int64 // 0-based index; number used in ids
	cycle    int
	house    int
	street   int
	suffix   int
	unit     []byte
	city     int
	zip      int
	sqft     int
	custNo   int64
	pm       bool // the customer is a property manager (C2)
	hasGas   bool
	scaleE   float64 // mean kWh per 30.4 days before seasonality
	scaleG   float64 // mean therms per 30.4 days before seasonality
	custType string
	assign   *assignment
}

type period struct{ start, end dates.Date }

// acct is one account state of a service point: the customer, premise, account
// and service point columns as they stand for a run of rows.
type acct struct {
	custNo      int64
	pm          bool
	seq         int // account number within the premise: 1 electric, 2 gas, 3 added by an anomaly
	active      dates.Date
	inactive    dates.Date
	hasInactive bool
	deletion    string
	rate        string
	fuel        byte // 'E' or 'G'
	spNo        int64
	serviceType string
	meterAMI    bool
}

// rendered locates an acct's columns in the arena.
type rendered struct {
	off, end     int // the 23 non-usage columns, tab-separated
	spOff, spEnd int // service_point_id inside them
	label        int // index into pend of a label carried by this state in the customer file, or -1
}

// bad is how a malformed row is broken.
type bad uint8

const (
	badNone bad = iota
	badDate
	badNullValue
	badNullCharge
	badThousands
	badFieldCount
	badDuration
)

type row struct {
	start, end dates.Date
	value      int64 // hundredths of a unit
	charge     int64 // cents
	est        byte
	bad        bad
	token      uint8 // which null token, for badNull*
	fullOnly   bool  // written in the full layout only: the split layout says it in the customer file
	noCharge   bool  // usage_charge left empty (it is optional)
	state      int
	label      int // index into pend of a label carried by this row, or -1
}

// pending is a label whose line is known once the row is written.
type pending struct {
	label Label
	// inCustomer: in the split layout the label sits on the customer-file row
	// of state; otherwise on the usage row row. The full layout always uses row.
	row        int
	state      int
	inCustomer bool
}

func newGenerator(c Config) (*generator, error) {
	c = c.WithDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	g := &generator{cfg: c, np: premiseCount(c), gas: c.gasShare()}
	g.rng = rand.New(&g.src)
	g.periods = make([]period, c.Months+1)
	g.rows = make([]row, 0, c.Months+4)
	g.arena = make([]byte, 0, 1024)
	if err := g.plan(); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *generator) reseed(salt uint64, n int64) {
	g.src.Seed(uint64(g.cfg.Seed), mix(uint64(n)<<4^salt))
}

// loadPremise fills g.prem and g.periods for premise p.
func (g *generator) loadPremise(p int64) {
	pr := &g.prem
	pr.idx, pr.no = p, p+1
	pr.assign = nil
	if g.assign != nil {
		pr.assign = g.assign[p]
	}
	pr.cycle = g.readCycle(p)
	pr.hasGas = g.naturalGas(p)
	pr.custNo, pr.pm = pr.no, false
	if a := pr.assign; a != nil {
		pr.hasGas = a.kind == S2DualFuel
		if a.kind == C2PropertyManager {
			pr.custNo, pr.pm = a.c2Customer, true
		}
	}

	// Multi-family buildings are blocks of six consecutive premises sharing one
	// street address, each unit its own premise (docs/data-contract.md §1).
	const perBuilding = 6
	building := p / perBuilding
	multi := unit(g.hash(saltPremise, building)) < 0.2
	addrKey := p
	if multi {
		addrKey = -1 - building // a stream apart from single-family addresses
	}
	g.reseed(saltAddress, addrKey)
	r := g.rng
	pr.house = 1 + r.IntN(9999)
	if r.IntN(3) == 0 {
		pr.house = 100 + r.IntN(900)
	}
	pr.street = r.IntN(len(streetNames))
	pr.suffix = r.IntN(len(streetSuffixes))
	pr.city = r.IntN(len(cities))
	pr.zip = cities[pr.city].zip3*100 + r.IntN(100)
	style := r.IntN(len(unitStyles))

	g.reseed(saltPremise, p)
	pop := g.cfg.Population
	if pop == "nonres" {
		if r.IntN(100) < 85 {
			pop = "nonres-smb"
		} else {
			pop = "nonres-lci"
		}
	}
	switch pop {
	case "res":
		pr.custType = "RES"
		pr.sqft = 700 + r.IntN(2800)
		pr.scaleE = math.Exp(math.Log(850) + 0.35*r.NormFloat64())
		pr.scaleG = math.Exp(math.Log(48) + 0.3*r.NormFloat64())
		if multi {
			pr.sqft = 500 + r.IntN(900)
			pr.scaleE *= 0.65
			pr.scaleG *= 0.6
		}
	case "nonres-smb":
		pr.custType = "SMB"
		pr.sqft = 1200 + r.IntN(18000)
		pr.scaleE = math.Exp(math.Log(3500) + 0.6*r.NormFloat64())
		pr.scaleG = math.Exp(math.Log(180) + 0.5*r.NormFloat64())
	default:
		pr.custType = "LCI"
		pr.sqft = 40000 + r.IntN(400000)
		pr.scaleE = math.Exp(math.Log(90000) + 0.5*r.NormFloat64())
		pr.scaleG = math.Exp(math.Log(4000) + 0.5*r.NormFloat64())
	}

	pr.unit = pr.unit[:0]
	if multi {
		u := int(p % perBuilding)
		if pr.custType == "RES" {
			pr.unit = append(pr.unit, unitStyles[style]...)
			pr.unit = appendPadded(pr.unit, int64(u/2+1), 1)
			pr.unit = append(pr.unit, byte('A'+u%2))
		} else {
			pr.unit = append(pr.unit, "Ste "...)
			pr.unit = appendPadded(pr.unit, int64(100*(u/2+1)+u%2*10), 1)
		}
	}

	g.makePeriods(p)
}

// makePeriods chains Months+1 monthly periods (rule U1): each ends near the
// same day of the next calendar month (the read cycle), with a day or two of
// jitter as meter readers run early or late, and lasts 28-33 days. The extra
// period is only used by U5, whose rebill reaches one period ahead.
func (g *generator) makePeriods(p int64) {
	g.reseed(saltPeriods, p)
	r := g.rng
	first := g.cfg.Start.AddDays(g.prem.cycle - 1)
	y, m, d := civil(first)
	prevEnd := first - 1
	for k := range g.periods {
		end := fromCivil(y, m+k+1, d) - 1
		switch j := r.IntN(20); {
		case j < 12:
		case j < 14:
			end--
		case j < 16:
			end++
		case j < 18:
			end -= 2
		default:
			end += 2
		}
		end = prevEnd + dates.Date(min(33, max(28, int(end-prevEnd))))
		g.periods[k] = period{prevEnd + 1, end}
		prevEnd = end
	}
}

// buildSP builds the rows of the premise's service point of one fuel, with
// its anomaly if it has one.
func (g *generator) buildSP(fuel byte) {
	pr := &g.prem
	salt := uint64(saltSP)
	if fuel == 'G' {
		salt++
	}
	g.reseed(salt, pr.idx)
	r := g.rng
	g.accts = g.accts[:0]
	g.rows = g.rows[:0]
	g.pend = g.pend[:0]

	seq := 1
	if fuel == 'G' {
		seq = 2
	}
	g.accts = append(g.accts, acct{
		custNo:      pr.custNo,
		pm:          pr.pm,
		seq:         seq,
		active:      g.periods[0].start,
		rate:        rateCodes[r.IntN(len(rateCodes))],
		fuel:        fuel,
		spNo:        pr.no,
		serviceType: fuelCode(fuel),
		meterAMI:    r.IntN(100) < 85,
	})
	scale, season, dec, price := pr.scaleE, &seasonElectric, 0, rateCentsE(g.accts[0].rate)
	if fuel == 'G' {
		scale, season, dec, price = pr.scaleG, &seasonGas, 1, 98.0
	}
	price *= 0.97 + 0.06*r.Float64()
	for _, pe := range g.periods[:g.cfg.Months] {
		dur := float64(pe.end - pe.start + 1)
		_, mid, _ := civil(pe.start + (pe.end-pe.start)/2)
		v := scale * season[mid] * dur / 30.4 * (1 + 0.1*r.NormFloat64())
		value := roundTo(max(v, 0.02*scale), dec)
		est := byte('A')
		if r.IntN(100) < 6 {
			est = 'E'
		}
		g.rows = append(g.rows, row{
			start: pe.start, end: pe.end,
			value: value, charge: chargeFor(value, price), est: est,
			label: -1,
		})
	}

	if a := pr.assign; a != nil && (a.kind == S2DualFuel) == (fuel == 'G') {
		g.inject(a)
	}
	g.render()
}

// fuelCode is the service_type of a fuel; a constant, so building a service
// point allocates nothing.
func fuelCode(fuel byte) string {
	if fuel == 'G' {
		return "G"
	}
	return "E"
}

// rateCentsE is a plausible variable price per kWh for a rate code.
func rateCentsE(code string) float64 {
	switch code {
	case "R2":
		return 12.8
	case "TOU1":
		return 16.5
	}
	return 14.2
}

// roundTo rounds units to dec decimals and returns hundredths.
func roundTo(units float64, dec int) int64 {
	switch dec {
	case 0:
		return int64(math.Round(units)) * 100
	case 1:
		return int64(math.Round(units*10)) * 10
	}
	return int64(math.Round(units * 100))
}

// chargeFor is the variable charge in cents for value hundredths at price
// cents per unit (rule U9: variable cost only, no fixed fees).
func chargeFor(value int64, price float64) int64 {
	return int64(math.Round(float64(value) / 100 * price))
}

// render writes every acct's columns into the arena, in the canonical order of
// records.BillingColumns() up to bldg_sq_foot.
func (g *generator) render() {
	g.arena = g.arena[:0]
	g.rendered = g.rendered[:0]
	pr := &g.prem
	for i := range g.accts {
		a := &g.accts[i]
		b := g.arena
		off := len(b)
		b = appendCustomerID(b, a.custNo) // customer_id
		b = append(b, '\t')
		b = appendPremiseID(b, pr.no) // premise_id
		b = append(b, '\t')
		if g.hash(saltCustomer, a.custNo)%10 == 0 { // secondary_id: some customers have one
			b = append(b, 'W')
			b = appendPadded(b, a.custNo, 8)
		}
		b = append(b, '\t')
		b = append(b, '8') // ccb_account_id
		b = appendPadded(b, pr.no, 8)
		b = appendPadded(b, int64(a.seq), 2)
		b = append(b, '\t')
		b = append(b, pr.custType...) // customer_type
		b = append(b, '\t')
		b = g.appendBusiness(b, a) // business_name
		b = append(b, '\t')
		b = appendAccountID(b, pr.no, a.seq) // account_id
		b = append(b, '\t')
		b = appendDate(b, a.active)
		b = append(b, '\t')
		if a.hasInactive {
			b = appendDate(b, a.inactive)
		}
		b = append(b, '\t')
		b = append(b, a.deletion...)
		b = append(b, '\t')
		b = appendPadded(b, int64(pr.cycle), 2) // read_cycle
		b = append(b, '\t')
		b = append(b, a.rate...)
		b = append(b, '\t')
		spOff := len(b)
		b = appendSPID(b, a.fuel, a.spNo)
		spEnd := len(b)
		b = append(b, '\t')
		b = append(b, a.serviceType...)
		b = append(b, '\t')
		b = appendPadded(b, int64(pr.house), 1)
		b = append(b, '\t')
		b = append(b, streetNames[pr.street]...)
		b = append(b, ' ')
		b = append(b, streetSuffixes[pr.suffix]...)
		b = append(b, '\t')
		b = append(b, pr.unit...)
		b = append(b, '\t')
		b = append(b, cities[pr.city].name...)
		b = append(b, '\t')
		b = append(b, cities[pr.city].state...)
		b = append(b, '\t')
		b = appendPadded(b, int64(pr.zip), 5)
		b = append(b, '\t')
		if a.meterAMI {
			b = append(b, "AMI"...)
		} else {
			b = append(b, "AMR"...)
		}
		b = append(b, '\t')
		if a.fuel == 'G' {
			b = append(b, "THERM"...)
		} else {
			b = append(b, "KWH"...)
		}
		b = append(b, '\t')
		b = appendPadded(b, int64(pr.sqft), 1)
		g.arena = b
		g.rendered = append(g.rendered, rendered{off: off, end: len(b), spOff: spOff, spEnd: spEnd, label: -1})
	}
	for i := range g.pend {
		if p := &g.pend[i]; p.inCustomer {
			g.rendered[p.state].label = i
		}
	}
}

// appendBusiness writes the business name: none for residential customers,
// except property managers, whose accounts carry their company's name.
func (g *generator) appendBusiness(b []byte, a *acct) []byte {
	h := g.hash(saltBusiness, a.custNo)
	first := bizFirst[h%uint64(len(bizFirst))]
	h /= uint64(len(bizFirst))
	if a.pm {
		return append(append(b, first...), " Property Management LLC"...)
	}
	switch g.prem.custType {
	case "SMB":
		b = append(b, first...)
		b = append(b, ' ')
		b = append(b, bizTrade[h%uint64(len(bizTrade))]...)
	case "LCI":
		b = append(b, first...)
		b = append(b, ' ')
		b = append(b, bizLCI[h%uint64(len(bizLCI))]...)
	default:
		return b
	}
	h /= 32
	if s := bizSuffix[h%uint64(len(bizSuffix))]; s != "" {
		b = append(b, ' ')
		b = append(b, s...)
	}
	return b
}

func appendCustomerID(b []byte, n int64) []byte { return appendPadded(append(b, 'C'), n, 8) }
func appendPremiseID(b []byte, n int64) []byte  { return appendPadded(append(b, 'P'), n, 8) }

func appendAccountID(b []byte, premiseNo int64, seq int) []byte {
	b = appendPadded(append(b, 'A'), premiseNo, 8)
	return appendPadded(append(b, '-'), int64(seq), 2)
}

func appendSPID(b []byte, fuel byte, n int64) []byte {
	return appendPadded(append(b, 'S', 'P', '-', fuel, '-'), n, 8)
}

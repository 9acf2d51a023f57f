package gen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/usagestream/usagestream/internal/dates"
)

// assignment is the anomaly a premise carries. Each premise carries at most
// one, so that no two anomalies interfere: a premise with an anomaly other
// than S2 is electric only, an S2 premise always has gas.
type assignment struct {
	kind Kind
	// extra numbers an entity the anomaly adds (a moving-in customer for A2
	// and A8_INVALID_DELETION, a new service point for S1), numbered after
	// the regular ones so ids stay unique.
	extra int64
	// C2: the shared customer, whether this premise completes the set of
	// three (it carries the label), and the date from which all three are active.
	c2Customer int64
	c2Last     bool
	c2Date     dates.Date
	c2Premises [3]int64 // premise numbers, ascending
}

// Seed salts (below 16: they share a word with the entity number) keep the random streams of one premise independent: the periods
// must not change when, say, the value model draws one more number.
const (
	saltPlan     = 0x9e3779b97f4a7c15
	saltPremise  = 1
	saltPeriods  = 2
	saltSP       = 3 // + fuel
	saltGas      = 7
	saltCycle    = 8
	saltCustomer = 9
	saltAddress  = 10
	saltBusiness = 11
)

// mix is splitmix64's finaliser: a cheap bijective hash for seeding and for
// per-premise decisions that must be computable without replaying a stream.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (g *generator) hash(salt uint64, n int64) uint64 {
	return mix(uint64(g.cfg.Seed) ^ mix(uint64(n)<<4^salt))
}

// unit turns a hash into a float in [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// premiseCount is how many premises give about cfg.ServicePoints service points.
func premiseCount(c Config) int64 {
	return max(1, int64(math.Round(float64(c.ServicePoints)/(1+c.gasShare()))))
}

// readCycle is the premise's read route, 1-20; its first period starts
// cycle-1 days after Start.
func (g *generator) readCycle(p int64) int { return 1 + int(g.hash(saltCycle, p)%20) }

func (g *generator) firstStart(p int64) dates.Date {
	return g.cfg.Start.AddDays(g.readCycle(p) - 1)
}

// naturalGas says whether premise p has gas before anomalies override it.
func (g *generator) naturalGas(p int64) bool { return unit(g.hash(saltGas, p)) < g.gas }

// plan picks, deterministically from the seed, the premises that carry each
// requested anomaly. It walks kinds in canonical order, so adding one anomaly
// of a kind does not move the others of kinds before it.
func (g *generator) plan() error {
	need := int64(0)
	for _, k := range kindOrder {
		need += int64(g.cfg.Anomalies[k] * kindInfo[k].premises)
	}
	if need == 0 {
		return nil
	}
	if need > g.np {
		return fmt.Errorf("gen: %w: %d anomalies need %d distinct premises but %d service points give %d; raise ServicePoints or ask for fewer",
			errTooFewPremises, need, need, g.cfg.ServicePoints, g.np)
	}
	rng := rand.New(rand.NewPCG(uint64(g.cfg.Seed), saltPlan))
	g.assign = make(map[int64]*assignment, need)

	// A dense request draws from a permutation; a sparse one by rejection,
	// which needs no memory proportional to the number of premises.
	var perm []int
	if need*2 > g.np {
		perm = rng.Perm(int(g.np))
	}
	pick := func() int64 {
		if perm != nil {
			p := int64(perm[0])
			perm = perm[1:]
			return p
		}
		for {
			p := rng.Int64N(g.np)
			if _, used := g.assign[p]; !used {
				return p
			}
		}
	}

	extra := g.np // ids above every regular premise number
	for _, k := range kindOrder {
		for range g.cfg.Anomalies[k] {
			if k == C2PropertyManager {
				ps := [3]int64{pick(), 0, 0}
				g.assign[ps[0]] = &assignment{kind: k} // reserve before the next pick
				ps[1] = pick()
				g.assign[ps[1]] = &assignment{kind: k}
				ps[2] = pick()
				slices.Sort(ps[:])
				date := max(g.firstStart(ps[0]), g.firstStart(ps[1]), g.firstStart(ps[2]))
				nos := [3]int64{ps[0] + 1, ps[1] + 1, ps[2] + 1}
				for _, p := range ps {
					g.assign[p] = &assignment{kind: k, c2Customer: nos[0], c2Last: p == ps[2], c2Date: date, c2Premises: nos}
				}
				continue
			}
			a := &assignment{kind: k}
			switch k {
			case A2Supersede, A8InvalidDeletion, S1ServicePointReplace:
				extra++
				a.extra = extra
			}
			g.assign[pick()] = a
		}
	}
	return nil
}

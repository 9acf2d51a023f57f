package rules

import "slices"

// Programs a subject can be eligible for (docs/rules.md#programs).
const (
	ProgramCommunications     = "communications" // reports, emails, alerts
	ProgramWebAccess          = "web_access"
	ProgramNeighborComparison = "neighbor_comparison"
	ProgramDualFuelInsights   = "dual_fuel_insights"
	ProgramDisaggregation     = "disaggregation"
)

// program is one row of the eligibility programs table.
type program struct {
	name string
	// blocks lists the reason codes that block it.
	blocks []string
	// commRule, when set, makes a blocked communications program block this
	// one too, as one reason BLOCKED_FOR_COMMUNICATIONS under this rule id.
	commRule string
}

// communicationsBlocks is the communications row of the table.
var communicationsBlocks = []string{
	ReasonInactive, ReasonSuperseded, ReasonUsageGap, ReasonUsageOverlap,
	ReasonActiveDateChanged, ReasonRateNotAllowed, ReasonServicePointChanged,
}

// programTable is the programs table of docs/rules.md#programs (default policy), in
// the order events are emitted. Read-only.
var programTable = []program{
	{name: ProgramCommunications, blocks: communicationsBlocks},
	{name: ProgramWebAccess, blocks: []string{ReasonInactive, ReasonSuperseded}},
	{name: ProgramNeighborComparison, blocks: append(slices.Clip(communicationsBlocks), ReasonPropertyManager)},
	{name: ProgramDualFuelInsights, blocks: []string{ReasonNoDualFuel}, commRule: "S2"},
	{name: ProgramDisaggregation, blocks: []string{ReasonInsufficientHistory}, commRule: "I5"},
}

// communications is the table's communications row: other programs
// follow it when it is blocked.
func communications() *program { return &programTable[0] }

// Programs lists the programs in the order their events are emitted.
func Programs() []string {
	out := make([]string, len(programTable))
	for i, p := range programTable {
		out[i] = p.name
	}
	return out
}

// Blocks says whether reason code blocks program directly (a blocked
// communications program blocking dual fuel and disaggregation is not
// counted here: it is the reason BLOCKED_FOR_COMMUNICATIONS).
func Blocks(programName, code string) bool {
	for _, p := range programTable {
		if p.name == programName {
			return slices.Contains(p.blocks, code) || (p.commRule != "" && code == ReasonBlockedForCommunications)
		}
	}
	return false
}

// selectReasons keeps the reasons of all that block prog, sorted.
func (prog *program) selectReasons(all []Reason) []Reason {
	out := []Reason{}
	for _, r := range all {
		if slices.Contains(prog.blocks, r.Code) ||
			(r.Code == ReasonBlockedForCommunications && r.Rule == prog.commRule && prog.commRule != "") {
			out = append(out, r)
		}
	}
	sortReasons(out)
	return out
}

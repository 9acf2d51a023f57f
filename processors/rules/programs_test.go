package rules

import "testing"

func TestProgramsCommunicationsRow(t *testing.T) {
	t.Parallel()
	if c := communications(); c.name != ProgramCommunications || c.commRule != "" {
		t.Fatalf("the first row of the table must be communications, got %q", c.name)
	}
	for _, p := range programTable {
		if p.name == ProgramNeighborComparison {
			for _, code := range communicationsBlocks {
				if !Blocks(p.name, code) {
					t.Errorf("neighbor_comparison must be blocked by everything that blocks communications: %s", code)
				}
			}
		}
	}
}

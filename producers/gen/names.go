package gen

import (
	"github.com/usagestream/usagestream/records"
)

// FileName is the base name Generate gives a file of layout l:
// opwr_<utility>_<population>_<version>_<kind>_<yyyyMMddHHmmss>.<gz|zip|tsv>
// (data contract 2.3). c should have its defaults filled.
func FileName(c Config, l records.Layout) string {
	ext := ".gz"
	switch c.Compression {
	case "zip":
		ext = ".zip"
	case "none":
		ext = ".tsv"
	}
	return "opwr_" + c.Utility + "_" + c.Population + "_" + c.SpecVersion + "_" + string(l) + "_" + fileTimestamp(c.Now) + ext
}

// innerName is the name of the one file inside a zip, and the gzip header name.
func innerName(c Config, l records.Layout) string {
	return "opwr_" + c.Utility + "_" + c.Population + "_" + c.SpecVersion + "_" + string(l) + "_" + fileTimestamp(c.Now) + ".tsv"
}

// Word lists for fake but plausible attributes. Read-only.

var streetNames = []string{
	"Oak", "Maple", "Cedar", "Pine", "Elm", "Willow", "Birch", "Walnut", "Chestnut",
	"Hickory", "Magnolia", "Dogwood", "Sycamore", "Spruce", "Poplar", "Laurel",
	"Juniper", "Aspen", "Cherry", "Hawthorn", "Park", "Lake", "Hill", "River",
	"Meadow", "Forest", "Spring", "Ridge", "Valley", "Sunset", "Highland", "Church",
	"Mill", "Main", "Washington", "Lincoln", "Jefferson", "Madison", "Franklin",
	"Jackson", "Adams", "Monroe", "Center", "Broad", "Market", "Union", "Academy",
	"Orchard", "Prospect", "Peachtree", "Cotton", "Magnolia Bluff", "Old Mill",
	"Pecan Grove", "Riverbend", "Stone Creek", "Fox Run", "Quail Hollow",
}

var streetSuffixes = []string{"St", "Ave", "Rd", "Ln", "Dr", "Ct", "Way", "Blvd", "Pl", "Cir", "Pkwy", "Trl"}

// city is a place with its state and the first three digits of its zip codes.
type city struct {
	name, state string
	zip3        int
}

var cities = []city{
	{"Macon", "GA", 312}, {"Warner Robins", "GA", 310}, {"Athens", "GA", 306},
	{"Augusta", "GA", 309}, {"Savannah", "GA", 314}, {"Columbus", "GA", 319},
	{"Albany", "GA", 317}, {"Valdosta", "GA", 316}, {"Rome", "GA", 301},
	{"Dalton", "GA", 307}, {"Gainesville", "GA", 305}, {"Statesboro", "GA", 304},
	{"Milledgeville", "GA", 310}, {"Aiken", "SC", 298}, {"Greenville", "SC", 296},
	{"Anderson", "SC", 296}, {"Dothan", "AL", 363}, {"Tallahassee", "FL", 323},
}

var bizFirst = []string{
	"Summit", "Riverside", "Oakwood", "Pinnacle", "Heritage", "Lakeside", "Evergreen",
	"Northgate", "Bluebird", "Cornerstone", "Harbor", "Meridian", "Redwood",
	"Silverline", "Crescent", "Prairie", "Magnolia", "Peach State", "Southern Pine",
	"Golden Leaf",
}

var bizTrade = []string{
	"Dental", "Bakery", "Auto Repair", "Hardware", "Pharmacy", "Cafe", "Family Medicine",
	"Printing", "Fitness", "Veterinary Clinic", "Dry Cleaners", "Grocery", "Insurance",
	"Realty", "Diner", "Florist", "Tire & Lube", "Animal Hospital", "Storage",
	"Plumbing Supply",
}

var bizLCI = []string{
	"Manufacturing", "Cold Storage", "Plastics", "Textiles", "Foods", "Regional Hospital",
	"Distribution Center", "Paper Mill", "Data Center", "Steel Works",
}

var bizSuffix = []string{"LLC", "Inc", "Co", "Corp", ""}

var unitStyles = []string{"Apt ", "Unit ", "#"}

// Rate codes on every real allowlist; MED1 is the medical rate that A7 switches
// to (rules.md A7: medical rates are left off the allowlist).
var (
	rateCodes    = []string{"R1", "R1", "R1", "R2", "R2", "TOU1"}
	rateMedical  = "MED1"
	deletionFlag = []string{"true", "1", "t"}
	nullTokens   = []string{"NA", "null", `\N`}
	badTypes     = []string{"X", "ELEC", "Z"}
)

// Seasonal factors by calendar month (index 1-12): electric peaks in summer
// (cooling) with a smaller winter peak; gas follows heating.
var (
	seasonElectric = [13]float64{0, 1.15, 1.05, 0.90, 0.80, 0.85, 1.05, 1.35, 1.35, 1.10, 0.85, 0.90, 1.10}
	seasonGas      = [13]float64{0, 2.20, 2.00, 1.50, 1.00, 0.55, 0.32, 0.25, 0.25, 0.35, 0.80, 1.40, 2.00}
)

package greenbutton

import (
	"math"
	"strconv"

	"github.com/usagestream/usagestream/records"
)

// serviceKind maps a UsagePoint's ServiceCategory kind (ESPI ServiceKind)
// to the project's service type: 0 electricity E, 1 gas G, 2 water W; any
// other kind (heat, refuse, …) has no service type here, so "" (not given).
func serviceKind(v string) string {
	switch v {
	case "0":
		return "E"
	case "1":
		return "G"
	case "2":
		return "W"
	}
	return ""
}

// commodityService is the service type a ReadingType's commodity implies,
// for a block whose UsagePoint entry is not in the file: 1 and 2
// (electricity, secondary and primary metered) E, 7 (natural gas) G.
func commodityService(c int) string {
	switch c {
	case 1, 2:
		return "E"
	case 7:
		return "G"
	}
	return ""
}

// flowChannel maps a ReadingType's flowDirection to the read's channel
// (service_quantity_identifier): forward (1), or none given (0), is the main
// channel ""; reverse (19), energy the customer sends back, is "reverse";
// any other direction keeps its code, "flow<N>", so that it is never summed
// into the main channel.
func flowChannel(f int) string {
	switch f {
	case 0, 1:
		return ""
	case 19:
		return "reverse"
	}
	return "flow" + strconv.Itoa(f)
}

// quality maps one ESPI QualityOfReading code to the estimate flag: valid
// (0), raw (14), validated (17), verified (18) and revenue quality (19) are
// actual reads; manually edited (7), estimated (8, 9), questionable (10),
// derived (11), projected (12), mixed (13), weather-normalized (15) and other
// (16) are not, so they count as estimated. Any other code is not one.
func quality(v string) (records.Estimate, bool) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, false
	}
	switch {
	case n == 0, n == 14, n >= 17 && n <= 19:
		return records.EstimateActual, true
	case n >= 7 && n <= 16:
		return records.EstimateEstimated, true
	}
	return 0, false
}

// uomUnit maps an ESPI UnitSymbol code to the project's unit and the power
// of ten that converts into it: watt-hours become kWh (10^-3), var-hours
// kVARh; therms, cubic feet, cubic metres and US gallons stay as they are.
func uomUnit(uom int) (unit string, exp int, ok bool) {
	switch uom {
	case 72:
		return "KWH", -3, true
	case 73:
		return "KVARH", -3, true
	case 169:
		return "THERM", 0, true
	case 119:
		return "CF", 0, true
	case 42:
		return "M3", 0, true
	case 128:
		return "GAL", 0, true
	}
	return "", 0, false
}

// scale is v·10^exp, dividing for a negative exp so that 450 Wh is exactly
// the float64 nearest 0.45 kWh, as the text "0.45" would parse.
func scale(v int64, exp int) float64 {
	if exp >= 0 {
		return float64(v) * math.Pow10(exp)
	}
	return float64(v) / math.Pow10(-exp)
}

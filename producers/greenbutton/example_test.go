package greenbutton_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/usagestream/usagestream/producers/greenbutton"
)

// A Green Button export with one hourly reading of 1,250 Wh and one whose
// value is not a number: the first becomes a read in kWh with its local time
// in the utility's zone, the second a rejected reading naming its XML line.
func ExampleNewReader() {
	const up = "https://utility.example/espi/1_1/resource/Subscription/5/UsagePoint/SP-17"
	doc := `<feed xmlns="http://www.w3.org/2005/Atom">
<entry><link rel="self" href="` + up + `"/>
  <content><UsagePoint xmlns="http://naesb.org/espi"><ServiceCategory><kind>0</kind></ServiceCategory></UsagePoint></content></entry>
<entry><link rel="self" href="` + up + `/MeterReading/1"/><link rel="related" href="https://utility.example/espi/1_1/resource/ReadingType/1"/>
  <content><MeterReading xmlns="http://naesb.org/espi"/></content></entry>
<entry><link rel="self" href="https://utility.example/espi/1_1/resource/ReadingType/1"/>
  <content><ReadingType xmlns="http://naesb.org/espi"><powerOfTenMultiplier>0</powerOfTenMultiplier><uom>72</uom></ReadingType></content></entry>
<entry><link rel="self" href="` + up + `/MeterReading/1/IntervalBlock/1"/>
  <content><IntervalBlock xmlns="http://naesb.org/espi">
    <IntervalReading><timePeriod><duration>3600</duration><start>1717214400</start></timePeriod><value>1250</value></IntervalReading>
    <IntervalReading><timePeriod><duration>3600</duration><start>1717218000</start></timePeriod><value>n/a</value></IntervalReading>
  </IntervalBlock></content></entry>
</feed>`
	loc, _ := time.LoadLocation("America/New_York")
	r, err := greenbutton.NewReader("export.xml", strings.NewReader(doc), greenbutton.Options{Location: loc})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println(err) // a *filereader.FileError naming the line
			return
		}
		if rd := rec.Read; rd != nil {
			fmt.Printf("line %d: %s %s %02d:%02d %+d min, %d minutes, %g %s %c\n", rd.Line, rd.ServicePointID, rd.LocalDate.ISO(),
				rd.LocalTime/60, rd.LocalTime%60, rd.OffsetMinutes, rd.Minutes, rd.Value, rd.Units, rd.Estimate)
			continue
		}
		for _, why := range rec.Rejected.Reasons {
			fmt.Printf("line %d rejected: %s %s\n", rec.Rejected.Line, why.Field, why.Code)
		}
	}
	// Output:
	// line 10: SP-17 2024-06-01 01:00 -240 min, 60 minutes, 1.25 KWH A
	// line 11 rejected: value BAD_NUMBER
}

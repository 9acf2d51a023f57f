package gen

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// GreenButtonFileName is the name of the Green Button file c describes: the
// interval file's name with .xml before the compression's extension, so
// that ingest takes the utility and the interval length from it.
func GreenButtonFileName(c IntervalConfig) string {
	c, _ = c.withDefaults()
	ext := map[string]string{"gzip": ".xml.gz", "zip": ".xml.zip", "none": ".xml"}[c.Compression]
	return fmt.Sprintf("opwr_%s_%s_%s_interval%d_%s%s", c.Utility, c.Population, c.SpecVersion, c.Minutes, c.Now.UTC().Format("20060102150405"), ext)
}

// GenerateGreenButton writes the Green Button (ESPI) file c describes into
// dir and returns its path and how many IntervalReadings it holds.
func GenerateGreenButton(dir string, c IntervalConfig) (path string, rows int64, err error) {
	c, err = c.withDefaults()
	if err != nil {
		return "", 0, err
	}
	name := GreenButtonFileName(c)
	return writeFile(filepath.Join(dir, name), c.Compression, strings.TrimSuffix(name, ".zip"),
		func(w io.Writer) (int64, error) { return WriteGreenButton(w, c) })
}

// GreenButtonHref is the base of the resource links of generated files; a
// UsagePoint is GreenButtonHref + "/UsagePoint/" + its service point id.
const GreenButtonHref = "https://utility.example/DataCustodian/espi/1_1/resource/Subscription/1"

// WriteGreenButton writes c's reads as a Green Button feed, indented as
// utilities' exports are: one ReadingType (watt-hours, multiplier 0, the
// interval length, forward flow, delta data), then per service point a
// UsagePoint (electricity), a MeterReading and one IntervalBlock per local
// day. The values, in whole Wh, follow the same daily shape and seed as
// WriteIntervals; 2% of readings carry ReadingQuality 8 (estimated).
func WriteGreenButton(w io.Writer, c IntervalConfig) (rows int64, err error) {
	c, err = c.withDefaults()
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	step := time.Duration(c.Minutes) * time.Minute
	type day struct {
		from, to int64 // Unix seconds of the local day's bounds
		starts   []int64
		hours    []float64
	}
	var days []day
	for d := 0; d < c.Days; d++ {
		y, m, dd := c.Start.AddDays(d).Civil()
		from := time.Date(y, m, dd, 0, 0, 0, 0, c.Location)
		to := time.Date(y, m, dd+1, 0, 0, 0, 0, c.Location)
		dy := day{from: from.Unix(), to: to.Unix()}
		if c.Minutes == 1440 {
			dy.starts, dy.hours = []int64{from.Unix()}, []float64{12}
		} else {
			for t := from; t.Before(to); t = t.Add(step) {
				lt := t.Add(step).In(c.Location)
				dy.starts = append(dy.starts, t.Unix())
				dy.hours = append(dy.hours, float64(lt.Hour())+float64(lt.Minute())/60)
			}
		}
		days = append(days, dy)
	}
	length := int64(c.Minutes) * 60
	fmt.Fprintf(bw, `<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:espi="http://naesb.org/espi">
  <id>urn:uuid:usagestream-gen-%d</id>
  <title>Green Button export (generated)</title>
  <updated>%s</updated>
  <entry>
    <link rel="self" href="%s/ReadingType/1"/>
    <title>Energy delivered</title>
    <content>
      <ReadingType xmlns="http://naesb.org/espi">
        <accumulationBehaviour>4</accumulationBehaviour>
        <commodity>1</commodity>
        <flowDirection>1</flowDirection>
        <intervalLength>%d</intervalLength>
        <kind>12</kind>
        <powerOfTenMultiplier>0</powerOfTenMultiplier>
        <uom>72</uom>
      </ReadingType>
    </content>
  </entry>
`, c.Seed, c.Now.UTC().Format(time.RFC3339), GreenButtonHref, length)
	shape := func(h float64) float64 {
		return 0.35 + 0.9*math.Exp(-(h-7.5)*(h-7.5)/2) + 1.4*math.Exp(-(h-19)*(h-19)/4.5)
	}
	rng := splitmix(uint64(c.Seed)*0x9E3779B97F4A7C15 + 1)
	perHour := float64(c.Minutes) / 60
	b := make([]byte, 0, 256)
	for sp := 1; sp <= c.ServicePoints; sp++ {
		scale := 0.5 + rng.float()*1.5
		id := string(appendSPID(nil, 'E', int64(sp)))
		up := GreenButtonHref + "/UsagePoint/" + id
		fmt.Fprintf(bw, `  <entry>
    <link rel="self" href="%[1]s"/>
    <link rel="related" href="%[1]s/MeterReading"/>
    <content>
      <UsagePoint xmlns="http://naesb.org/espi">
        <ServiceCategory>
          <kind>0</kind>
        </ServiceCategory>
      </UsagePoint>
    </content>
  </entry>
  <entry>
    <link rel="self" href="%[1]s/MeterReading/1"/>
    <link rel="related" href="%[1]s/MeterReading/1/IntervalBlock"/>
    <link rel="related" href="%[2]s/ReadingType/1"/>
    <content>
      <MeterReading xmlns="http://naesb.org/espi"/>
    </content>
  </entry>
`, up, GreenButtonHref)
		for di, dy := range days {
			fmt.Fprintf(bw, `  <entry>
    <link rel="self" href="%s/MeterReading/1/IntervalBlock/%d"/>
    <content>
      <IntervalBlock xmlns="http://naesb.org/espi">
        <interval>
          <duration>%d</duration>
          <start>%d</start>
        </interval>
`, up, di+1, dy.to-dy.from, dy.from)
			for i, start := range dy.starts {
				dur := length
				if c.Minutes == 1440 {
					dur = dy.to - dy.from
				}
				v := shape(dy.hours[i]) * scale * perHour * (0.75 + 0.5*rng.float())
				if c.Minutes == 1440 {
					v = 0
					for h := 0.5; h < 24; h++ {
						v += shape(h) * scale
					}
				}
				b = append(b[:0], "        <IntervalReading>\n"...)
				if rng.next()%50 == 0 {
					b = append(b, "          <ReadingQuality>\n            <quality>8</quality>\n          </ReadingQuality>\n"...)
				}
				b = append(b, "          <timePeriod>\n            <duration>"...)
				b = strconv.AppendInt(b, dur, 10)
				b = append(b, "</duration>\n            <start>"...)
				b = strconv.AppendInt(b, start, 10)
				b = append(b, "</start>\n          </timePeriod>\n          <value>"...)
				b = strconv.AppendInt(b, int64(math.Round(v*1000)), 10)
				b = append(b, "</value>\n        </IntervalReading>\n"...)
				if _, err := bw.Write(b); err != nil {
					return rows, fmt.Errorf("gen: writing Green Button: %w", err)
				}
				rows++
			}
			bw.WriteString("      </IntervalBlock>\n    </content>\n  </entry>\n")
		}
	}
	bw.WriteString("</feed>\n")
	if err := bw.Flush(); err != nil {
		return rows, fmt.Errorf("gen: writing Green Button: %w", err)
	}
	return rows, nil
}

package gen

import (
	"archive/zip"
	"bufio"
	"compress/gzip"

	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

// IntervalConfig says what interval file (docs/data-contract.md §3) to generate.
type IntervalConfig struct {
	Utility     string // default "gec"
	Population  string // default "res"
	SpecVersion string // default "v1-19-0"
	// ServicePoints are electric service points SP-E-00000001 upwards, the
	// ids the billing generator gives the electric service points.
	ServicePoints int
	Start         dates.Date // first local day; default: Days before Now
	Days          int        // default 1
	Minutes       int        // 5, 15, 30, 60 or 1440; default 15
	// Location is the utility's zone: local times and UTC_offset follow it,
	// so a file over a daylight-saving change has a day of 23 or 25 hours.
	// Default America/New_York.
	Location    *time.Location
	Seed        int64
	Now         time.Time // file-name timestamp; zero: time.Now()
	Compression string    // gzip (default), zip or none
}

func (c IntervalConfig) withDefaults() (IntervalConfig, error) {
	if c.Utility == "" {
		c.Utility = DefaultUtility
	}
	if c.Population == "" {
		c.Population = "res"
	}
	if c.SpecVersion == "" {
		c.SpecVersion = "v1-19-0"
	}
	if c.ServicePoints <= 0 {
		c.ServicePoints = 1000
	}
	if c.Days <= 0 {
		c.Days = 1
	}
	if c.Minutes == 0 {
		c.Minutes = 15
	}
	if !records.ValidIntervalLength(c.Minutes) {
		return c, fmt.Errorf("gen: interval length %d minutes is not one of 5, 15, 30, 60, 1440", c.Minutes)
	}
	if c.Now.IsZero() {
		c.Now = time.Now().UTC()
	}
	if c.Location == nil {
		loc, err := time.LoadLocation("America/New_York")
		if err != nil {
			return c, fmt.Errorf("gen: loading the default zone America/New_York (%w); give IntervalConfig.Location", err)
		}
		c.Location = loc
	}
	if c.Start == 0 {
		c.Start = dates.FromTime(c.Now).AddDays(-c.Days)
	}
	if c.Compression == "" {
		c.Compression = "gzip"
	}
	return c, nil
}

// IntervalFileName is the conventional name of the file c describes.
func IntervalFileName(c IntervalConfig) string {
	c, _ = c.withDefaults()
	ext := map[string]string{"gzip": ".gz", "zip": ".zip", "none": ".tsv"}[c.Compression]
	return fmt.Sprintf("opwr_%s_%s_%s_interval%d_%s%s", c.Utility, c.Population, c.SpecVersion, c.Minutes, c.Now.UTC().Format("20060102150405"), ext)
}

// GenerateIntervals writes the file c describes into dir and returns its path
// and how many reads it holds.
func GenerateIntervals(dir string, c IntervalConfig) (path string, rows int64, err error) {
	c, err = c.withDefaults()
	if err != nil {
		return "", 0, err
	}
	name := IntervalFileName(c)
	return writeFile(filepath.Join(dir, name), c.Compression, strings.TrimSuffix(name, ".zip")+".tsv",
		func(w io.Writer) (int64, error) { return WriteIntervals(w, c) })
}

// writeFile writes the file at path whose content write makes, compressed
// as compression says (gzip; zip, holding one file named entry; none), and
// returns path and what write counted.
func writeFile(path, compression, entry string, write func(io.Writer) (int64, error)) (_ string, rows int64, err error) {
	var w io.Writer
	var closer io.Closer
	f, err := os.Create(path)
	if err != nil {
		return "", 0, fmt.Errorf("gen: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("gen: %w", cerr)
		}
	}()
	switch compression {
	case "gzip":
		zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed) // the level is valid
		w, closer = zw, zw
	case "zip":
		zw := zip.NewWriter(f)
		ew, err := zw.Create(entry)
		if err != nil {
			return "", 0, fmt.Errorf("gen: %w", err)
		}
		w, closer = ew, zw
	case "none":
		w = f
	default:
		return "", 0, fmt.Errorf("gen: compression %q: use gzip, zip or none", compression)
	}
	if rows, err = write(w); err != nil {
		return "", 0, err
	}
	if closer != nil {
		if err := closer.Close(); err != nil {
			return "", 0, fmt.Errorf("gen: %w", err)
		}
	}
	return path, rows, nil
}

// WriteIntervals writes the header and the reads of c to w: service point
// by service point, each oldest to newest (docs/data-contract.md §2.5). Values follow
// a residential daily shape (night base load, morning and evening peaks)
// scaled per service point, with noise; 2% of reads are estimated.
func WriteIntervals(w io.Writer, c IntervalConfig) (rows int64, err error) {
	c, err = c.withDefaults()
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	bw.WriteString(strings.Join(records.IntervalColumns(), "\t"))
	bw.WriteByte('\n')
	step := time.Duration(c.Minutes) * time.Minute
	// The instants of the file's local days are the same for every service
	// point: work them out once.
	type slot struct {
		local []byte // date \t time \t
		off   []byte // UTC_offset
		hour  float64
	}
	var slots []slot
	for d := 0; d < c.Days; d++ {
		y, m, day := c.Start.AddDays(d).Civil()
		from := time.Date(y, m, day, 0, 0, 0, 0, c.Location)
		to := time.Date(y, m, day+1, 0, 0, 0, 0, c.Location)
		// A daily read ends at the next local midnight, 23 or 25 hours
		// on a daylight saving change: stepping 24 hours from midnight
		// lost the short day and ended the long one at 23:00.
		first := from.Add(step)
		if c.Minutes == 1440 {
			first = to
		}
		for t := first; !t.After(to); t = t.Add(step) {
			lt := t.In(c.Location)
			_, off := lt.Zone()
			var s slot
			s.local = lt.AppendFormat(nil, "20060102\t1504\t")
			s.off = appendOffset(nil, off/60)
			s.hour = float64(lt.Hour()) + float64(lt.Minute())/60
			slots = append(slots, s)
		}
	}
	shape := func(h float64) float64 { // kWh per hour for a mean house
		return 0.35 + 0.9*math.Exp(-(h-7.5)*(h-7.5)/2) + 1.4*math.Exp(-(h-19)*(h-19)/4.5)
	}
	rng := splitmix(uint64(c.Seed)*0x9E3779B97F4A7C15 + 1)
	perHour := float64(c.Minutes) / 60
	line := make([]byte, 0, 128)
	for sp := 1; sp <= c.ServicePoints; sp++ {
		scale := 0.5 + rng.float()*1.5
		id := appendSPID(nil, 'E', int64(sp))
		for _, s := range slots {
			v := shape(s.hour) * scale * perHour * (0.75 + 0.5*rng.float())
			est := byte('A')
			if rng.next()%50 == 0 {
				est = 'E'
			}
			line = append(line[:0], id...)
			line = append(line, '\t')
			line = strconv.AppendFloat(line, math.Round(v*1000)/1000, 'f', -1, 64)
			line = append(line, '\t')
			line = append(line, s.local...)
			line = append(line, "KWH\t"...)
			line = append(line, est, '\t')
			line = append(line, s.off...)
			line = append(line, "\tE\t\n"...)
			if _, err := bw.Write(line); err != nil {
				return rows, fmt.Errorf("gen: writing intervals: %w", err)
			}
			rows++
		}
	}
	if err := bw.Flush(); err != nil {
		return rows, fmt.Errorf("gen: writing intervals: %w", err)
	}
	return rows, nil
}

func appendOffset(b []byte, min int) []byte {
	sign := byte('+')
	if min < 0 {
		sign, min = '-', -min
	}
	return append(b, sign, byte('0'+min/600), byte('0'+min/60%10), byte('0'+min%60/10), byte('0'+min%10))
}

// splitmixRand is a tiny deterministic generator (SplitMix64): the same seed
// gives the same file on every platform and Go version, which math/rand does
// not promise.
type splitmixRand struct{ s uint64 }

func splitmix(seed uint64) *splitmixRand { return &splitmixRand{s: seed} }

func (r *splitmixRand) next() uint64 {
	r.s += 0x9E3779B97F4A7C15
	z := r.s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func (r *splitmixRand) float() float64 { return float64(r.next()>>11) / (1 << 53) }

package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/producers/gen"
)

type genCmd struct {
	Out           string  `name:"out" short:"o" default:"." help:"Folder to write the files and labels.json into."`
	ServicePoints int     `name:"service-points" default:"1000" help:"About how many service points (electric, plus gas at --gas-share of premises)."`
	Months        int     `name:"months" default:"0" help:"Months of billing history per service point (0: from --start to last month)."`
	Start         string  `name:"start" help:"First period start, yyyymmdd (default: January 1 of last year)."`
	GasShare      float64 `name:"gas-share" default:"0.3" help:"Share of premises that also have gas."`
	Seed          int64   `name:"seed" default:"1" help:"Same seed, same files."`
	Split         bool    `name:"split" help:"Write a customer file and a usage file instead of one full file."`
	Compression   string  `name:"compression" enum:"gzip,zip,none" default:"gzip" help:"gzip, zip, or none (plain .tsv)."`
	Anomalies     string  `name:"anomalies" default:"" help:"Anomalies to inject, e.g. U2_GAP=3,A7_RATE_NOT_ALLOWED=2, or all=1."`
	Utility       string  `name:"utility" default:"gec" help:"Utility code in the file names."`
	Population    string  `name:"population" default:"res" help:"res, nonres, nonres-smb or nonres-lci."`
	Now           string  `name:"now" help:"Pretend today is this date (yyyymmdd), for reproducible file names."`

	Interval int    `name:"interval" enum:"0,5,15,30,60,1440" default:"0" help:"Write an interval file of this many minutes per read instead of billing files (0: billing)."`
	Days     int    `name:"days" default:"1" help:"With --interval: local days of reads per service point, from --start (default: the days before --now)."`
	TZ       string `name:"tz" default:"America/New_York" help:"With --interval: the utility's time zone; UTC_offset follows it, daylight saving included."`
	Format   string `name:"format" enum:"opower,greenbutton" default:"opower" help:"With --interval: opower (a tab-separated interval file) or greenbutton (Green Button ESPI XML, .xml.gz)."`
}

func (c *genCmd) Run(_ context.Context, g *Globals) error {
	cfg := gen.Config{
		Utility: c.Utility, Population: c.Population, ServicePoints: c.ServicePoints, Months: c.Months,
		Seed: c.Seed, GasShare: c.GasShare, Split: c.Split, Compression: c.Compression,
	}
	if c.Start != "" {
		d, err := dates.Parse(c.Start)
		if err != nil {
			return fmt.Errorf("--start %q: %w", c.Start, err)
		}
		cfg.Start = d
	}
	if c.Now != "" {
		d, err := dates.Parse(c.Now)
		if err != nil {
			return fmt.Errorf("--now %q: %w", c.Now, err)
		}
		cfg.Now = d.Time().Add(12 * time.Hour)
	}
	if c.Anomalies != "" {
		a, err := gen.ParseAnomalies(c.Anomalies)
		if err != nil {
			return err
		}
		cfg.Anomalies = a
	}
	if err := os.MkdirAll(c.Out, 0o750); err != nil {
		return fmt.Errorf("creating --out %s: %w", c.Out, err)
	}
	if c.Interval > 0 {
		return c.intervals(g, cfg)
	}
	res, err := gen.Generate(c.Out, cfg)
	if err != nil {
		return err
	}
	for _, f := range res.Files {
		fmt.Println(f)
	}
	g.log.Info("generated", "files", len(res.Files), "rows", res.Rows, "labels", len(res.Labels))
	return nil
}

// intervals writes one interval file (--interval) for the electric service
// points the billing files would have.
func (c *genCmd) intervals(g *Globals, cfg gen.Config) error {
	loc, err := time.LoadLocation(c.TZ)
	if err != nil {
		return fmt.Errorf("--tz %q: %w; give an IANA zone name such as America/New_York", c.TZ, err)
	}
	ic := gen.IntervalConfig{Utility: cfg.Utility, Population: cfg.Population, ServicePoints: cfg.ServicePoints, Start: cfg.Start,
		Days: c.Days, Minutes: c.Interval, Location: loc, Seed: cfg.Seed, Now: cfg.Now, Compression: cfg.Compression}
	write := gen.GenerateIntervals
	if c.Format == "greenbutton" {
		write = gen.GenerateGreenButton
	}
	path, rows, err := write(c.Out, ic)
	if err != nil {
		return err
	}
	fmt.Println(path)
	g.log.Info("generated", "files", 1, "reads", rows)
	return nil
}

package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/gen"
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

package main

import (
	"io"
	"log/slog"
	"os"

	"golang.org/x/term"

	"github.com/usagestream/usagestream/internal/loglevel"
)

// isTerminal reports whether f is an interactive terminal.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// newLogger logs text for a person at a terminal and JSON for machines, at
// --log-level. The handler under it logs every level, so that the Kafka
// client's lines (kafkaconf.Config.ClientLogger) follow --kafka-log-level
// on the same output whatever --log-level is.
// Loggers never receive row values: rows carry names and addresses.
func newLogger(w *os.File, level, format string) *slog.Logger {
	return newLoggerTo(w, level, format == "json" || (format == "auto" && !isTerminal(w)))
}

func newLoggerTo(w io.Writer, level string, json bool) *slog.Logger {
	lv, err := loglevel.Parse(level, slog.LevelInfo)
	if err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if json {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(loglevel.New(h, lv))
}

// Package loglevel gives one slog handler chain several minimum levels:
// usagestream's own lines at --log-level and the Kafka client's at
// --kafka-log-level, written by the same handler (same format, same
// destination), so that quieting the client does not quiet the program.
package loglevel

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// None is a level above every record's: nothing is logged.
const None = slog.Level(1 << 10)

// Parse reads debug, info, warn, error or none (case-insensitive); the empty
// string is def.
func Parse(s string, def slog.Level) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "":
		return def, nil
	case "none", "off":
		return None, nil
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(s)); err != nil {
		return def, fmt.Errorf("log level %q: use debug, info, warn, error or none", s)
	}
	return lv, nil
}

// Handler passes on the records at or above its minimum level to its base
// handler (which may filter further).
type Handler struct {
	base slog.Handler
	min  slog.Leveler
}

// New returns base with the minimum level min.
func New(base slog.Handler, min slog.Leveler) *Handler {
	if h, ok := base.(*Handler); ok {
		base = h.base
	}
	return &Handler{base: base, min: min}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min.Level() && h.base.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error { return h.base.Handle(ctx, r) }

// WithAttrs implements slog.Handler; the level stays.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{base: h.base.WithAttrs(as), min: h.min}
}

// WithGroup implements slog.Handler; the level stays.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{base: h.base.WithGroup(name), min: h.min}
}

// Override returns l (its attributes and destination) with the minimum
// level min instead of its own: when l's handler is a Handler, its base
// handler gets min, which may be below l's level; otherwise l's handler is
// filtered further, so min cannot go below what l logs already.
func Override(l *slog.Logger, min slog.Leveler) *slog.Logger {
	return slog.New(New(l.Handler(), min))
}

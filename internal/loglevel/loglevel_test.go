package loglevel

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestOverrideSetsItsOwnLevelBothWays(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	base := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	app := slog.New(New(base, slog.LevelWarn)).With("component", "app")
	app.Info("app info")
	app.Warn("app warn")
	client := Override(app.With("component", "kgo"), slog.LevelDebug)
	client.Debug("client debug")
	quiet := Override(app, None)
	quiet.Error("never")
	out := buf.String()
	for _, want := range []string{"app warn", "client debug", "component=kgo"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	for _, not := range []string{"app info", "never"} {
		if strings.Contains(out, not) {
			t.Errorf("%q logged below its level:\n%s", not, out)
		}
	}
}

func TestOverrideOfAForeignHandlerOnlyFiltersFurther(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	Override(l, slog.LevelDebug).Debug("below the base handler")
	Override(l, slog.LevelWarn).Info("below the override")
	Override(l, slog.LevelWarn).Warn("shown")
	if out := buf.String(); strings.Contains(out, "below") || !strings.Contains(out, "shown") {
		t.Fatal(out)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]slog.Level{"": slog.LevelWarn, "debug": slog.LevelDebug, "INFO": slog.LevelInfo, "error": slog.LevelError, "none": None} {
		if got, err := Parse(in, slog.LevelWarn); err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := Parse("loud", slog.LevelWarn); err == nil || !strings.Contains(err.Error(), "debug, info, warn, error or none") {
		t.Fatalf("bad level: %v", err)
	}
}

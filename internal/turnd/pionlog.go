package turnd

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLoggerFactory sends pion's logs to slog at debug, whatever pion's level: pion logs
// what clients cause (a failed TLS handshake, an unknown attribute) as errors, and this
// package logs the refusals itself, rate-limited. Formatting is skipped when debug is off,
// since pion logs every datagram.
type pionLoggerFactory struct{ log *slog.Logger }

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) emit(level string, msg string) {
	l.log.Debug(msg, "pion_level", level)
}

func (l pionLogger) on() bool { return l.log.Enabled(context.Background(), slog.LevelDebug) }

func (l pionLogger) logf(level, format string, args ...any) {
	if l.on() {
		l.emit(level, fmt.Sprintf(format, args...))
	}
}

func (l pionLogger) Trace(msg string)                  {}
func (l pionLogger) Tracef(format string, args ...any) {}
func (l pionLogger) Debug(msg string)                  { l.logf("debug", "%s", msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.logf("debug", format, args...) }
func (l pionLogger) Info(msg string)                   { l.logf("info", "%s", msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.logf("info", format, args...) }
func (l pionLogger) Warn(msg string)                   { l.logf("warn", "%s", msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.logf("warn", format, args...) }
func (l pionLogger) Error(msg string)                  { l.logf("error", "%s", msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.logf("error", format, args...) }

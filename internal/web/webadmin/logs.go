package webadmin

import (
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// ---- Logs > Event log ------------------------------------------------------------------

// logPageSize is how many records a page of the event log shows.
const logPageSize = 50

type logsBody struct {
	Records    []LogRecord
	Total      int // records that match, before paging
	Kept       int // records kept in all
	Query      string
	Level      string // "", debug, info, warn, error: that level and above
	Component  string
	Components []string // every component among the kept records
	Levels     []string
	Page       int // 1-based
	Pages      int
	Newer      string // link to the previous (newer) page, "" on the first
	Older      string
	First      int // 1-based index of the first record shown
}

var logLevels = []string{"debug", "info", "warn", "error"}

func parseLevel(s string) (slog.Level, bool) {
	var l slog.Level
	if s == "" || l.UnmarshalText([]byte(s)) != nil {
		return 0, false
	}
	return l, true
}

// levelName is a record's level as the page shows it.
func levelName(l slog.Level) string { return strings.ToLower(l.String()) }

// levelClass is the pill colour of a level.
func levelClass(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "failed"
	case l >= slog.LevelWarn:
		return "warn"
	case l >= slog.LevelInfo:
		return "ok"
	}
	return "none"
}

// matches reports whether a record contains q (lower case) in its message, component or
// any attribute's key or value.
func matches(r LogRecord, q string) bool {
	if q == "" {
		return true
	}
	if strings.Contains(strings.ToLower(r.Message), q) || strings.Contains(strings.ToLower(r.Component), q) {
		return true
	}
	for _, a := range r.Attrs {
		if strings.Contains(strings.ToLower(a.Key), q) || strings.Contains(strings.ToLower(a.Value), q) {
			return true
		}
	}
	return false
}

func (s *server) logsPage(w http.ResponseWriter, r *http.Request, sess *session) {
	qv := r.URL.Query()
	body := logsBody{Query: strings.TrimSpace(qv.Get("q")), Level: qv.Get("level"), Component: qv.Get("component"), Levels: logLevels}
	if len(body.Query) > 200 {
		body.Query = body.Query[:200]
	}
	minLevel, byLevel := parseLevel(body.Level)
	if !byLevel {
		body.Level = ""
	}
	all := s.b.LogRecords()
	body.Kept = len(all)
	comps := map[string]bool{}
	q := strings.ToLower(body.Query)
	var hits []LogRecord
	for _, rec := range all {
		comps[rec.Component] = true
		if byLevel && rec.Level < minLevel {
			continue
		}
		if body.Component != "" && rec.Component != body.Component {
			continue
		}
		if matches(rec, q) {
			hits = append(hits, rec)
		}
	}
	for c := range comps {
		body.Components = append(body.Components, c)
	}
	sort.Strings(body.Components)
	// Newest first, whatever order the Backend gave.
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].Time.After(hits[j].Time) })
	body.Total = len(hits)
	body.Pages = max(1, (len(hits)+logPageSize-1)/logPageSize)
	body.Page, _ = strconv.Atoi(qv.Get("page"))
	body.Page = min(max(body.Page, 1), body.Pages)
	from := (body.Page - 1) * logPageSize
	body.Records = hits[from:min(from+logPageSize, len(hits))]
	body.First = from + 1
	link := func(page int) string {
		v := url.Values{}
		for k, val := range map[string]string{"q": body.Query, "level": body.Level, "component": body.Component} {
			if val != "" {
				v.Set(k, val)
			}
		}
		if page > 1 {
			v.Set("page", strconv.Itoa(page))
		}
		if len(v) == 0 {
			return "/admin/logs"
		}
		return "/admin/logs?" + v.Encode()
	}
	if body.Page > 1 {
		body.Newer = link(body.Page - 1)
	}
	if body.Page < body.Pages {
		body.Older = link(body.Page + 1)
	}
	s.render(w, r, http.StatusOK, "logs.html", s.page(sess, "logs", "Event log", body))
}

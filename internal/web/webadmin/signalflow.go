package webadmin

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"confab.dev/confab/internal/callbridge/linkstate"
)

// The signal flow of docs/signalling.md as a ladder diagram: four lanes and one row per
// step, each row an arrow between the lanes that take part in the step.

type lane int

const (
	laneWeb lane = iota
	laneXMPP
	laneCB
	laneDNS
)

var laneNames = [...]string{laneWeb: "Web client", laneXMPP: "XMPP server", laneCB: "Call Bridge", laneDNS: "DNS"}

// stepDef is one row of the ladder.
type stepDef struct {
	n        int
	step     linkstate.Step // 0 for step 1, which the link does not record
	from, to lane
	both     bool   // a two-way exchange (TLS, the active link)
	label    string // short, on the arrow
}

var ladder = []stepDef{
	{n: 1, from: laneWeb, to: laneXMPP, label: "Login needs an active link"},
	{n: 2, step: linkstate.StepConfig, from: laneCB, to: laneCB, label: "Read XMPP settings"},
	{n: 3, step: linkstate.StepOverride, from: laneCB, to: laneCB, label: "Server address set?"},
	{n: 4, step: linkstate.StepSRV, from: laneCB, to: laneDNS, label: "SRV lookup"},
	{n: 5, step: linkstate.StepResolve, from: laneCB, to: laneDNS, label: "A / AAAA lookup"},
	{n: 6, step: linkstate.StepConnect, from: laneCB, to: laneXMPP, label: "TCP connect"},
	{n: 7, step: linkstate.StepTLS, from: laneCB, to: laneXMPP, both: true, label: "TLS handshake"},
	{n: 8, step: linkstate.StepSAN, from: laneXMPP, to: laneCB, label: "Certificate: domain + FQDN SANs"},
	{n: 9, step: linkstate.StepHandshake, from: laneCB, to: laneXMPP, label: "Component stream + handshake"},
	{n: 10, step: linkstate.StepVerdict, from: laneXMPP, to: laneCB, label: "<handshake/> or stream error"},
	{n: 11, step: linkstate.StepActive, from: laneCB, to: laneXMPP, both: true, label: "Link active (keepalive)"},
	{n: 12, step: linkstate.StepLogin, from: laneXMPP, to: laneCB, label: "Login relayed over the link"},
}

const step1Title = "A web login can succeed only while the XMPP server has an active link to a Call Bridge"

// Outcome classes of a step in the diagram.
const (
	classOK      = "ok"
	classFailed  = "failed"
	classSkipped = "skipped"
	classNone    = "none" // not run in the latest attempt
)

// StepView is one step as the status page and its JSON show it.
type StepView struct {
	N        int    `json:"n"`
	Name     string `json:"name"`
	Title    string `json:"title"`
	Label    string `json:"label"`
	Class    string `json:"class"`   // ok | failed | skipped | none
	Outcome  string `json:"outcome"` // words: "OK", "Failed", "Skipped", "Not run"
	Time     string `json:"time,omitempty"`
	Stamp    string `json:"stamp,omitempty"` // RFC 3339, for <time datetime>
	Duration string `json:"duration,omitempty"`
	Attempt  uint64 `json:"attempt,omitempty"`
	Target   string `json:"target,omitempty"`
	Cause    string `json:"cause,omitempty"`
	Detail   string `json:"detail,omitempty"`
	Remedy   string `json:"remedy,omitempty"`
	// Server is the XMPP server of steps 5 to 11.
	Server string `json:"server,omitempty"`
	// Summary and Note are the two lines beside the row in the diagram.
	Summary string `json:"summary"`
	Note    string `json:"note,omitempty"`
	// Tooltip is the row's SVG <title>.
	Tooltip string `json:"tooltip"`
}

// finish fills the derived text of a step.
func (v *StepView) finish() {
	v.Summary = join(" · ", v.Outcome, v.Time, v.Duration)
	v.Note = v.Cause
	if v.Note == "" && v.Class == classOK && v.Target != "" {
		v.Note = v.Target
	}
	v.Tooltip = join(" — ", fmt.Sprintf("%d. %s", v.N, v.Title), v.Detail, v.Remedy)
}

func join(sep string, parts ...string) string {
	out := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		if out != "" {
			out += sep
		}
		out += p
	}
	return out
}

// flowSteps returns the twelve steps coloured by their outcome in the link's latest
// attempt: a step the latest attempt did not reach is grey even if an earlier attempt ran
// it, so that the diagram never shows a stale green after a failure. Steps 5 to 11 are
// those of one XMPP server (see flowServers): never a mix of two SRV targets'.
func flowSteps(st linkstate.Status, events []linkstate.Event) []StepView {
	steps, _ := flow(st, events)
	return steps
}

// latestAttempt returns the events of the link's latest attempt (and the logins since).
func latestAttempt(events []linkstate.Event) []linkstate.Event {
	var latest uint64
	for _, e := range events {
		if e.Step >= linkstate.StepConfig && e.Step <= linkstate.StepActive && e.Attempt > latest {
			latest = e.Attempt
		}
	}
	var out []linkstate.Event
	for _, e := range events {
		if e.Attempt == latest {
			out = append(out, e)
		}
	}
	return out
}

// perServer reports whether step is run once per XMPP server tried.
func perServer(step linkstate.Step) bool {
	return step >= linkstate.StepResolve && step <= linkstate.StepActive
}

// serverRun is what the latest attempt did against one XMPP server.
type serverRun struct {
	server   string
	last     map[linkstate.Step]linkstate.Event
	furthest linkstate.Step
	ok       bool // registered (or, for a test, got through)
}

// flow returns the ladder's twelve steps, for the XMPP server the attempt registered with or
// that got furthest (the one the alarm speaks of), and every server tried, in order.
func flow(st linkstate.Status, events []linkstate.Event) ([]StepView, []serverRun) {
	shared := make(map[linkstate.Step]linkstate.Event)
	var runs []*serverRun
	byServer := make(map[string]*serverRun)
	for _, e := range latestAttempt(events) { // oldest first: the last one of a step wins
		if !perServer(e.Step) || e.Server == "" {
			shared[e.Step] = e
			continue
		}
		r := byServer[e.Server]
		if r == nil {
			r = &serverRun{server: e.Server, last: make(map[linkstate.Step]linkstate.Event)}
			byServer[e.Server] = r
			runs = append(runs, r)
		}
		r.last[e.Step] = e
		r.furthest = max(r.furthest, e.Step)
		if e.Outcome == linkstate.OK && (e.Step == linkstate.StepVerdict || e.Step == linkstate.StepActive) {
			r.ok = true
		}
	}
	// The server shown: the one that registered, else the first that got furthest, as the
	// attempt's failure (and so the alarm) is chosen.
	var primary *serverRun
	for _, r := range runs {
		switch {
		case primary == nil:
			primary = r
		case r.ok && !primary.ok:
			primary = r
		case !primary.ok && r.furthest > primary.furthest:
			primary = r
		}
	}
	out := make([]StepView, 0, len(ladder))
	for _, d := range ladder {
		v := StepView{N: d.n, Label: d.label, Class: classNone, Outcome: "Not run"}
		if d.n == 1 {
			v.Name, v.Title = "login-precondition", step1Title
			v.Time, v.Stamp = clock(st.Since), stamp(st.Since)
			if st.State == linkstate.Registered {
				v.Class, v.Outcome = classOK, "OK"
				v.Detail = "This Call Bridge is registered: the XMPP server can relay web logins to it."
			} else {
				v.Class, v.Outcome = classFailed, "Failed"
				v.Cause = "no-active-link"
				v.Detail = "This Call Bridge is not registered (" + string(st.State) + "): the XMPP server refuses web logins that need it with temporary-auth-failure."
				v.Remedy = "Bring the link up: see the first failed step below."
			}
			v.finish()
			out = append(out, v)
			continue
		}
		v.Name, v.Title = d.step.String(), d.step.Title()
		e, ok := shared[d.step]
		if perServer(d.step) && primary != nil {
			e, ok = primary.last[d.step]
		}
		if ok {
			v.fill(e)
		}
		v.finish()
		out = append(out, v)
	}
	servers := make([]serverRun, len(runs))
	for i, r := range runs {
		servers[i] = *r
	}
	return out, servers
}

// fill sets the outcome of a step from its event.
func (v *StepView) fill(e linkstate.Event) {
	v.Class, v.Outcome = outcomeClass(e.Outcome)
	v.Time, v.Stamp = clock(e.Start), stamp(e.Start)
	v.Duration = duration(e.Duration, e.Millis)
	v.Attempt = e.Attempt
	v.Target, v.Cause, v.Detail, v.Remedy = e.Target, e.Cause, e.Detail, e.Remedy
	v.Server = e.Server
}

// ServerView is one XMPP server the latest attempt tried: its steps 5 to 11 on their own.
type ServerView struct {
	Order  int        `json:"order"` // 1 for the first tried
	Server string     `json:"server"`
	Shown  bool       `json:"shown"` // the server the ladder shows
	Result string     `json:"result"`
	Class  string     `json:"class"`
	Steps  []StepView `json:"steps"`
}

// serverViews describes each server tried, when there were several.
func serverViews(runs []serverRun, shown string) []ServerView {
	if len(runs) < 2 {
		return nil
	}
	out := make([]ServerView, 0, len(runs))
	for i, r := range runs {
		sv := ServerView{Order: i + 1, Server: r.server, Shown: r.server == shown, Class: classOK, Result: "registered"}
		for _, d := range ladder {
			if !perServer(d.step) {
				continue
			}
			v := StepView{N: d.n, Name: d.step.String(), Title: d.step.Title(), Label: d.label, Class: classNone, Outcome: "Not run"}
			if e, ok := r.last[d.step]; ok {
				v.fill(e)
				if v.Class == classFailed && sv.Class != classFailed {
					sv.Class, sv.Result = classFailed, fmt.Sprintf("failed at step %d (%s)", v.N, v.Cause)
				}
			}
			v.finish()
			sv.Steps = append(sv.Steps, v)
		}
		if sv.Class == classOK && !r.ok {
			sv.Class, sv.Result = classNone, "not finished"
		}
		out = append(out, sv)
	}
	return out
}

// FailureView is one line of "What went wrong".
type FailureView struct {
	N      int    `json:"n"`
	Title  string `json:"title"`
	Server string `json:"server,omitempty"`
	Cause  string `json:"cause,omitempty"`
	Detail string `json:"detail,omitempty"`
	Remedy string `json:"remedy,omitempty"`
}

// failures lists every failed step of the latest attempt, the first step first, and for a
// step run against several servers, each server's failure on its own line, in the order
// the servers were tried.
func failures(steps []StepView, servers []ServerView) []FailureView {
	type item struct {
		f     FailureView
		order int
	}
	var items []item
	add := func(v StepView, order int) {
		items = append(items, item{FailureView{N: v.N, Title: v.Title, Server: v.Server, Cause: v.Cause, Detail: v.Detail, Remedy: v.Remedy}, order})
	}
	for _, v := range steps {
		if v.Class == classFailed && (len(servers) == 0 || v.Server == "") {
			add(v, 0)
		}
	}
	for _, sv := range servers {
		for _, v := range sv.Steps {
			if v.Class == classFailed {
				add(v, sv.Order)
			}
		}
	}
	sort.SliceStable(items, func(i, j int) bool {
		if items[i].f.N != items[j].f.N {
			return items[i].f.N < items[j].f.N
		}
		return items[i].order < items[j].order
	})
	out := make([]FailureView, len(items))
	for i, it := range items {
		out[i] = it.f
	}
	return out
}

func outcomeClass(o linkstate.Outcome) (class, words string) {
	switch o {
	case linkstate.OK:
		return classOK, "OK"
	case linkstate.Failed:
		return classFailed, "Failed"
	case linkstate.Skipped:
		return classSkipped, "Skipped"
	}
	return classNone, "Not run"
}

func clock(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format("15:04:05.000")
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// duration formats a step's duration; events from the API carry only Millis.
func duration(d time.Duration, millis float64) string {
	if d == 0 && millis > 0 {
		d = time.Duration(millis * float64(time.Millisecond))
	}
	switch {
	case d <= 0:
		return ""
	case d < time.Millisecond:
		return strconv.FormatInt(d.Microseconds(), 10) + " µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s"
	}
	return d.Round(time.Second).String()
}

// ---- the diagram's geometry ----------------------------------------------------------

const (
	svgWidth   = 1000
	laneTop    = 16
	laneBoxH   = 40
	rowsTop    = 72
	rowHeight  = 50
	numberX    = 24
	detailsX   = 700
	loopWidth  = 34
	loopHeight = 14
	headLen    = 9
	headHalf   = 5
)

var laneX = [...]int{laneWeb: 110, laneXMPP: 300, laneCB: 490, laneDNS: 625}

// LaneView is one lane's header box and lifeline.
type LaneView struct {
	Name       string
	X, BoxX    int
	BoxW       int
	LineY1     int
	LineY2     int
	TextY      int
	TestID     string
	BoxY, BoxH int
}

// RowView is one step's row in the SVG.
type RowView struct {
	StepView
	Y                  int
	Path               string // the arrow's line or loop
	Heads              []string
	LabelX, LabelY     int
	LabelAnchor        string
	DetailY1, DetailY2 int
	NumY               int
	Band               int  // y of the row's background band
	Shaded             bool // every other row
}

// Ladder is the whole diagram.
type Ladder struct {
	Width, Height int
	DetailsX      int
	NumberX       int
	Lanes         []LaneView
	Rows          []RowView
	BandH         int
}

func buildLadder(steps []StepView) Ladder {
	h := rowsTop + len(ladder)*rowHeight + 8
	l := Ladder{Width: svgWidth, Height: h, DetailsX: detailsX, NumberX: numberX, BandH: rowHeight}
	for i, name := range laneNames {
		w := 118
		l.Lanes = append(l.Lanes, LaneView{
			Name: name, X: laneX[i], BoxX: laneX[i] - w/2, BoxW: w, BoxY: laneTop, BoxH: laneBoxH,
			TextY: laneTop + laneBoxH/2 + 5, LineY1: laneTop + laneBoxH, LineY2: h - 4,
			TestID: "lane-" + laneSlug(lane(i)),
		})
	}
	for i, d := range ladder {
		y := rowsTop + i*rowHeight + rowHeight/2 + 6
		r := RowView{StepView: steps[i], Y: y, Band: rowsTop + i*rowHeight, DetailY1: y - 4, DetailY2: y + 12, NumY: y + 4, Shaded: i%2 == 0}
		x1, x2 := laneX[d.from], laneX[d.to]
		switch {
		case d.from == d.to:
			// A loop on the lane: out, down, back, with the head pointing at the lane.
			top := y - loopHeight/2
			bottom := y + loopHeight/2
			r.Path = fmt.Sprintf("M%d %d H%d V%d H%d", x1, top, x1+loopWidth, bottom, x1+headLen)
			r.Heads = []string{head(x1+headLen, bottom, -1)}
			r.LabelX, r.LabelY, r.LabelAnchor = x1+loopWidth+10, y+4, "start"
		default:
			dir := 1
			if x2 < x1 {
				dir = -1
			}
			r.Path = fmt.Sprintf("M%d %d H%d", x1, y, x2-dir*headLen)
			r.Heads = []string{head(x2-dir*headLen, y, dir)}
			if d.both {
				r.Path = fmt.Sprintf("M%d %d H%d", x1+dir*headLen, y, x2-dir*headLen)
				r.Heads = append(r.Heads, head(x1+dir*headLen, y, -dir))
			}
			r.LabelX, r.LabelY, r.LabelAnchor = (x1+x2)/2, y-8, "middle"
		}
		l.Rows = append(l.Rows, r)
	}
	return l
}

// head is an arrowhead whose base is at (x, y), pointing in direction dir (+1 right).
func head(x, y, dir int) string {
	tip := x + dir*headLen
	return fmt.Sprintf("%d,%d %d,%d %d,%d", tip, y, x, y-headHalf, x, y+headHalf)
}

func laneSlug(l lane) string {
	return [...]string{"web", "xmpp", "callbridge", "dns"}[l]
}

// ---- status, alarms and events for the page -------------------------------------------

// StatusView is the link's state as the page shows it.
type StatusView struct {
	State        string `json:"state"`
	StateLabel   string `json:"stateLabel"`
	StateClass   string `json:"stateClass"` // ok | warn | failed | none
	ComponentJID string `json:"componentJid"`
	Server       string `json:"server"`
	Address      string `json:"address"`
	Since        string `json:"since"`
	SinceStamp   string `json:"sinceStamp"`
	For          string `json:"for"`
	Attempt      uint64 `json:"attempt"`
	NextAttempt  string `json:"nextAttempt"`
	LastError    string `json:"lastError"`
}

func statusView(st linkstate.Status, now time.Time) StatusView {
	v := StatusView{
		State: string(st.State), ComponentJID: st.ComponentJID, Server: st.Server, Address: st.Address,
		Attempt: st.Attempt, LastError: st.LastError,
	}
	switch st.State {
	case linkstate.Registered:
		v.StateLabel, v.StateClass = "Registered", classOK
	case linkstate.Connecting:
		v.StateLabel, v.StateClass = "Connecting", "warn"
	case linkstate.Backoff:
		v.StateLabel, v.StateClass = "Waiting to retry", "warn"
	case linkstate.Disabled:
		v.StateLabel, v.StateClass = "Not configured", classNone
	case linkstate.Unavailable:
		v.StateLabel, v.StateClass = "Stopped", classFailed
	default:
		v.StateLabel, v.StateClass = string(st.State), classNone
		if v.StateLabel == "" {
			v.StateLabel = "Unknown"
		}
	}
	if !st.Since.IsZero() {
		v.Since = st.Since.Format("2006-01-02 15:04:05 MST")
		v.SinceStamp = stamp(st.Since)
		v.For = ago(now.Sub(st.Since))
	}
	if !st.NextAttempt.IsZero() && st.State != linkstate.Registered {
		v.NextAttempt = st.NextAttempt.Format("15:04:05")
		if d := st.NextAttempt.Sub(now); d > 0 {
			v.NextAttempt += " (in " + ago(d) + ")"
		}
	}
	return v
}

// ago formats a span as people read it: "42s", "3m 5s", "2h 7m", "3d 4h".
func ago(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm %ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh %dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd %dh", s/86400, s%86400/3600)
}

// AlarmView is an active alarm.
type AlarmView struct {
	ID            string `json:"id"`
	Type          string `json:"type"`
	FailureReason string `json:"failureReason"`
	TLSCause      string `json:"tlsCause,omitempty"`
	Detail        string `json:"detail,omitempty"`
	Since         string `json:"since"`
	For           string `json:"for"`
}

func alarmViews(alarms []linkstate.Alarm, now time.Time) []AlarmView {
	out := make([]AlarmView, 0, len(alarms))
	for _, a := range alarms {
		v := AlarmView{ID: a.ID, Type: a.Type, FailureReason: a.FailureReason, TLSCause: a.TLSCause, Detail: a.Detail}
		if !a.ActiveSince.IsZero() {
			v.Since = a.ActiveSince.Format("2006-01-02 15:04:05 MST")
			v.For = ago(now.Sub(a.ActiveSince))
		}
		out = append(out, v)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// EventView is one line of the recent events table.
type EventView struct {
	Seq      uint64 `json:"seq"`
	Time     string `json:"time"`
	Attempt  uint64 `json:"attempt"`
	Step     string `json:"step"`
	Class    string `json:"class"`
	Outcome  string `json:"outcome"`
	Target   string `json:"target,omitempty"`
	Duration string `json:"duration,omitempty"`
	Cause    string `json:"cause,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

const recentEvents = 30

func eventViews(events []linkstate.Event) []EventView {
	start := len(events) - recentEvents
	if start < 0 {
		start = 0
	}
	out := make([]EventView, 0, len(events)-start)
	for i := len(events) - 1; i >= start; i-- {
		e := events[i]
		class, words := outcomeClass(e.Outcome)
		name := e.StepName
		if name == "" {
			name = e.Step.String()
		}
		out = append(out, EventView{
			Seq: e.Seq, Time: clock(e.Start), Attempt: e.Attempt, Step: strconv.Itoa(int(e.Step)) + " " + name,
			Class: class, Outcome: words, Target: e.Target, Duration: duration(e.Duration, e.Millis), Cause: e.Cause, Detail: e.Detail,
		})
	}
	return out
}

// SignalFlow is the JSON of /admin/api/signal-flow and the data of the status page.
type SignalFlow struct {
	Status StatusView `json:"status"`
	// Steps are the ladder: steps 5 to 11 of the server Shown.
	Steps []StepView `json:"steps"`
	// Shown is the XMPP server whose steps 5 to 11 the ladder shows; Servers are all those
	// the latest attempt tried, each on its own, when it tried several.
	Shown    string        `json:"shown,omitempty"`
	Servers  []ServerView  `json:"servers"`
	Failures []FailureView `json:"failures"`
	Alarms   []AlarmView   `json:"alarms"`
	Events   []EventView   `json:"events"`
	Updated  string        `json:"updated"`
}

func (s *server) signalFlow(now time.Time) SignalFlow {
	st := s.b.LinkStatus()
	events := s.b.Trace(0)
	return buildFlow(st, events, s.b.Alarms(), now)
}

func buildFlow(st linkstate.Status, events []linkstate.Event, alarms []linkstate.Alarm, now time.Time) SignalFlow {
	steps, runs := flow(st, events)
	shown := ""
	for _, v := range steps {
		if v.Server != "" {
			shown = v.Server
		}
	}
	servers := serverViews(runs, shown)
	if servers == nil {
		servers = []ServerView{}
	}
	return SignalFlow{
		Status:   statusView(st, now),
		Steps:    steps,
		Shown:    shown,
		Servers:  servers,
		Failures: failures(steps, servers),
		Alarms:   alarmViews(alarms, now),
		Events:   eventViews(events),
		Updated:  now.Format("15:04:05"),
	}
}

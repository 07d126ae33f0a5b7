package linkstate

import (
	"testing"
	"time"
)

func TestTraceRing(t *testing.T) {
	tr := Trace{Max: 3}
	for i := range 5 {
		e := tr.Add(Event{Step: Steps[i], Duration: 1500 * time.Microsecond})
		if e.Seq != uint64(i+1) {
			t.Errorf("event %d: Seq = %d, want %d", i, e.Seq, i+1)
		}
		if e.StepName != Steps[i].String() {
			t.Errorf("event %d: StepName = %q, want %q", i, e.StepName, Steps[i])
		}
		if e.Millis != 1.5 {
			t.Errorf("event %d: Millis = %v, want 1.5", i, e.Millis)
		}
	}
	all := tr.Events(0)
	if len(all) != 3 || all[0].Seq != 3 || all[2].Seq != 5 {
		t.Fatalf("Events(0) = %+v, want seq 3..5 (the ring keeps the last 3)", all)
	}
	if got := tr.Events(4); len(got) != 1 || got[0].Seq != 5 {
		t.Errorf("Events(4) = %+v, want seq 5", got)
	}
	if got := tr.Events(5); len(got) != 0 {
		t.Errorf("Events(5) = %+v, want none", got)
	}
}

func TestTraceLast(t *testing.T) {
	var tr Trace
	tr.Add(Event{Step: StepConnect, Outcome: Failed, Target: "a"})
	tr.Add(Event{Step: StepConnect, Outcome: OK, Target: "b"})
	tr.Add(Event{Step: StepTLS, Outcome: OK})
	last := tr.Last()
	if got := last[StepConnect]; got.Target != "b" || got.Outcome != OK {
		t.Errorf("Last()[connect] = %+v, want the second connect", got)
	}
	if _, ok := last[StepSRV]; ok {
		t.Error("Last() has a step that never happened")
	}
}

func TestStepNames(t *testing.T) {
	seen := map[string]bool{}
	for i, s := range Steps {
		if int(s) != i+2 {
			t.Errorf("Steps[%d] = %d, want %d (docs/signalling.md's numbering)", i, s, i+2)
		}
		if s.String() == "unknown" || s.Title() == "unknown step" {
			t.Errorf("step %d has no name or title", s)
		}
		if seen[s.String()] {
			t.Errorf("step name %q used twice", s)
		}
		seen[s.String()] = true
	}
	if Step(99).String() != "unknown" {
		t.Errorf("Step(99) = %q, want unknown", Step(99))
	}
}

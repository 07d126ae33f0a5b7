package media

import "testing"

func TestParseShape(t *testing.T) {
	tests := []struct {
		in          string
		want        Shape
		subs, parts int
		bad         bool
	}{
		{in: "mesh:10", want: Shape{Name: "mesh:10", Rooms: 1, Publishers: 10}, subs: 180, parts: 10},
		{in: "webinar:200@h", want: Shape{Name: "webinar:200", Rooms: 1, Publishers: 1, Listeners: 200, Layer: "h"}, subs: 400, parts: 201},
		{in: "rooms:100x3", want: Shape{Name: "rooms:100x3", Rooms: 100, Publishers: 3}, subs: 1200, parts: 300},
		{in: "mesh:0", bad: true},
		{in: "mesh:5@x", bad: true},
		{in: "rooms:3", bad: true},
		{in: "star:4", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseShape(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("ParseShape(%q) = %+v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseShape(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if s, p := got.Subscriptions(), got.Participants(); s != tt.subs || p != tt.parts {
				t.Errorf("subscriptions, participants = %d, %d; want %d, %d", s, p, tt.subs, tt.parts)
			}
		})
	}
}

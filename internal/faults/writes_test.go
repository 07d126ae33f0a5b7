package faults

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the store's SQLite driver, to check the file directly
)

// TestCallBridgeKilledDuringAPIWrites kills the Call Bridge (SIGKILL) in the middle of a
// burst of REST API writes (POST /api/v1/coSpaces from several clients at once): the store
// file passes SQLite's integrity check, the Call Bridge starts again on it, every write it
// had acknowledged (200 with a Location) is there with what was written, nothing is there
// that no client asked for, and the store takes writes again.
func TestCallBridgeKilledDuringAPIWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills real processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := newPKI(t)
	cb := newCallBridge(t, p, "cb1", cbOptions{})
	cb.start(t)

	var (
		mu        sync.Mutex
		acked     = map[string]string{} // Location -> name
		attempted = map[string]bool{}   // every name sent
		refused   []string              // 4xx/5xx answers: none is expected
		unknown   int                   // writes whose answer never came
		killing   atomic.Bool
		wg        sync.WaitGroup
	)
	writeCtx, stopWriting := context.WithCancel(ctx)
	defer stopWriting()
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; writeCtx.Err() == nil; i++ {
				name := fmt.Sprintf("space-%d-%d", w, i)
				mu.Lock()
				attempted[name] = true
				mu.Unlock()
				loc, err := cb.api.do(writeCtx, http.MethodPost, "/api/v1/coSpaces",
					url.Values{"name": {name}, "uri": {name}, "passcode": {"4321"}})
				var ae *apiError
				switch {
				case err == nil && loc == "":
					mu.Lock()
					refused = append(refused, name+": 200 without a Location")
					mu.Unlock()
				case err == nil:
					mu.Lock()
					acked[loc] = name
					mu.Unlock()
				case errors.As(err, &ae):
					mu.Lock()
					refused = append(refused, name+": "+ae.Error())
					mu.Unlock()
				default:
					// No answer: the outcome of this write is unknown to the client.
					mu.Lock()
					unknown++
					mu.Unlock()
					if killing.Load() {
						return
					}
				}
			}
		}()
	}
	poll(t, time.Minute, 5*time.Millisecond, "200 acknowledged writes", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 200, fmt.Sprintf("%d acknowledged", len(acked))
	}, cb.proc)
	killing.Store(true)
	cb.proc.Kill()
	wg.Wait()
	stopWriting()
	mu.Lock()
	t.Logf("killed after %d acknowledged writes; %d more sent got no answer", len(acked), unknown)
	for _, r := range refused {
		t.Errorf("write refused: %s", r)
	}
	mu.Unlock()

	// The file itself: SQLite's integrity check, and every acknowledged space in it.
	db, err := sql.Open("sqlite", filepath.Join(cb.dir, "callbridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	var integrity string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
		t.Errorf("integrity_check = %q, %v; want ok", integrity, err)
	}
	var rows int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM cospaces").Scan(&rows); err != nil {
		t.Errorf("count the spaces in the file: %v", err)
	}
	db.Close()
	t.Logf("the store file holds %d spaces", rows)
	if rows < len(acked) {
		t.Errorf("the store file holds %d spaces, fewer than the %d acknowledged", rows, len(acked))
	}

	// The Call Bridge starts again on the store; the API shows every acknowledged space.
	cb.start(t)
	for loc, name := range acked {
		var doc struct {
			CoSpace struct {
				ID   string `json:"id"`
				Name string `json:"name"`
				URI  string `json:"uri"`
			} `json:"coSpace"`
		}
		if err := cb.api.getJSON(ctx, loc, &doc); err != nil {
			t.Errorf("GET %s (acknowledged %q): %v", loc, name, err)
			continue
		}
		if doc.CoSpace.Name != name || doc.CoSpace.URI != name || !strings.HasSuffix(loc, "/"+doc.CoSpace.ID) {
			t.Errorf("GET %s = %+v, want the space %q acknowledged there", loc, doc.CoSpace, name)
		}
	}
	// The list is paged as CMS pages it (at most 20 a page): read every page.
	var list struct {
		CoSpaces struct {
			Total   int `json:"total"`
			CoSpace []struct {
				Name string `json:"name"`
			} `json:"coSpace"`
		} `json:"coSpaces"`
	}
	for offset, pages := 0, 0; pages < 1000; pages++ {
		var page struct {
			CoSpaces struct {
				Total   int `json:"total"`
				CoSpace []struct {
					Name string `json:"name"`
				} `json:"coSpace"`
			} `json:"coSpaces"`
		}
		if err := cb.api.getJSON(ctx, fmt.Sprintf("/api/v1/coSpaces?offset=%d", offset), &page); err != nil {
			t.Fatal(err)
		}
		list.CoSpaces.Total = page.CoSpaces.Total
		list.CoSpaces.CoSpace = append(list.CoSpaces.CoSpace, page.CoSpaces.CoSpace...)
		offset += len(page.CoSpaces.CoSpace)
		if len(page.CoSpaces.CoSpace) == 0 || offset >= page.CoSpaces.Total {
			break
		}
	}
	if list.CoSpaces.Total < len(acked) || len(list.CoSpaces.CoSpace) != list.CoSpaces.Total {
		t.Errorf("coSpaces total %d with %d listed, want all of them and at least the %d acknowledged", list.CoSpaces.Total, len(list.CoSpaces.CoSpace), len(acked))
	}
	for _, s := range list.CoSpaces.CoSpace {
		if !attempted[s.Name] {
			t.Errorf("space %q is in the store, but no client wrote it", s.Name)
		}
	}
	t.Logf("after the restart: %d spaces (%d acknowledged, %d more were written but their answer was lost to the kill)",
		list.CoSpaces.Total, len(acked), list.CoSpaces.Total-len(acked))
	if _, err := cb.api.do(ctx, http.MethodPost, "/api/v1/coSpaces", url.Values{"name": {"after-restart"}}); err != nil {
		t.Errorf("write after the restart: %v", err)
	}
}

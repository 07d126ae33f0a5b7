package adminapi

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/stream"
	"confab.dev/confab/internal/testenv"
)

// The CMS tools of the field, run for real where they are on the machine: Python's requests
// with xmltodict, and Node's axios with xml2js. Each runs against the API over HTTPS (with its
// certificate checks off, as the scripts do), and the test checks both what the tool read and
// what happened to the meeting.

// python returns a python3 that imports modules, or calls testenv.Missing.
func python(t *testing.T, modules string) string {
	t.Helper()
	var candidates []string
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/python3")
	for _, p := range candidates {
		if exec.Command(p, "-c", "import "+modules).Run() == nil {
			return p
		}
	}
	testenv.Missing(t, "python3 with "+modules+" (Debian python3-requests, python3-xmltodict)")
	return ""
}

// runTool runs a tool with the API's address and credentials in its environment and decodes
// the JSON it prints into out.
func runTool(t *testing.T, apiURL string, env []string, out any, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), append([]string{"CONFAB_API=" + apiURL, "CONFAB_USER=" + testUser, "CONFAB_PASS=" + testPassword}, env...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s printed %q: %v\n%s", name, b, err, stderr.String())
	}
}

// liveCall creates a space with a call of two participants (over a recorded link) and returns
// the call's and the legs' ids.
func (e *env) liveCall(t *testing.T, link *linkRecorder) (space, call string, legs []string) {
	t.Helper()
	e.setXMPPSettings(t)
	space = e.createCoSpace(t, url.Values{"name": {"Live"}, "nonMemberAccess": {"true"}, "callId": {"5550000"}})
	e.join(t, link, "alice@example.com/web", space+"@cb1.example.com", "Alice")
	e.join(t, link, "bob@example.com/web", space+"@cb1.example.com", "Bob")
	c := e.srv.meetings.Calls()[0]
	for _, l := range e.srv.meetings.CallLegs() {
		legs = append(legs, l.ID)
	}
	link.take("alice@example.com/web")
	link.take("bob@example.com/web")
	return space, c.ID, legs
}

// lastAbout returns the <participant/> attributes of the last presence among els about the
// participant id.
func lastAbout(t *testing.T, els []*stream.Element, id string) (map[string]string, bool) {
	t.Helper()
	var last map[string]string
	for _, el := range els {
		if el.Name.Local != "presence" {
			continue
		}
		if a := participantAttrs(t, el); a["id"] == id {
			last = a
		}
	}
	return last, last != nil
}

func TestPythonRequestsXmltodict(t *testing.T) {
	py := python(t, "requests, xmltodict")
	e := newEnv(t)
	tls := httptest.NewTLSServer(e.srv)
	t.Cleanup(tls.Close)
	link := &linkRecorder{}
	space, _, legs := e.liveCall(t, link)
	e.post(t, "/api/v1/coSpaces/"+space+"/accessMethods", url.Values{"uri": {"live.guests"}})
	const extra = 22
	for i := 0; i < extra; i++ {
		e.createCoSpace(t, url.Values{"name": {"Space " + string(rune('A'+i))}})
	}
	var got struct {
		FirstPage, Total, AccessMethods, AMCreated, MissingStatus, MuteStatus, Calls int
		Seen                                                                         []string
		AMLocation                                                                   string
		AMURIs                                                                       []string `json:"amUris"`
		MissingFailure                                                               []string
		ProfilesMuteSelf                                                             []string
		LegMuted                                                                     string
	}
	runTool(t, tls.URL, []string{"CONFAB_SPACE=" + space, "CONFAB_LEG=" + legs[1]}, &got, py, "testdata/cms_requests.py")

	want := extra + 1
	seen := map[string]int{}
	for _, id := range got.Seen {
		seen[id]++
	}
	if got.Total != want || len(got.Seen) != want || len(seen) != want || got.FirstPage != PageSize {
		t.Errorf("paging: total %d, saw %d (%d distinct), first page %d; want %d, each once, first page %d",
			got.Total, len(got.Seen), len(seen), got.FirstPage, want, PageSize)
	}
	if got.AMCreated != 200 || !strings.HasPrefix(got.AMLocation, "/api/v1/coSpaces/"+space+"/accessMethods/") ||
		got.AccessMethods != 2 || strings.Join(got.AMURIs, ",") != "live.guests,py.host" {
		t.Errorf("access methods: %+v", got)
	}
	if got.MissingStatus != 404 || strings.Join(got.MissingFailure, ",") != "accessMethodDoesNotExist" {
		t.Errorf("a missing access method: %d %v", got.MissingStatus, got.MissingFailure)
	}
	if strings.Join(got.ProfilesMuteSelf, ",") != "false,false,false" {
		t.Errorf("profiles after the loop of PUTs: %v", got.ProfilesMuteSelf)
	}
	if got.MuteStatus != 200 || got.LegMuted != "true" || got.Calls != 1 {
		t.Errorf("mute: %d, leg muted %q, calls %d", got.MuteStatus, got.LegMuted, got.Calls)
	}
	// The meeting saw it: both participants were told bob is muted.
	for _, to := range []string{"alice@example.com/web", "bob@example.com/web"} {
		if a, ok := lastAbout(t, link.take(to), legs[1]); !ok || a["rxAudioMute"] != "true" {
			t.Errorf("%s: bob's presence %v, want rxAudioMute", to, a)
		}
	}
}

func TestAxiosXml2js(t *testing.T) {
	node := testenv.LookPath(t, "node")
	testenv.File(t, filepath.Join("testdata", "node", "node_modules", "axios", "package.json"), "npm packages of internal/adminapi/testdata/node (npm ci)")
	testenv.File(t, filepath.Join("testdata", "node", "node_modules", "xml2js", "package.json"), "npm packages of internal/adminapi/testdata/node (npm ci)")
	e := newEnv(t)
	tls := httptest.NewTLSServer(e.srv)
	t.Cleanup(tls.Close)
	link := &linkRecorder{}
	_, call, legs := e.liveCall(t, link)
	var got struct {
		Created, JSONStatus, Legs, MuteAll, MissingStatus    int
		ContentType, SpaceName, SpaceID, LegMuted, LegLayout string
		JSONFailure                                          struct{ Parameter, Error string }
		MissingFailure                                       []string
	}
	runTool(t, tls.URL, []string{"CONFAB_CALL=" + call}, &got, node, filepath.Join("testdata", "node", "cms_axios.mjs"))
	if got.Created != 200 || got.ContentType != "text/xml; charset=utf-8" || got.SpaceName != "From axios" || got.SpaceID == "" {
		t.Errorf("axios with its default Accept: %+v, want XML", got)
	}
	if got.JSONStatus != 400 || got.JSONFailure.Parameter != "body" || got.JSONFailure.Error != "notFormEncoded" {
		t.Errorf("a JSON body: %d %+v", got.JSONStatus, got.JSONFailure)
	}
	if got.Legs != 2 || got.MuteAll != 200 || got.LegMuted != "true" || got.LegLayout != "allEqual" {
		t.Errorf("muting everyone: %+v", got)
	}
	if got.MissingStatus != 404 || strings.Join(got.MissingFailure, ",") != "callLegDoesNotExist" {
		t.Errorf("a missing leg: %d %v", got.MissingStatus, got.MissingFailure)
	}
	seen := link.take("alice@example.com/web")
	for _, leg := range legs {
		if a, ok := lastAbout(t, seen, leg); !ok || a["rxAudioMute"] != "true" || a["layout"] != "allEqual" {
			t.Errorf("alice sees leg %s as %v, want muted, allEqual", leg, a)
		}
	}
}

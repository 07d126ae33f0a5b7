package peers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"confab.dev/confab/internal/testenv"
)

// Janus is the Janus WebRTC server (Debian package janus, 1.1), the media servers'
// yardstick: started like the XMPP peers, in the foreground as a child of the caller, from
// a private directory holding its configuration and log, with only its VideoRoom plugin and
// its HTTP transport (the Janus API on 127.0.0.1).
//
// Janus 1.1.2 gathers its ICE candidates on every interface and ignores ice_enforce_list:
// it offers the host's own addresses. A benchmark that must keep media on loopback runs it
// (and its clients) in a network namespace that has only loopback (package netns).
type Janus struct {
	*Server
	// URL is the Janus API over HTTP, http://127.0.0.1:<port>/janus.
	URL string
}

// JanusOptions describe a Janus to start.
type JanusOptions struct {
	// RTPPorts is the UDP port range for media, "min-max" (default 20000-40000).
	RTPPorts string
	// DebugLevel is Janus's log level, 0–7 (default 4, info, as a production server logs).
	DebugLevel int
	// ICELite runs Janus as an ICE-lite agent, as Confab's SFU is (default: full ICE, its
	// default).
	ICELite bool
}

// janusPaths are the installed program and its module folders.
type janusPaths struct{ bin, lib string }

func findJanus() (janusPaths, error) {
	bin, err := exec.LookPath("janus")
	if err != nil {
		return janusPaths{}, fmt.Errorf("janus: %w", ErrNotInstalled)
	}
	libs, _ := filepath.Glob("/usr/lib/*/janus/plugins/libjanus_videoroom.so")
	if len(libs) == 0 {
		return janusPaths{}, fmt.Errorf("janus's VideoRoom plugin: %w", ErrNotInstalled)
	}
	return janusPaths{bin: bin, lib: filepath.Dir(filepath.Dir(libs[0]))}, nil
}

// StartJanus starts Janus in dir (which must exist and be private to it) and returns once
// its API answers an info request. If ctx has no deadline, DefaultStartTimeout applies.
// Errors wrap ErrNotInstalled when the package is missing.
func StartJanus(ctx context.Context, dir string, o JanusOptions) (*Janus, error) {
	paths, err := findJanus()
	if err != nil {
		return nil, fmt.Errorf("start janus: %w", err)
	}
	if strings.ContainsAny(dir, "\"\\\n") {
		return nil, fmt.Errorf("start janus: directory %q: quotes, backslashes and newlines are not supported", dir)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("start janus: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, DefaultStartTimeout, fmt.Errorf("janus did not start within %s", DefaultStartTimeout))
		defer cancel()
	}
	const attempts = 3
	for i := 1; ; i++ {
		run := filepath.Join(dir, fmt.Sprintf("run%d", i))
		if err := os.MkdirAll(run, 0o700); err != nil {
			return nil, fmt.Errorf("start janus: %w", err)
		}
		j := &Janus{Server: &Server{Kind: "janus", Dir: run}}
		err = j.start(ctx, paths, o)
		if err == nil {
			return j, nil
		}
		j.Stop()
		if errors.Is(err, errPortInUse) && i < attempts {
			continue
		}
		return nil, fmt.Errorf("start janus in %s: %w%s", run, err, j.tail())
	}
}

// janusPlugins and janusTransports are the modules Janus would load besides VideoRoom and
// HTTP; they are disabled.
var (
	janusPlugins    = []string{"audiobridge", "duktape", "echotest", "lua", "nosip", "recordplay", "sip", "streaming", "textroom", "videocall", "voicemail"}
	janusTransports = []string{"mqtt", "nanomsg", "pfunix", "rabbitmq", "websockets"}
)

func janusList(names []string) string {
	var out []string
	for _, n := range names {
		out = append(out, "libjanus_"+n+".so")
	}
	return strings.Join(out, ",")
}

func (j *Janus) start(ctx context.Context, paths janusPaths, o JanusOptions) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	if o.RTPPorts == "" {
		o.RTPPorts = "20000-40000"
	}
	if o.DebugLevel == 0 {
		o.DebugLevel = 4
	}
	j.ConfigFile = filepath.Join(j.Dir, "janus.jcfg")
	j.LogFile = filepath.Join(j.Dir, "janus.log")
	j.ConsoleFile = filepath.Join(j.Dir, "console.log")
	j.URL = fmt.Sprintf("http://%s/janus", loopback(ports[0]))
	lite := "false"
	if o.ICELite {
		lite = "true"
	}
	files := map[string]string{
		"janus.jcfg": fmt.Sprintf(`# Written by confab's internal/peers: a private Janus for benchmarks.
general: {
	configs_folder = "%[1]s"
	plugins_folder = "%[2]s/plugins"
	transports_folder = "%[2]s/transports"
	events_folder = "%[2]s/events"
	loggers_folder = "%[2]s/loggers"
	log_to_file = "%[3]s"
	debug_level = %[4]d
	debug_timestamps = true
	debug_colors = false
	admin_secret = "confab-bench-admin"
	session_timeout = 60
}
media: {
	rtp_port_range = "%[5]s"
}
nat: {
	ice_lite = %[6]s
	ice_enforce_list = "lo"
	ice_ignore_list = "vmnet"
}
plugins: {
	disable = "%[7]s"
}
transports: {
	disable = "%[8]s"
}
loggers: {
	disable = "libjanus_jsonlog.so"
}
events: {
	broadcast = false
}
`, j.Dir, paths.lib, j.LogFile, o.DebugLevel, o.RTPPorts, lite, janusList(janusPlugins), janusList(janusTransports)),
		"janus.transport.http.jcfg": fmt.Sprintf(`general: {
	json = "plain"
	base_path = "/janus"
	http = true
	ip = "127.0.0.1"
	port = %d
	https = false
}
admin: {
	admin_http = false
}
`, ports[0]),
		// Rooms are made through the API, by the benchmark, with the settings it needs.
		"janus.plugin.videoroom.jcfg": "general: {\n}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(j.Dir, name), []byte(body), 0o600); err != nil {
			return err
		}
	}
	if err := j.spawn(paths.bin, []string{"-C", j.ConfigFile, "-F", j.Dir, "-N", "-o"}, os.Environ()); err != nil {
		return err
	}
	return j.waitReady(ctx, "Janus's API on "+j.URL, func(ctx context.Context) (bool, error) {
		if b, _ := os.ReadFile(j.LogFile); bytes.Contains(b, []byte("Address already in use")) {
			return false, errPortInUse
		}
		_, err := JanusInfo(ctx, j.URL)
		return err == nil, nil
	})
}

// JanusInfo asks Janus's API for its server info and returns the version string.
func JanusInfo(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"janus":"info","transaction":"info"}`))
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v struct {
		Janus   string `json:"janus"`
		Version string `json:"version_string"`
		Plugins map[string]json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return "", fmt.Errorf("janus info: %w", err)
	}
	if v.Janus != "server_info" {
		return "", fmt.Errorf("janus info: answer %q", v.Janus)
	}
	if _, ok := v.Plugins["janus.plugin.videoroom"]; !ok {
		return "", errors.New("janus info: no VideoRoom plugin loaded")
	}
	return v.Version, nil
}

// StartJanusT starts Janus for the test t in a temporary directory and stops it when the
// test ends; it skips t (fails it with CONFAB_REQUIRE_PEERS=1) when Janus is not installed.
func StartJanusT(t testing.TB, o JanusOptions) *Janus {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultStartTimeout)
	defer cancel()
	j, err := StartJanus(ctx, dir, o)
	if errors.Is(err, ErrNotInstalled) {
		testenv.Missing(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		j.Stop()
		if t.Failed() {
			t.Logf("janus's logs:\n%s", j.Logs(80))
		}
	})
	return j
}

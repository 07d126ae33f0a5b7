package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a confab process started by a test. It is killed when the test ends.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	out  *logBuffer
	done chan struct{}
	err  error // Wait's result, once done is closed
}

// logBuffer collects a process's output (stdout and stderr interleaved) and copies it to a
// file in the test's directory.
type logBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	file *os.File
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		l.file.Write(p)
	}
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startProc runs the confab binary with args. name labels its output in failure reports.
func startProc(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	bin := binary.get(t)
	dir := os.Getenv("CONFAB_FAULTS_LOGS") // keeps every process's log for a look afterwards
	if dir == "" {
		dir = t.TempDir()
	}
	f, err := os.Create(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name+"-"+time.Now().Format("150405.000")+".log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, out: &logBuffer{file: f}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	// If the test binary dies (a panic, a -timeout), the process goes with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		f.Close()
		if t.Failed() {
			t.Logf("--- output of %s (pid %d), last lines:\n%s", name, p.cmd.Process.Pid, tail(p.out.String(), 80))
		}
	})
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Pid returns the process id.
func (p *proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (p *proc) Kill() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits for a clean exit, killing the process if it takes longer
// than the role's own shutdown bound allows. It fails the test on an unclean exit.
func (p *proc) Stop() {
	p.t.Helper()
	if p.Exited() {
		p.t.Fatalf("%s had already exited: %v", p.name, p.err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			p.t.Fatalf("%s exited with %v after SIGTERM", p.name, p.err)
		}
	case <-time.After(15 * time.Second):
		p.Kill()
		p.t.Fatalf("%s did not stop within 15s of SIGTERM", p.name)
	}
}

// runConfab runs a confab command to completion (at most a minute) and returns its standard
// output; a failure fails the test.
func runConfab(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary.get(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("confab %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// freePort returns a loopback address with a port that was free a moment ago. The roles
// are given fixed ports (rather than port 0) so that a restarted process comes back on the
// same ones; the ports are taken below the kernel's ephemeral range, so that no outgoing
// connection (a Call Bridge retrying while its server is down) can hold one meanwhile.
func freePort(t testing.TB) string {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(b), &low)
	}
	if low > 11000 {
		for range 100 {
			addr := fmt.Sprintf("127.0.0.1:%d", 10000+rand.IntN(low-10000))
			if ln, err := net.Listen("tcp", addr); err == nil {
				ln.Close()
				return addr
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// poll calls check every interval until it reports done, and fails the test when timeout
// passes first, with the last thing check said. A process of watch that exits meanwhile
// fails the test at once.
func poll(t testing.TB, timeout, interval time.Duration, what string, check func() (bool, string), watch ...*proc) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	last := ""
	for {
		ok, state := check()
		if ok {
			return
		}
		if state != "" {
			last = state
		}
		for _, p := range watch {
			if p.Exited() {
				t.Fatalf("waiting for %s: %s exited: %v (last state: %s)", what, p.name, p.err, last)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not within %s (last state: %s)", what, timeout, last)
		}
		<-tick.C
	}
}

// errString formats an error for a poll state.
func errString(err error) string {
	if err == nil {
		return ""
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout: " + err.Error()
	}
	return fmt.Sprint(err)
}

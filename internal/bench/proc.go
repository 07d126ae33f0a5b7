package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of CPU times in /proc/<pid>/stat (USER_HZ, 100 on every Linux
// architecture Go supports).
const clockTick = 10 * time.Millisecond

// ProcSample is what /proc says of a process at one moment.
type ProcSample struct {
	At     time.Time
	CPU    time.Duration // user + system time so far
	RSSKiB int64         // resident set size
	HWMKiB int64         // peak resident set size
}

// ReadProc samples process pid from /proc (Linux only).
func ReadProc(pid int) (ProcSample, error) {
	s := ProcSample{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("read cpu time of process %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: split after it.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: bad cpu times", pid)
	}
	s.CPU = time.Duration(ut+st) * clockTick
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &s.RSSKiB
		case "VmHWM":
			dst = &s.HWMKiB
		default:
			continue
		}
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		*dst, _ = strconv.ParseInt(v, 10, 64)
	}
	return s, nil
}

// selfCPU returns the load tool's own CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ProcUsage is a process's use of the machine over a run.
type ProcUsage struct {
	PID         int     `json:"pid"`
	CPUSeconds  float64 `json:"cpuSeconds"`
	CPUPercent  float64 `json:"cpuPercent"` // of one core, over the run
	RSSStartKiB int64   `json:"rssStartKiB"`
	RSSEndKiB   int64   `json:"rssEndKiB"`
	RSSPeakKiB  int64   `json:"rssPeakKiB"`
}

func usage(pid int, a, b ProcSample) *ProcUsage {
	u := &ProcUsage{PID: pid, CPUSeconds: (b.CPU - a.CPU).Seconds(), RSSStartKiB: a.RSSKiB, RSSEndKiB: b.RSSKiB, RSSPeakKiB: b.HWMKiB}
	if d := b.At.Sub(a.At); d > 0 {
		u.CPUPercent = round(100*u.CPUSeconds/d.Seconds(), 1)
	}
	return u
}

// SelfCPU returns the load tool's own CPU time so far.
func SelfCPU() time.Duration { return selfCPU() }

package bench

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's resolution: each power of two is split into 2^subBits
// linear sub-buckets, so a recorded value is off by at most 1/2^subBits (0.8%).
const subBits = 7

// Histogram is a log-linear histogram of durations, in the manner of HDR Histogram: values
// below 2^subBits ns are exact, and each later power-of-two range has 2^subBits equal
// buckets. It holds any duration up to about 292 years in a fixed 7.5 KiB array. The zero
// value is empty and ready; it is not safe for concurrent use.
type Histogram struct {
	counts   [(64 - subBits + 1) << subBits]uint64
	n        uint64
	sum      float64
	min, max time.Duration
}

func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1 // v>>shift is in [2^subBits, 2^(subBits+1))
	return (shift+1)<<subBits + int(v>>shift) - 1<<subBits
}

// lowerBound is the smallest value of bucket i; upper the largest.
func bounds(i int) (lo, hi uint64) {
	if i < 1<<subBits {
		return uint64(i), uint64(i)
	}
	shift := i>>subBits - 1
	m := uint64(i&(1<<subBits-1) + 1<<subBits)
	return m << shift, (m+1)<<shift - 1
}

// Record adds one duration; a negative one counts as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += float64(d)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Mean returns the mean, or 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Max returns the largest recorded value.
func (h *Histogram) Max() time.Duration { return h.max }

// Min returns the smallest recorded value.
func (h *Histogram) Min() time.Duration { return h.min }

// Quantile returns the value at quantile q in [0, 1]: the upper bound of the bucket that
// holds it (capped by the largest value recorded), so that it errs on the slow side.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	q = math.Min(math.Max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bounds(i)
			return min(time.Duration(hi), h.max)
		}
	}
	return h.max
}

// Latency summarises a Histogram in milliseconds, for result files.
type Latency struct {
	Count uint64  `json:"count"`
	Min   float64 `json:"minMs"`
	Mean  float64 `json:"meanMs"`
	P50   float64 `json:"p50Ms"`
	P90   float64 `json:"p90Ms"`
	P99   float64 `json:"p99Ms"`
	P999  float64 `json:"p999Ms"`
	Max   float64 `json:"maxMs"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// Summary returns the histogram's percentiles.
func (h *Histogram) Summary() Latency {
	return Latency{
		Count: h.n, Min: ms(h.min), Mean: ms(h.Mean()),
		P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.max),
	}
}

#!/usr/bin/env bash
# Runs Confab's Go fuzz targets, each for a while, and prints how long each ran and how many
# inputs it tried. A failing input is written to the package's testdata/fuzz/<Target>/, where
# `go test` replays it from then on.
#
#   scripts/fuzz.sh                 every target, 10 minutes each, two at a time
#   scripts/fuzz.sh 15s             every target, 15 seconds each (what `make test`, and so CI, runs)
#   scripts/fuzz.sh 1h Reader       targets whose name matches the regexp, an hour each
#
# JOBS (default 2) targets run at once, each with one fuzzing worker; LOGDIR (default a new
# temporary directory) keeps each target's log. The exit status is 1 if any target failed.
set -euo pipefail
. "$(dirname "$0")/../scripts/env.sh"

duration=${1:-10m}
match=${2:-.}
jobs=${JOBS:-2}
logdir=${LOGDIR:-$(mktemp -d /tmp/confab-fuzz.XXXXXX)}
cd "$(dirname "$0")/.."
mkdir -p "$logdir"

# "package Target" for every fuzz target in the tree.
targets=$(grep -rl --include='*_test.go' '^func Fuzz' internal cmd 2>/dev/null |
	xargs grep -H '^func Fuzz' |
	sed -E 's#^(.*)/[^/]+_test.go:func (Fuzz[A-Za-z0-9_]*)\(.*#./\1 \2#' |
	sort -u | awk -v m="$match" '$2 ~ m')

run_one() {
	pkg=$1 target=$2
	log="$logdir/$(echo "${pkg#./}" | tr / _)_$target.log"
	start=$(date +%s)
	if go test "$pkg" -run '^$' -fuzz "^$target\$" -fuzztime "$duration" -fuzzminimizetime 10s -parallel 1 >"$log" 2>&1; then
		result=ok
	else
		result=FAIL
		: >"$logdir/failed"
	fi
	secs=$(($(date +%s) - start))
	execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
	printf '%-28s %-22s %6ss %12s execs  %s\n' "$pkg" "$target" "$secs" "${execs:-0}" "$result"
}

echo "fuzzing for $duration each, $jobs at a time; logs in $logdir"
running=0
while read -r pkg target; do
	[ -n "$pkg" ] || continue
	if [ "$running" -ge "$jobs" ]; then
		wait -n || true
		running=$((running - 1))
	fi
	run_one "$pkg" "$target" &
	running=$((running + 1))
done <<<"$targets"
wait
if [ -e "$logdir/failed" ]; then
	echo "a fuzz target failed: its log is in $logdir, the input that failed in the package's testdata/fuzz/" >&2
	exit 1
fi

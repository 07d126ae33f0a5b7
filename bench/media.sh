#!/usr/bin/env bash
# media.sh — measure Confab's media server (the Call Bridge's SFU, joined over XMPP as a
# browser joins) beside Janus's VideoRoom (Debian's janus, driven through its HTTP API),
# with the same pion participants, media and meeting shapes, and write the results to
# bench/results/media/ (one JSON file per server and shape, table.md, plots).
#
#   bench/media.sh                     # everything (about 25 minutes on 2 cores)
#   QUICK=1 bench/media.sh             # 8-second windows, for trying the script out
#   SERVERS=confab SHAPES="mesh:2 mesh:5" bench/media.sh
#   SOAK=30m bench/media.sh            # the soak instead: 20 participants on Confab for 30
#                                      # minutes; goroutines, RSS and open files sampled
#   BADNET=1 bench/media.sh            # the bad-network runs instead (go test, root)
#
# Every run happens in a network namespace of its own that has only loopback and
# 127.0.0.2 (Janus offers every address of a non-loopback interface, and none of a loopback
# one): no packet leaves the machine or reaches its other interfaces. Needs root (ip netns),
# Go, and the Debian packages janus, iproute2 and nftables (scripts/test-deps.sh).
#
# Check `uptime` first: the figures are worth quoting only on a quiet machine.
set -euo pipefail
. "$(dirname "$0")/../scripts/env.sh"

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
results=${RESULTS:-$repo/bench/results/media}
servers=${SERVERS:-confab janus}
# The layer each shape's receivers ask for: the high one where a browser would show the
# video large, the mid or low one where it shows many tiles, as a layout would.
shapes=${SHAPES:-mesh:2@f mesh:5@f mesh:10@h mesh:25@q mesh:50@q webinar:50@f webinar:100@f webinar:200@f rooms:100x3@h}
if [[ -n "${QUICK:-}" ]]; then
	window=8s; settle=2s; probes=3
else
	window=${WINDOW:-30s}; settle=5s; probes=10
fi
work=$(mktemp -d /tmp/confab-media.XXXXXX)
trap 'rm -rf "$work"' EXIT
log() { printf '\n== %s\n' "$*" >&2; }

[[ $(id -u) -eq 0 ]] || { echo "media.sh: needs root (network namespaces)" >&2; exit 1; }
for p in janus ip nft; do
	command -v "$p" >/dev/null || { echo "media.sh: $p missing: run scripts/test-deps.sh" >&2; exit 1; }
done
go build -o "$work/confab-bench" ./cmd/confab-bench
mkdir -p "$results"

if [[ -n "${BADNET:-}" ]]; then
	log "bad networks (go test -run BadNetwork, in network namespaces)"
	CONFAB_BADNET_OUT=$results go test -count=1 -timeout 20m -run 'TestBadNetwork' -v ./internal/bench/media/ 2>&1 | tee "$results/badnet.txt"
	exit 0
fi

if [[ -n "${SOAK:-}" ]]; then
	log "soak: mesh:20 on Confab for $SOAK"
	"$work/confab-bench" media -netns -server confab -shapes mesh:20@q -duration "$SOAK" -settle 10s -probes 0 \
		-soak-sample 1m -out "$results/soak" | tee "$results/soak.txt"
	exit 0
fi

{
	echo "date: $(date -u +%FT%TZ)"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
	echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB; kernel $(uname -r); $(go version | cut -d' ' -f3)"
	echo "janus: $(dpkg-query -W -f='${Version}' janus 2>/dev/null || echo missing)"
	echo "window $window, settle $settle, probes $probes; shapes: $shapes"
} > "$results/machine.txt"

for shape in $shapes; do
	for s in $servers; do
		log "$s $shape (load $(cut -d' ' -f1 /proc/loadavg))"
		echo "$s $shape load-at-start $(cut -d' ' -f1 /proc/loadavg)" >> "$results/machine.txt"
		"$work/confab-bench" media -netns -server "$s" -shapes "$shape" -duration "$window" -settle "$settle" \
			-probes "$probes" -out "$results" || echo "media.sh: $s $shape failed" >&2
	done
done

"$work/confab-bench" media-report "$results"/*.json > "$results/table.md"
(cd bench/plot && go run . -out "$results" "$results"/*.json) || echo "media.sh: plot failed" >&2
log "results in $results"
cat "$results/table.md"

#!/usr/bin/env bash
# compare.sh — measure Confab, Prosody and ejabberd side by side on this machine, with the
# same certificate (ECDSA P-256), domain, users, SASL mechanism and scenarios, and write the
# results to bench/results/ (one JSON file per run, table.md, plots).
#
#   bench/compare.sh                      # everything (about 10-15 minutes on 2 cores)
#   SERVERS="confab ejabberd" bench/compare.sh
#   QUICK=1 bench/compare.sh              # shorter runs, for trying the script out
#
# Prosody and ejabberd store SCRAM-SHA-256 keys (4096 iterations), not passwords, as a
# production deployment does and as Confab's Call Bridge does, so that no server derives
# keys (PBKDF2) during a SCRAM login; they then offer SCRAM-SHA-256 and PLAIN.
#
# Needs Go, and root (or sudo) to install the Debian packages prosody and ejabberd if they
# are missing. Every server listens on 127.0.0.1 only and runs from a temporary directory;
# nothing under /etc or /var is changed, and system services are left alone.
set -euo pipefail
. "$(dirname "$0")/../scripts/env.sh"

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
results=${RESULTS:-$repo/bench/results}
servers=${SERVERS:-confab prosody ejabberd}
work=$(mktemp -d /tmp/confab-bench.XXXXXX)
serve_pid=""
began=$(date +%s)

if [[ -n "${QUICK:-}" ]]; then
	login_s=3s; plain_s=3s; rate_s=3s; rt_s=3s; idle_big=2000
	rates="50 100 200 400"
else
	login_s=8s; plain_s=5s; rate_s=5s; rt_s=8s; idle_big=10000
	rates="50 100 200 300 400 500 600 700 800 1000 1200 1400 1600"
fi

cleanup() {
	if [[ -n "$serve_pid" ]] && kill -0 "$serve_pid" 2>/dev/null; then
		kill -TERM "$serve_pid" 2>/dev/null || true
		wait "$serve_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

log() { printf '\n== %s\n' "$*" >&2; }

# --- the peers, from Debian -------------------------------------------------------------
need=()
for s in $servers; do
	case $s in
	prosody) command -v prosody >/dev/null || need+=(prosody) ;;
	ejabberd) compgen -G '/usr/lib/*/ejabberd-*/ebin/ejabberd.app' >/dev/null || need+=(ejabberd) ;;
	esac
done
if ((${#need[@]})); then
	log "installing ${need[*]} (Debian packages)"
	sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
	# The packages start their system services; the benchmark runs its own instances.
	for p in "${need[@]}"; do $sudo service "$p" stop >/dev/null 2>&1 || true; done
fi

# --- the tool ------------------------------------------------------------------------------
log "building confab-bench"
mkdir -p "$work/bin"
go build -o "$work/bin/confab-bench" ./cmd/confab-bench
bench="$work/bin/confab-bench"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "open files: $(ulimit -n)" >&2
if (( $(ulimit -n) < idle_big + 1000 )); then
	idle_big=$(( ($(ulimit -n) - 1000) / 1000 * 1000 ))
	echo "not enough open files for 10000 sessions: the big idle run holds $idle_big" >&2
fi

mkdir -p "$results"
rm -f "$results"/*.json
"$bench" cert -dir "$work/certs" -domain bench.example >&2
{
	echo "date: $(date -u +%FT%TZ)"
	echo "uptime: $(uptime)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
	echo "kernel: $(uname -r)"
	echo "go: $(go version | cut -d' ' -f3)"
	echo "prosody: $(dpkg-query -W -f '${Version}' prosody 2>/dev/null || echo -)"
	echo "ejabberd: $(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null || echo -)"
	echo "confab: $(git rev-parse --short HEAD 2>/dev/null || echo -)"
} > "$results/machine.txt"
cat "$results/machine.txt" >&2
load1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load1" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
	echo "WARNING: load average $load1 on $(nproc) cores: other work is running and will skew the figures" >&2
fi

# field FILE KEY prints the first number after "KEY": in a result file.
field() { grep -m1 "\"$2\":" "$1" | sed 's/.*: *\([0-9.]*\).*/\1/'; }

run() { # run NAME SCENARIO ARGS...: one run, result in $results/NAME.json
	local name=$1 scenario=$2; shift 2
	"$bench" "$scenario" -info "$work/$s/info.json" -out "$results/$name.json" "$@" || echo "run $name failed" >&2
}

start_server() {
	log "$s: starting"
	rm -rf "${work:?}/$s"
	"$bench" serve -server "$s" -dir "$work/$s" -certs "$work/certs" -users 20 >&2 &
	serve_pid=$!
	for _ in $(seq 1 600); do
		[[ -f "$work/$s/info.json" ]] && break
		kill -0 "$serve_pid" 2>/dev/null || { echo "$s did not start" >&2; exit 1; }
		sleep 0.5
	done
	[[ -f "$work/$s/info.json" ]] || { echo "$s did not start in time" >&2; exit 1; }
	sleep 2 # let the server settle
	local storage
	storage=$(sed -n 's/.*"passwordStorage": *"\(.*\)".*/\1/p' "$work/$s/info.json")
	echo "$s started $(date -u +%T): load $(cut -d' ' -f1-3 /proc/loadavg); passwords: ${storage:-?}" | tee -a "$results/machine.txt" >&2
}

stop_server() {
	log "$s: stopping"
	kill -TERM "$serve_pid"
	wait "$serve_pid" || true
	serve_pid=""
}

for s in $servers; do
	start_server

	log "$s: logins flat out (SCRAM-SHA-256, 8 workers)"
	run "$s-login-scram" login -duration "$login_s" -concurrency 8
	log "$s: logins flat out (PLAIN)"
	run "$s-login-plain" login -duration "$plain_s" -concurrency 8 -mech PLAIN
	if [[ $s == confab ]]; then
		log "$s: logins over WebSocket (SCRAM-SHA-256)"
		run "$s-login-websocket" login -duration "$plain_s" -concurrency 8 -websocket
	fi

	log "$s: logins at rising rates (SCRAM-SHA-256)"
	over=0
	for r in $rates; do
		run "$s-rate-$r" login -rate "$r" -duration "$rate_s"
		f="$results/$s-rate-$r.json"
		[[ -f $f ]] || break
		p99=$(field "$f" p99Ms); got=$(field "$f" perSecond)
		# Two rates past the knee are enough to draw the curve.
		if awk -v p="$p99" -v g="$got" -v r="$r" 'BEGIN { exit !(p > 50 || g < 0.9 * r) }'; then
			over=$((over + 1))
			((over >= 2)) && break
		fi
	done

	log "$s: round trips through the component link"
	run "$s-roundtrip" roundtrip -duration "$rt_s" -clients 8 -window 4

	stop_server

	# Memory per idle session is measured on a fresh server, so that no memory freed by the
	# runs above is reused. Sessions are opened with SCRAM-SHA-256, every server's cheapest
	# mechanism now that all three store keys (PLAIN costs a key derivation, or Argon2id).
	start_server
	log "$s: $idle_big idle sessions (memory read at 1000 on the way)"
	run "$s-idle" idle -sessions "$idle_big" -checkpoints 1000 -concurrency 16 -hold 5s -mech SCRAM-SHA-256
	stop_server
done
echo "runs finished $(date -u +%T) after $(( $(date +%s) - began ))s: load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$results/machine.txt" >&2

log "table"
"$bench" report "$results"/*.json | tee "$results/table.md"
"$bench" report -json "$results"/*.json > "$results/figures.json"

log "plots"
(cd bench/plot && go run . -out "$results" "$results"/*.json) || echo "plots failed (see above)" >&2
echo "results in $results" >&2

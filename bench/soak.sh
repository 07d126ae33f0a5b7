#!/usr/bin/env bash
# soak.sh — a bounded soak of Confab on loopback: N authenticated sessions held idle while
# logins arrive at a steady rate for a duration, with the errors of both, and each server
# process's goroutines (go_goroutines from its /metrics) and resident memory (/proc) at the
# start and the end of the steady phase, every 10 seconds in between, and again once the
# sessions have closed.
#
#   bench/soak.sh                                       # issue 6: 10000 sessions, 500 logins/s, 10 minutes
#   bench/soak.sh -sessions 2000 -rate 100 -duration 3m # shorter, for a small machine
#
# The roles run as separate processes, as deployed — `confab xmpp` (its [limits]
# max_sessions sized for the run; `confab up` is fixed at 10000 client connections, fewer
# than 10000 sessions plus the logins in flight) and `confab callbridge`, which decides
# every login from its store — and the load comes from `confab-bench idle` and `confab bench
# login` (SCRAM-SHA-256 over STARTTLS). Everything listens on 127.0.0.1, runs from a
# temporary directory, and is stopped when the script ends, whatever happens; each wait has
# a deadline. The exit status is 1 if a login or a session failed, or the goroutines grew
# over the steady phase or did not come back down once the sessions closed.
set -euo pipefail
. "$(dirname "$0")/../scripts/env.sh"

usage() {
	sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
	cat <<EOF

flags:
  -sessions N     idle sessions held (default 10000)
  -rate R         logins per second during the steady phase (default 500)
  -duration D     length of the steady phase, a Go duration (default 10m)
  -users U        bench users, user0..userU-1, shared round robin (default 100)
  -dir DIR        working directory, kept afterwards (default: a temporary one, removed)
  -bin FILE       the confab binary (default: built from this repository)
EOF
}

sessions=10000 rate=500 duration=10m users=100 dir="" bin=""
while (($#)); do
	case $1 in
	-sessions) sessions=$2; shift 2 ;;
	-rate) rate=$2; shift 2 ;;
	-duration) duration=$2; shift 2 ;;
	-users) users=$2; shift 2 ;;
	-dir) dir=$2; shift 2 ;;
	-bin) bin=$2; shift 2 ;;
	-h | -help | --help) usage; exit 0 ;;
	*) echo "soak.sh: unknown flag $1" >&2; usage >&2; exit 2 ;;
	esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
keep=1
if [[ -z $dir ]]; then
	dir=$(mktemp -d /tmp/confab-soak.XXXXXX)
	keep=0
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		# Give each its shutdown bound, then kill it.
		for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	((keep)) || rm -rf "$dir"
}
trap cleanup EXIT

# forget PID: a process that has ended and been waited for is no longer ours to signal.
forget() {
	local p rest=()
	for p in "${pids[@]}"; do [[ $p == "$1" ]] || rest+=("$p"); done
	pids=("${rest[@]}")
}

log() { printf '\n== %s\n' "$*" >&2; }
die() { echo "soak.sh: $*" >&2; exit 1; }

# seconds D converts a Go duration of s, m or h (e.g. 3m, 90s, 1h30m) to seconds.
seconds() {
	local d=$1 total=0 n unit
	while [[ $d =~ ^([0-9]+)([hms])(.*)$ ]]; do
		n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]} d=${BASH_REMATCH[3]}
		case $unit in h) total=$((total + n * 3600)) ;; m) total=$((total + n * 60)) ;; s) total=$((total + n)) ;; esac
	done
	[[ -z $d ]] || die "duration $1: use whole hours, minutes and seconds, e.g. 10m or 2m30s"
	echo "$total"
}
run_s=$(seconds "$duration")
((run_s > 0)) || die "duration $duration is not positive"

# wait_for SECONDS WHAT PID COMMAND...: polls COMMAND every half second until it succeeds;
# fails if process PID (0: none) ends first.
wait_for() {
	local limit=$1 what=$2 pid=$3; shift 3
	local deadline=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		if ((pid)) && ! kill -0 "$pid" 2>/dev/null; then
			die "$what: the process ended"
		fi
		((SECONDS < deadline)) || die "$what: not within ${limit}s"
		sleep 0.5
	done
}

# free_port prints a loopback port nothing listens on, below the ephemeral range so that no
# outgoing connection holds it either.
read -r ephemeral _ </proc/sys/net/ipv4/ip_local_port_range
free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((10000 + RANDOM % (ephemeral - 10000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	die "no free port"
}

for tool in curl jq timeout; do
	command -v "$tool" >/dev/null || die "needs $tool"
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
need=$((sessions + 2 * rate + 1000))
(($(ulimit -n) >= need)) || die "$sessions sessions need $need open files; ulimit -n is $(ulimit -n)"

# --- the binary, certificates, ports -------------------------------------------------------
if [[ -z $bin ]]; then
	log "building confab"
	(cd "$repo" && go build -o "$dir/confab" ./cmd/confab)
	bin=$dir/confab
fi
log "building confab-bench"
(cd "$repo" && go build -o "$dir/confab-bench" ./cmd/confab-bench)
benchbin=$dir/confab-bench
domain=soak.example
"$benchbin" cert -dir "$dir/certs" -domain "$domain" >&2
ca=$dir/certs/ca.pem
c2s=$(free_port) comp=$(free_port) ws=$(free_port) admin=$(free_port) api=$(free_port) web=$(free_port)

# --- the XMPP server --------------------------------------------------------------------------
log "starting the XMPP server"
mkdir -p "$dir/xmpp" "$dir/cb"
cat >"$dir/xmpp/xmpp.toml" <<EOF
domain = "$domain"
data_dir = "$dir/xmpp"
[listen]
c2s = "127.0.0.1:$c2s"
component = "127.0.0.1:$comp"
websocket = "127.0.0.1:$ws"
admin = "127.0.0.1:$admin"
[tls]
cert = "$dir/certs/cert.pem"
key = "$dir/certs/key.pem"
[limits]
max_sessions = $need
# the load tool logs in and holds every session from one address
unauthenticated_per_address = $need
negotiating_per_address = $need
EOF
secret=$("$bin" xmpp callbridge add cb1 -config "$dir/xmpp/xmpp.toml" | sed -n 's/^secret: //p')
[[ -n $secret ]] || die "xmpp callbridge add printed no secret"
"$bin" xmpp -config "$dir/xmpp/xmpp.toml" >"$dir/xmpp.log" 2>&1 &
xmpp_pid=$!
pids+=("$xmpp_pid")
wait_for 30 "the XMPP server (see $dir/xmpp.log)" "$xmpp_pid" curl -sf "http://127.0.0.1:$admin/healthz"

# --- the Call Bridge ------------------------------------------------------------------------
log "starting the Call Bridge"
cat >"$dir/cb/callbridge.toml" <<EOF
data_dir = "$dir/cb"
[listen]
api = "127.0.0.1:$api"
web = "127.0.0.1:$web"
[tls]
cert = "$dir/certs/cert.pem"
key = "$dir/certs/key.pem"
[xmpp]
ca = "$ca"
EOF
apipw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
echo "$apipw" | "$bin" callbridge api-user add admin -config "$dir/cb/callbridge.toml" >/dev/null
"$bin" callbridge -config "$dir/cb/callbridge.toml" >"$dir/callbridge.log" 2>&1 &
cb_pid=$!
pids+=("$cb_pid")
apicurl() { curl -sf --cacert "$ca" -u "admin:$apipw" "$@"; }
wait_for 30 "the Call Bridge's API (see $dir/callbridge.log)" "$cb_pid" apicurl "https://localhost:$api/api/v1/system/status"
apicurl -X PUT "https://localhost:$api/api/v1/system/configuration/xmpp" \
	--data-urlencode uniqueName=cb1 --data-urlencode domain=$domain \
	--data-urlencode "serverAddressOverride=localhost:$comp" --data-urlencode "sharedSecret=$secret" >/dev/null
password=soak-password-1
log "creating $users users"
for ((i = 0; i < users; i++)); do
	apicurl -X POST "https://localhost:$api/api/v1/users" -d "username=user$i" -d "password=$password" >/dev/null ||
		die "could not create user$i"
done
registered() { curl -sf "http://127.0.0.1:$admin/healthz" | grep -q '"callBridges": *[1-9]'; }
wait_for 30 "the Call Bridge's registration" "$cb_pid" registered

# --- measuring ------------------------------------------------------------------------------
# metric URL NAME prints the value of an unlabelled series, or a labelled one given in full.
metric() { curl -sf --cacert "$ca" "$1" | awk -v n="$2" '$1 == n { print $2; exit }'; }
xmpp_metrics=http://127.0.0.1:$admin/metrics
cb_metrics=https://localhost:$api/metrics
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# heap URL prints the Go heap in use, in KiB (RSS also holds memory freed but not yet returned).
heap() { metric "$1" go_memstats_heap_inuse_bytes | awk '{ printf "%d", $1 / 1024 }'; }
sample() { # sample LABEL: one CSV line
	printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$1" "$SECONDS" \
		"$(metric "$xmpp_metrics" go_goroutines)" "$(rss "$xmpp_pid")" "$(heap "$xmpp_metrics")" \
		"$(metric "$cb_metrics" go_goroutines)" "$(rss "$cb_pid")" "$(heap "$cb_metrics")" \
		"$(metric "$xmpp_metrics" 'confab_xmpp_sessions{transport="tcp"}')" \
		"$(metric "$xmpp_metrics" 'confab_xmpp_logins_total{outcome="success"}')"
}
csv=$dir/samples.csv
echo "label,seconds,xmpp_goroutines,xmpp_rss_kib,xmpp_heap_kib,cb_goroutines,cb_rss_kib,cb_heap_kib,xmpp_sessions,xmpp_logins_ok" >"$csv"
sample baseline >>"$csv"

{
	echo "date: $(date -u +%FT%TZ)"
	echo "uptime: $(uptime)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
	echo "confab: $(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo -)"
	echo "settings: $sessions sessions, $rate logins/s, $duration, $users users"
} >"$dir/machine.txt"
cat "$dir/machine.txt" >&2

bench=("$benchbin")
target=(-addr "127.0.0.1:$c2s" -domain "$domain" -ca "$ca" -users "$users" -password "$password")

# --- the sessions -----------------------------------------------------------------------------
# The idle run holds its sessions for the steady phase and a margin, then closes them.
log "opening $sessions idle sessions"
margin=30
timeout $((run_s + 1200)) "${bench[@]}" idle "${target[@]}" -sessions "$sessions" -concurrency 16 \
	-hold "$((run_s + margin))s" -pid "$xmpp_pid" -label confab-xmpp -out "$dir/idle.json" >"$dir/idle.txt" 2>&1 &
idle_pid=$!
pids+=("$idle_pid")
open_enough() {
	local n
	n=$(metric "$xmpp_metrics" 'confab_xmpp_sessions{transport="tcp"}')
	[[ -n $n ]] && awk -v n="$n" -v s="$sessions" 'BEGIN { exit !(n >= s) }'
}
deadline=$((SECONDS + 1200))
until open_enough; do
	kill -0 "$idle_pid" 2>/dev/null || die "the idle run ended before its sessions were open: $(cat "$dir/idle.txt")"
	((SECONDS < deadline)) || die "$sessions sessions not open within 20 minutes"
	sleep 1
done
sleep 3 # the idle run settles for 2s once its sessions are open; its hold starts then

# --- the steady phase ---------------------------------------------------------------------------
log "steady phase: $rate logins/s for $duration with $sessions sessions held"
sample start >>"$csv"
(
	while sleep 10; do sample run >>"$csv"; done
) &
sampler=$!
pids+=("$sampler")
login_ok=1
timeout $((run_s + 120)) "${bench[@]}" login "${target[@]}" -rate "$rate" -duration "$duration" \
	-pid "$xmpp_pid" -label confab-xmpp -out "$dir/login.json" >"$dir/login.txt" 2>&1 || login_ok=0
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
forget "$sampler"
sample end >>"$csv"

log "closing the sessions"
idle_ok=1
wait "$idle_pid" || idle_ok=0
forget "$idle_pid"
closed() { [[ $(metric "$xmpp_metrics" 'confab_xmpp_sessions{transport="tcp"}') == 0 ]]; }
wait_for 60 "the sessions to close" "$xmpp_pid" closed
sleep 5 # let the servers finish the goroutines of the last connections
sample after >>"$csv"

# --- the report -----------------------------------------------------------------------------
get() { awk -F, -v l="$1" -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next } $1 == l { print $col[c]; exit }' "$csv"; }
num() { jq -r "$2 // 0" "$1" 2>/dev/null || echo "?"; }
errs() { jq -r '[.errors // {} | to_entries[] | "\(.key)=\(.value)"] | join(" ")' "$1" 2>/dev/null || echo "?"; }

{
	echo
	echo "soak: $sessions sessions held, $rate logins/s for $duration ($(cut -d' ' -f1-3 /proc/loadavg) load at the end)"
	echo
	if [[ -f $dir/idle.json ]]; then
		echo "sessions: $(num "$dir/idle.json" .sessions) of $sessions opened, errors: $(errs "$dir/idle.json")"
	else
		echo "sessions: no result ($(tail -n 3 "$dir/idle.txt"))"
	fi
	if [[ -f $dir/login.json ]]; then
		echo "logins:   $(num "$dir/login.json" .ok) ok of $(num "$dir/login.json" .attempts), $(num "$dir/login.json" .perSecond)/s," \
			"p50 $(num "$dir/login.json" .latency.p50Ms) ms, p99 $(num "$dir/login.json" .latency.p99Ms) ms," \
			"max $(num "$dir/login.json" .latency.maxMs) ms, errors: $(errs "$dir/login.json")"
	else
		echo "logins:   no result ($(tail -n 3 "$dir/login.txt"))"
	fi
	echo
	mib() { awk -v k="$(get "$1" "$2")" 'BEGIN { printf "%.1f", k / 1024 }'; }
	printf '%-9s %9s %10s %9s | %9s %10s %9s | %8s\n' "" "xmpp" "" "" "cb" "" "" ""
	printf '%-9s %9s %10s %9s | %9s %10s %9s | %8s\n' "" goroutines "RSS MiB" "heap MiB" goroutines "RSS MiB" "heap MiB" sessions
	for l in baseline start end after; do
		printf '%-9s %9s %10s %9s | %9s %10s %9s | %8s\n' "$l" \
			"$(get $l xmpp_goroutines)" "$(mib $l xmpp_rss_kib)" "$(mib $l xmpp_heap_kib)" \
			"$(get $l cb_goroutines)" "$(mib $l cb_rss_kib)" "$(mib $l cb_heap_kib)" "$(get $l xmpp_sessions)"
	done
	echo
	echo "samples every 10s: $csv"
} | tee "$dir/summary.txt"

# --- the verdict ------------------------------------------------------------------------------
status=0
login_errors=$(jq -r '[.errors // {} | .[]] | add // 0' "$dir/login.json" 2>/dev/null || echo 1)
idle_errors=$(jq -r '[.errors // {} | .[]] | add // 0' "$dir/idle.json" 2>/dev/null || echo 1)
if ((!login_ok || !idle_ok || login_errors > 0 || idle_errors > 0)); then
	echo "FAIL: errors (logins $login_errors, sessions $idle_errors)" | tee -a "$dir/summary.txt"
	status=1
fi
# Flat: the goroutines at the end of the steady phase within 2% (and 50) of its start, and
# back within 50 of the baseline once the sessions closed.
for role in xmpp cb; do
	s=$(get start ${role}_goroutines) e=$(get end ${role}_goroutines) b=$(get baseline ${role}_goroutines) a=$(get after ${role}_goroutines)
	if ! awk -v s="$s" -v e="$e" 'BEGIN { d = e - s; if (d < 0) d = -d; exit !(d <= 50 || d <= 0.02 * s) }'; then
		echo "FAIL: $role goroutines went from $s to $e over the steady phase" | tee -a "$dir/summary.txt"
		status=1
	fi
	if ! awk -v b="$b" -v a="$a" 'BEGIN { exit !(a - b <= 50) }'; then
		echo "FAIL: $role goroutines $a once the sessions closed, $b before they opened" | tee -a "$dir/summary.txt"
		status=1
	fi
done
((status)) || echo "OK: no errors; goroutines flat over the steady phase and back to the baseline after" | tee -a "$dir/summary.txt"
((keep)) && echo "results in $dir" >&2
exit $status

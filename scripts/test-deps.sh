#!/usr/bin/env bash
# Installs the third-party software Confab's tests talk to: XMPP peers nobody here wrote
# (slixmpp, @xmpp/client, Prosody, ejabberd), a DNS server (dnsmasq), a TURN server (coturn),
# and what later suites need. Idempotent: a second run installs nothing new. Needs root (or
# sudo) for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_pkgs=(python3-slixmpp python3-requests python3-xmltodict dnsmasq-base prosody ejabberd slapd ldap-utils chromium argon2 sqlite3 systemd coturn ffmpeg
	# media benchmarks and network-namespace tests: Janus (VideoRoom) as the peer SFU,
	# iproute2 (ip netns, tc) and nftables for bad networks
	janus iproute2 nftables)

missing=()
for p in "${apt_pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	echo "test-deps: installing ${missing[*]}"
	$sudo apt-get update -qq
	# The servers among the peers (Prosody, ejabberd, slapd, coturn) are started by the tests on
	# loopback with their own configuration; keep their packages from starting system
	# services while they install.
	rc=/usr/sbin/policy-rc.d
	made_rc=""
	if [ ! -e "$rc" ]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee "$rc" >/dev/null && $sudo chmod +x "$rc" && made_rc=1
	fi
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	[ -z "$made_rc" ] || $sudo rm -f "$rc"
fi

# npm peers: each directory with a package-lock.json under testdata/ is installed as locked.
while IFS= read -r lock; do
	dir=$(dirname "$lock")
	if [ ! -d "$dir/node_modules" ] || [ "$lock" -nt "$dir/node_modules" ]; then
		echo "test-deps: npm ci in $dir"
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
	fi
done < <(find internal web -path '*/node_modules' -prune -o -name package-lock.json -print 2>/dev/null)

go mod download
echo "test-deps: ready"

#!/usr/bin/env bash
# Checks Confab and the Go toolchain it is built with against the Go vulnerability database.
#
#   scripts/govulncheck.sh            exit 0: nothing reachable is affected; 3: something is
#
# govulncheck reads the database from https://vuln.go.dev, which this project's machines and
# CI cannot reach; the same reports are published as the Go module golang.org/x/vulndb
# (data/osv), which the module proxy serves. This script downloads that module, lays its
# reports out as a govulncheck database (index/db.json, index/modules.json, ID/<id>.json) and
# runs govulncheck against it. VULNDB=<version> pins the reports, GOVULNCHECK=<version> the
# tool; set VULN_ONLINE=1 to use vuln.go.dev instead.
set -euo pipefail
. "$(dirname "$0")/../scripts/env.sh"

tool=golang.org/x/vuln/cmd/govulncheck@${GOVULNCHECK:-v1.9.0}
cd "$(dirname "$0")/.."

if [ "${VULN_ONLINE:-}" = 1 ]; then
	exec go run "$tool" ./...
fi

osv=$(go mod download -json "golang.org/x/vulndb@${VULNDB:-latest}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')/data/osv
db=$(mktemp -d /tmp/confab-vulndb.XXXXXX)
trap 'rm -rf "$db"' EXIT

python3 - "$osv" "$db" <<'EOF'
import glob, json, os, shutil, sys

src, out = sys.argv[1], sys.argv[2]
os.makedirs(os.path.join(out, "index"))
os.makedirs(os.path.join(out, "ID"))
modules, vulns, modified = {}, [], ""
for path in sorted(glob.glob(os.path.join(src, "*.json"))):
    with open(path) as f:
        entry = json.load(f)
    shutil.copy(path, os.path.join(out, "ID", os.path.basename(path)))
    modified = max(modified, entry["modified"])
    vulns.append({"id": entry["id"], "modified": entry["modified"], "aliases": entry.get("aliases", [])})
    for affected in entry.get("affected", []):
        v = {"id": entry["id"], "modified": entry["modified"]}
        for r in affected.get("ranges", []):
            for event in r.get("events", []):
                if "fixed" in event:
                    v["fixed"] = event["fixed"]
        modules.setdefault(affected["package"]["name"], []).append(v)
with open(os.path.join(out, "index", "db.json"), "w") as f:
    json.dump({"modified": modified}, f)
with open(os.path.join(out, "index", "modules.json"), "w") as f:
    json.dump([{"path": p, "vulns": v} for p, v in sorted(modules.items())], f)
with open(os.path.join(out, "index", "vulns.json"), "w") as f:
    json.dump(vulns, f)
print(f"govulncheck database: {len(vulns)} reports from {src}", file=sys.stderr)
EOF

# go run would turn govulncheck's exit status 3 (vulnerable) into 1: install it instead.
GOBIN="$db/bin" go install "$tool"
"$db/bin/govulncheck" -db "file://$db" ./...

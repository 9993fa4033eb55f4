#!/usr/bin/env bash
# The official MCP conformance suite (npm @modelcontextprotocol/conformance,
# pinned in tools/conformance) against the go-sdk's everything-server, three
# ways, and the verdicts side by side:
#   direct   — the server itself over Streamable HTTP
#   relay    — the same binary as a stdio child of tetherd, through tether-relay
#              (default era choice)
#   relay25  — the same, pinned with "era": "2025"
# The suite sends no Authorization header: a loopback proxy
# (internal/testservers/authproxy) adds the client token for the relay runs.
# Every scenario runs with --output-dir, and its checks.json gives a verdict
# per check (scenario/check → SUCCESS, FAILURE, WARNING, INFO…). A
# configuration passes a scenario when the suite exits 0 and no check is a
# FAILURE. Exits non-zero when a configuration fails a scenario, when any
# check's verdict differs between the configurations (each such check is
# printed with its three verdicts), or when the pinned suite does not list
# exactly 32 server scenarios.
# Usage: scripts/conformance.sh [scenario...]   (default: every server scenario)
# CONFORMANCE_KEEP=DIR keeps the logs and suite outputs of a failing run in DIR
# (a fresh subfolder per run) instead of deleting them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
pids=()
cleanup() { # exit status
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # Wait for them: a tetherd still shutting down writes into its home, and
  # rm -rf then failed ("Directory not empty"), failing a run that passed.
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${CONFORMANCE_KEEP:-}" ] && [ "$1" != 0 ]; then
    mkdir -p "$CONFORMANCE_KEEP"; keep=$(mktemp -d "$CONFORMANCE_KEEP/run.XXXXXX")
    rm -rf "$work/bin"; cp -r "$work/." "$keep/"; echo "conformance: logs kept in $keep" >&2
  fi
  rm -rf "$work"
}
trap 'cleanup $?' EXIT

[ -x tools/conformance/node_modules/.bin/conformance ] || npm ci --prefix tools/conformance --no-audit --no-fund --loglevel=error
export PATH=$root/tools/conformance/node_modules/.bin:$PATH
want_scenarios=32 # what the pinned suite (0.1.16) lists
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  mapfile -t scenarios < <(conformance list --server | sed -n 's/^  - \([a-z0-9-]*\).*/\1/p')
  if [ ${#scenarios[@]} -ne $want_scenarios ]; then
    echo "conformance: FAILED: the suite lists ${#scenarios[@]} server scenarios, want $want_scenarios (another suite version, or its list output changed)"
    exit 1
  fi
fi
GOBIN=$work/bin go install github.com/modelcontextprotocol/go-sdk/conformance/everything-server@v1.8.0
go build -o "$work/bin/tetherd" ./cmd/svc
go build -o "$work/bin/tether-relay" ./cmd/relay
go build -o "$work/bin/authproxy" ./internal/testservers/authproxy
ev=$work/bin/everything-server

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_for() { # url [header]
  for _ in $(seq 200); do curl -fsS ${2:+-H "$2"} "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "conformance: $1 never answered" >&2; return 1
}

# direct
dport=$(free_port)
"$ev" -http "127.0.0.1:$dport" -stateless=false > "$work/direct.log" 2>&1 & pids+=($!)
for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$dport) 2>/dev/null && break; sleep 0.05; done

# relay + tetherd, twice (default era, pinned 2025)
rport=$(free_port)
"$work/bin/tether-relay" serve --listen "127.0.0.1:$rport" --secret-file "$work/secret" --client-rate 0 > "$work/relay.log" 2>&1 & pids+=($!)
wait_for "http://127.0.0.1:$rport/healthz"
tok() { "$work/bin/tether-relay" token --secret-file "$work/secret" --dev "$1" --scope "$2"; }
declare -A url
for cfg in relay relay25; do
  era=""; [ $cfg = relay25 ] && era=',"era":"2025"'
  mkdir -p "$work/$cfg"
  echo "{\"mcpServers\":{\"ev\":{\"command\":\"$ev\"$era}}}" > "$work/$cfg/mcp.json"
  TETHER_HOME=$work/$cfg/home TETHER_TOKEN=$(tok $cfg bridge) \
    "$work/bin/tetherd" run --config "$work/$cfg/mcp.json" --relay "http://127.0.0.1:$rport" > "$work/$cfg/tetherd.log" 2>&1 & pids+=($!)
  ct=$(tok $cfg client)
  for _ in $(seq 300); do curl -fsS -H "Authorization: Bearer $ct" "http://127.0.0.1:$rport/v1/bridges/$cfg" 2>/dev/null | grep -q '"ready"' && break; sleep 0.05; done
  AUTHPROXY_TOKEN=$ct "$work/bin/authproxy" -listen 127.0.0.1:0 -target "http://127.0.0.1:$rport" > "$work/$cfg/proxy.out" 2>&1 & pids+=($!)
  for _ in $(seq 100); do grep -qs listening "$work/$cfg/proxy.out" && break; sleep 0.05; done
  url[$cfg]="$(sed -n 's/listening on //p' "$work/$cfg/proxy.out")/mcp/$cfg/ev"
done
url[direct]="http://127.0.0.1:$dport/mcp"

# checks.py SCENARIO DIR… (direct, relay, relay25): prints the scenario's
# line of the table and, under it, why a configuration failed and every
# check whose verdict differs; appends "cfg verdict", "checks N" and
# "differ N" lines to $work/tally.
cat > "$work/checks.py" <<'EOF'
import glob, json, os, sys
scenario, dirs = sys.argv[1], sys.argv[2:]
cfgs = ["direct", "relay", "relay25"]
tally = open(os.environ["TALLY"], "a")
verdicts, checks, notes = [], [], []
for cfg, d in zip(cfgs, dirs):
    rc = int(open(d + "/rc").read())
    files = glob.glob(d + "/*/checks.json")
    by = {}
    if len(files) == 1:
        for c in json.load(open(files[0])):
            by.setdefault(c["id"], []).append(c)
    # A check id the scenario repeats is one verdict: its statuses, sorted.
    st = {k: ",".join(sorted(c["status"] for c in v)) for k, v in by.items()}
    msg = {k: "; ".join(c.get("errorMessage") or "" for c in v if c["status"] == "FAILURE") for k, v in by.items()}
    ok = rc == 0 and len(files) == 1 and not any("FAILURE" in v for v in st.values())
    verdicts.append("pass" if ok else "FAIL")
    checks.append((st, msg))
    print(f"{cfg} {verdicts[-1]}", file=tally)
    if not ok:
        why = [f"exit {rc}"]
        if len(files) != 1:
            out = open(d + "/suite.out", errors="replace").read().strip().splitlines()
            why.append(f"{len(files)} checks.json files; the suite said: " + " | ".join(out[-3:]))
        why += [f"{k}: {m or 'FAILURE'}" for k, m in msg.items() if m or "FAILURE" in st[k]]
        notes.append(f"  --- {cfg}: {scenario}: " + "; ".join(why)[:400])
keys = sorted(set().union(*(st.keys() for st, _ in checks)))
# Known differences (scripts/conformance-known.txt): "scenario/check
# direct relay relay25" with the reason beside it; one matches only with
# exactly those three verdicts.
known = set()
for line in open(os.environ["KNOWN"]):
    line = line.split("#", 1)[0].split()
    if len(line) == 4:
        known.add(tuple(line))
differ, seen = [], []
for k in keys:
    v = tuple(st.get(k, "absent") for st, _ in checks)
    if len(set(v)) == 1:
        continue
    line = "  ".join(f"{cfg}={x}" for cfg, x in zip(cfgs, v))
    if (f"{scenario}/{k}",) + v in known:
        seen.append(f"{scenario}/{k}")
        notes.append(f"  ~= {scenario}/{k}: {line} (known, see scripts/conformance-known.txt)")
    else:
        differ.append(k)
        notes.append(f"  != {scenario}/{k}: {line}")
print(f"checks {len(keys)}", file=tally)
print(f"differ {len(differ)}", file=tally)
for k in seen:
    print(f"known {k}", file=tally)
print(f"{scenario:<34}" + "".join(f" {v:<7}" for v in verdicts) + f" {len(keys):>3}" + ("  checks differ" if differ else ""))
for n in notes:
    print(n)
EOF
export TALLY=$work/tally KNOWN=$root/scripts/conformance-known.txt
: > "$TALLY"
printf '%-34s %-7s %-7s %-7s %s\n' scenario direct relay relay25 checks
for s in "${scenarios[@]}"; do
  dirs=()
  for cfg in direct relay relay25; do
    d=$work/out/$cfg/$s; mkdir -p "$d"; dirs+=("$d")
    rc=0; timeout 120 conformance server --url "${url[$cfg]}" --scenario "$s" -o "$d" > "$d/suite.out" 2>&1 || rc=$?
    echo $rc > "$d/rc"
  done
  python3 "$work/checks.py" "$s" "${dirs[@]}"
done
n=${#scenarios[@]}
passes() { grep -c "^$1 pass\$" "$TALLY" || true; }
nchecks=$(awk '$1=="checks"{n+=$2} END{print n+0}' "$TALLY")
ndiff=$(awk '$1=="differ"{n+=$2} END{print n+0}' "$TALLY")
pd=$(passes direct) pr=$(passes relay) p25=$(passes relay25)
nknown=$(grep -c '^known ' "$TALLY" || true)
# On a full run, a known difference that no longer shows is stale: the
# list must say what is true (delete its line).
stale=0
if [ $# -eq 0 ]; then
  while read -r key _; do
    grep -qx "known $key" "$TALLY" || { echo "  stale: $key is in scripts/conformance-known.txt but no longer differs"; stale=$((stale+1)); }
  done < <(sed 's/#.*//' scripts/conformance-known.txt | awk 'NF==4')
fi
if [ "$ndiff" != 0 ]; then same="$ndiff differ"
elif [ "$nknown" = 0 ]; then same="identical verdicts"
else same="no other differences than $nknown known ones (scripts/conformance-known.txt; none a failure)"; fi
echo "conformance: direct $pd/$n, relay $pr/$n, relay (era 2025) $p25/$n; $nchecks checks, $same"
[ "$pd" = "$n" ] && [ "$pr" = "$n" ] && [ "$p25" = "$n" ] && [ "$ndiff" = 0 ] && [ "$stale" = 0 ]

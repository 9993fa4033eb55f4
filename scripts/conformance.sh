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
# Exits non-zero when a configuration fails a scenario or the verdicts differ.
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
  for _ in $(seq 100); do grep -q listening "$work/$cfg/proxy.out" && break; sleep 0.05; done
  url[$cfg]="$(sed -n 's/listening on //p' "$work/$cfg/proxy.out")/mcp/$cfg/ev"
done
url[direct]="http://127.0.0.1:$dport/mcp"

scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  mapfile -t scenarios < <(conformance list --server | sed -n 's/^  - \([a-z0-9-]*\).*/\1/p')
fi
declare -A pass
bad=0
printf '%-34s %-7s %-7s %-7s\n' scenario direct relay relay25
for s in "${scenarios[@]}"; do
  line=$(printf '%-34s' "$s")
  verdicts=()
  for cfg in direct relay relay25; do
    if timeout 120 conformance server --url "${url[$cfg]}" --scenario "$s" > "$work/$cfg-$s.out" 2>&1; then v=pass; else v=FAIL; fi
    verdicts+=("$v"); line+=$(printf ' %-7s' "$v")
    [ "$v" = pass ] && pass[$cfg]=$(( ${pass[$cfg]:-0} + 1 ))
  done
  echo "$line"
  if [ "${verdicts[*]}" != "pass pass pass" ]; then
    bad=1
    for i in 0 1 2; do
      if [ "${verdicts[$i]}" = FAIL ]; then
        cfg=$(echo direct relay relay25 | cut -d' ' -f$((i+1)))
        echo "  --- $cfg: $s"; grep -E "FAILURE|Error:|expected|MCP error" "$work/$cfg-$s.out" | head -5 | sed 's/^/      /'
      fi
    done
  fi
done
n=${#scenarios[@]}
echo "conformance: direct ${pass[direct]:-0}/$n, relay ${pass[relay]:-0}/$n, relay (era 2025) ${pass[relay25]:-0}/$n"
exit $bad

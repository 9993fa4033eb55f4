#!/usr/bin/env bash
# Screenshot of the tether tray icon with its menu and a server submenu open,
# under Xvfb with a real StatusNotifierItem host (gtk-sni-tray-standalone).
# Saves docs/tray.png. Not run in CI. Recipe: desktop-testing.md §5.
#
# Needs: dbus-daemon xvfb xauth xdotool imagemagick status-notifier-watcher
#        (haskell-status-notifier-item-utils) gtk-sni-tray-standalone
#        (haskell-gtk-sni-tray-utils).
# Usage: scripts/tray-screenshot.sh [out.png]      (from the repo root)
set -euo pipefail
if [ -z "${TRAY_SHOT_IN_SESSION:-}" ]; then
  exec env TRAY_SHOT_IN_SESSION=1 dbus-run-session -- "$0" "$@"
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/docs/tray.png}
WORK=$(mktemp -d /tmp/ttshot.XXXX)
PIDS=
trap 'kill $PIDS 2>/dev/null || true; rm -rf "$WORK"' EXIT

cd "$ROOT"
go build -o "$WORK/tether" ./cmd/tray
go build -o "$WORK/relay" ./cmd/relay
go build -o "$WORK/mcpserver" ./internal/testservers/mcpserver

# A real relay and a token, so the menu shows a connected bridge.
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"$WORK/relay" serve --listen "127.0.0.1:$PORT" --secret-file "$WORK/secret" >"$WORK/relay.log" 2>&1 & PIDS="$PIDS $!"
for _ in $(seq 100); do grep -q "listening on" "$WORK/relay.log" && break; sleep 0.05; done
TOKEN=$("$WORK/relay" token --secret-file "$WORK/secret" --dev alice --scope bridge --ttl 720h)

export TETHER_HOME=$WORK/home XDG_CONFIG_HOME=$WORK/xdg
mkdir -p "$TETHER_HOME"
printf '{"relay": "http://127.0.0.1:%s"}\n' "$PORT" >"$TETHER_HOME/settings.json"
cat >"$TETHER_HOME/mcp.json" <<JSON
{
  "mcpServers": {
    "github": {"command": "$WORK/mcpserver", "args": ["-extra-tools", "14"]},
    "files": {"command": "$WORK/mcpserver"},
    "db": {"command": "$WORK/mcpserver", "disabled": true}
  }
}
JSON

export XDG_RUNTIME_DIR=$WORK/run NO_AT_BRIDGE=1
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
exec 3>"$XDG_RUNTIME_DIR/display"
Xvfb -displayfd 3 -screen 0 640x560x24 -nolisten tcp >/dev/null 2>&1 & PIDS="$PIDS $!"
until [ -s "$XDG_RUNTIME_DIR/display" ]; do sleep 0.05; done
export DISPLAY=":$(cat "$XDG_RUNTIME_DIR/display")"
status-notifier-watcher >/dev/null 2>&1 & PIDS="$PIDS $!"
gdbus wait --session --timeout 10 org.kde.StatusNotifierWatcher
gtk-sni-tray-standalone --top --beginning --size 32 -c '#dcdcdc' >/dev/null 2>&1 & PIDS="$PIDS $!"
TETHER_TOKEN=$TOKEN "$WORK/tether" >"$WORK/tether.log" 2>&1 & PIDS="$PIDS $!"

# Wait until the icon is drawn and the bridge is connected (green icon).
for _ in $(seq 200); do
  [ "$(import -window root -crop 32x32+0+0 -format %k info:)" -gt 2 ] && grep -q '"connected"\|connected' "$WORK/tether.log" && break
  sleep 0.05
done
sleep 1.5                                        # servers report their tools
xdotool mousemove 16 16 click 1; sleep 0.7       # open the menu
xdotool key Down Down Right; sleep 0.7           # Disconnect, github (Down skips disabled lines): open it
mkdir -p "$(dirname "$OUT")"
import -window root "$OUT"
echo "saved $OUT"

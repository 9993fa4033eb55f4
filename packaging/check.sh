#!/usr/bin/env bash
# make dist-check: validates what `make dist` put in dist/ (whatever targets
# it built). Needs dpkg-deb, desktop-file-utils, systemd (systemd-analyze)
# and python3 — Debian packages. Fails on the first problem.
set -euo pipefail
cd "$(dirname "$0")/.."
DIST="${DIST:-dist}"
DIST=$(cd "$DIST" 2>/dev/null && pwd) || { echo "dist-check: no ${DIST}; run make dist first" >&2; exit 1; }
[ -f "$DIST/SHA256SUMS" ] || { echo "dist-check: no $DIST/SHA256SUMS; run make dist first" >&2; exit 1; }
fail() { echo "dist-check: FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$DIST" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match"
echo "ok   SHA256SUMS"

python3 - "$DIST"/*_sbom.cdx.json <<'PY' || fail "SBOM"
import json, sys
b = json.load(open(sys.argv[1]))
assert b["bomFormat"] == "CycloneDX", b.get("bomFormat")
names = {c["name"] for c in b.get("components", [])}
assert "github.com/gorilla/websocket" in names, "websocket missing from SBOM components"
PY
echo "ok   SBOM"

# has DEB PATH...: every PATH is in the package.
has() {
	local deb=$1 list
	shift
	list=$(dpkg-deb --contents "$deb" | awk '{print $NF}')
	for p in "$@"; do
		grep -qx "./$p" <<<"$list" || fail "$deb lacks /$p"
	done
}

# verify_unit [--user] FILE ROOT: systemd-analyze on the unit with its
# binaries resolved inside ROOT (the extracted package). It exits 0 on
# unknown keys too, printing a warning, so any output fails.
verify_unit() {
	local mode=() file root out
	if [ "$1" = --user ]; then mode=(--user); shift; fi
	file=$1 root=$2
	mkdir -p "$tmp/units" "$tmp/xdg"
	sed "s#/usr/bin/#$root/usr/bin/#g" "$file" >"$tmp/units/$(basename "$file")"
	out=$(XDG_RUNTIME_DIR="$tmp/xdg" systemd-analyze "${mode[@]}" verify --man=no "$tmp/units/$(basename "$file")" 2>&1) ||
		fail "systemd-analyze verify $file: $out"
	[ -z "$out" ] || fail "systemd-analyze verify $file: $out"
}

shopt -s nullglob
for deb in "$DIST"/tether_*.deb; do
	dpkg-deb --info "$deb" >/dev/null || fail "$deb: not a package"
	[ "$(dpkg-deb -f "$deb" Package)" = tether ] || fail "$deb: wrong Package"
	has "$deb" usr/bin/tetherd usr/bin/tether usr/share/applications/tether.desktop \
		etc/xdg/autostart/tether.desktop usr/lib/systemd/user/tetherd.service \
		usr/share/icons/hicolor/64x64/apps/tether.png
	r="$tmp/root-$(basename "$deb")"
	dpkg-deb -x "$deb" "$r"
	desktop-file-validate "$r/usr/share/applications/tether.desktop" "$r/etc/xdg/autostart/tether.desktop" ||
		fail "desktop-file-validate"
	grep -qx 'MimeType=x-scheme-handler/tether;' "$r/usr/share/applications/tether.desktop" || fail "no tether:// handler"
	# The packaged unit is the one `tetherd install` writes.
	grep -qx 'ExecStart="/usr/bin/tetherd" "run" "--service"' "$r/usr/lib/systemd/user/tetherd.service" || fail "unit ExecStart"
	verify_unit --user "$r/usr/lib/systemd/user/tetherd.service" "$r"
	echo "ok   $deb"
done
for deb in "$DIST"/tether-relay_*.deb; do
	[ "$(dpkg-deb -f "$deb" Package)" = tether-relay ] || fail "$deb: wrong Package"
	has "$deb" usr/bin/tether-relay usr/lib/systemd/system/tether-relay.service etc/default/tether-relay
	r="$tmp/root-$(basename "$deb")"
	dpkg-deb -x "$deb" "$r"
	u="$r/usr/lib/systemd/system/tether-relay.service"
	for k in DynamicUser=yes ProtectSystem=strict StateDirectory=tether-relay LimitNOFILE=65536 NoNewPrivileges=yes 'AmbientCapabilities='; do
		grep -qx "$k" "$u" || fail "relay unit lacks $k"
	done
	verify_unit "$u" "$r"
	echo "ok   $deb"
done

# The native binaries name this build.
host="$DIST/bin/$(go env GOOS)_$(go env GOARCH)"
for b in tetherd tether-relay; do
	[ -x "$host/$b" ] || continue
	v=$("$host/$b" version)
	# Stamped by build.sh: a release or dev.<sha> version and a commit.
	grep -Eq "^$b [0-9][^ ]* \(commit [0-9a-f]{12}, built [0-9]{4}-" <<<"$v" || fail "$b version not stamped: $v"
	echo "ok   $b version: $v"
done

for z in "$DIST"/tether_*_windows_*.zip; do
	d="$tmp/$(basename "$z" .zip)"
	mkdir -p "$d" && (cd "$d" && unzip -q "$z")
	go run packaging/windows/pecheck.go -gui -icon "$d"/*/tether.exe
	go run packaging/windows/pecheck.go "$d"/*/tetherd.exe
	for f in install.ps1 uninstall.ps1; do [ -f "$d"/*/"$f" ] || fail "$z lacks $f"; done
	grep -q 'HKCU:\\Software\\Classes\\tether' "$d"/*/install.ps1 || fail "install.ps1 does not register tether://"
	echo "ok   $z"
done

for z in "$DIST"/tether_*_darwin_*.zip; do
	d="$tmp/$(basename "$z" .zip)"
	mkdir -p "$d" && (cd "$d" && unzip -q "$z")
	python3 - "$d/Tether.app/Contents" <<'PY' || fail "$z Info.plist"
import plistlib, sys, os
c = sys.argv[1]
p = plistlib.load(open(os.path.join(c, "Info.plist"), "rb"))
assert p["LSUIElement"] is True, "LSUIElement"
assert p["CFBundleExecutable"] == "tether"
assert p["CFBundleIdentifier"] == "dev.tether.tray"
assert any("tether" in t["CFBundleURLSchemes"] for t in p["CFBundleURLTypes"]), "tether URL scheme"
icns = open(os.path.join(c, "Resources", p["CFBundleIconFile"] + ".icns"), "rb").read()
assert icns[:4] == b"icns" and int.from_bytes(icns[4:8], "big") == len(icns), "icns header"
la = plistlib.load(open(os.path.join(c, "Library/LaunchAgents/tetherd.plist"), "rb"))
assert la["ProgramArguments"] == ["/Applications/Tether.app/Contents/MacOS/tetherd", "run", "--service"]
assert os.access(os.path.join(c, "MacOS/tetherd"), os.X_OK)
PY
	echo "ok   $z"
done
[ -f "$DIST/tether.rb" ] || fail "no Homebrew cask"
! grep -q '@VERSION@' "$DIST/tether.rb" || fail "cask template not filled"
echo "dist-check: all good"

#!/usr/bin/env bash
# make dist: every release artifact that can be built on Linux, into dist/.
#   TARGETS="linux/amd64 windows/amd64" packaging/build.sh   (a subset)
#   VERSION=1.2.3 packaging/build.sh                           (a release)
# Needs Go and dpkg-deb, zip, tar, and makensis for the Windows installer
# (Debian packages: dpkg, zip, tar, nsis); go-winres and cyclonedx-gomod run
# as pinned Go modules (go run …@version), so nothing but Go modules is
# downloaded. Layout: see packaging/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS="${TARGETS:-linux/amd64 linux/arm64 windows/amd64 windows/arm64 darwin/amd64 darwin/arm64}"
COMMIT="${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
DATE="${DATE:-$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)}"
VERSION="${VERSION:-$(git describe --tags --match 'v[0-9]*' 2>/dev/null | sed 's/^v//' || true)}"
[ -n "$VERSION" ] || VERSION="0.0.0-dev.$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
# Debian versions sort "~" before anything: 0.0.0~dev.abc < 0.0.0.
DEBVERSION="${VERSION//-/\~}"
DIST="${DIST:-dist}"
CYCLONEDX="github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0"
WINRES="github.com/tc-hib/go-winres@v0.3.3" # the same as `make winres`

pkg="github.com/tether-dev/tether/internal/version"
LDFLAGS="-s -w -X $pkg.version=$VERSION -X $pkg.commit=$COMMIT -X $pkg.date=$DATE"

case " $TARGETS " in *" windows/"*)
	command -v makensis >/dev/null || { echo "dist: makensis not found: the Windows installer needs it (apt-get install nsis)" >&2; exit 1; } ;;
esac
rm -rf "$DIST"
mkdir -p "$DIST"
DIST=$(cd "$DIST" && pwd) # makensis runs from the script's folder
echo "dist: version $VERSION (deb $DEBVERSION), commit $COMMIT"

# gobuild OS ARCH OUT PKG [extra ldflags]: a static, reproducible binary.
gobuild() {
	echo "  build $1/$2 $4"
	CGO_ENABLED=0 GOOS="$1" GOARCH="$2" go build -trimpath -buildvcs=false \
		-ldflags "$LDFLAGS ${5:-}" -o "$3" "./$4"
}

# debpkg STAGING OUT: a .deb from a staged tree whose DEBIAN/ is filled in.
debpkg() {
	local size
	size=$(du -sk --exclude=DEBIAN "$1" | cut -f1)
	sed -i "s/@SIZE@/$size/" "$1/DEBIAN/control"
	dpkg-deb --root-owner-group -Zxz --build "$1" "$2" >/dev/null
	echo "  deb   $2"
}

# control NAME ARCH DESCRIPTION [extra fields]
control() {
	cat <<CTRL
Package: $1
Version: $DEBVERSION
Architecture: $2
Maintainer: Tether developers <tether@example.com>
Installed-Size: @SIZE@
Section: net
Priority: optional
Homepage: https://github.com/tether-dev/tether
${4:+$4
}Description: $3
CTRL
}

linux() {
	local arch=$1 bin="$DIST/bin/linux_$1"
	mkdir -p "$bin"
	gobuild linux "$arch" "$bin/tetherd" cmd/svc
	gobuild linux "$arch" "$bin/tether" cmd/tray
	gobuild linux "$arch" "$bin/tether-relay" cmd/relay

	# The client: tray + tetherd, the tether:// handler, icons, autostart
	# and the systemd user unit (rendered by tetherd itself, so it is the
	# unit `tetherd install` writes; not enabled for anyone by default).
	local r="$DIST/stage/tether_linux_$arch"
	install -Dm755 "$bin/tetherd" "$r/usr/bin/tetherd"
	install -Dm755 "$bin/tether" "$r/usr/bin/tether"
	install -Dm644 packaging/linux/tether.desktop "$r/usr/share/applications/tether.desktop"
	install -Dm644 packaging/linux/tether-autostart.desktop "$r/etc/xdg/autostart/tether.desktop"
	install -Dm644 assets/connected.png "$r/usr/share/icons/hicolor/64x64/apps/tether.png"
	mkdir -p "$r/usr/lib/systemd/user"
	go run ./cmd/svc print-unit --exe /usr/bin/tetherd |
		sed '1s/.*/# Installed by the tether package; `tetherd install` (or systemctl --user enable --now tetherd) turns it on./' \
			>"$r/usr/lib/systemd/user/tetherd.service"
	install -Dm755 packaging/linux/postinst-client "$r/DEBIAN/postinst"
	echo "/etc/xdg/autostart/tether.desktop" >"$r/DEBIAN/conffiles"
	control tether "$arch" "Tether: share local MCP servers with hosted agents
 The tray app (tether) and the headless bridge (tetherd): run the MCP
 servers from mcp.json and serve them through a Tether relay." \
		"Recommends: gnome-keyring | kwalletmanager" >"$r/DEBIAN/control"
	debpkg "$r" "$DIST/tether_${DEBVERSION}_$arch.deb"

	# The relay: a hardened system unit, settings in /etc/default.
	r="$DIST/stage/tether-relay_linux_$arch"
	install -Dm755 "$bin/tether-relay" "$r/usr/bin/tether-relay"
	install -Dm644 packaging/linux/tether-relay.service "$r/usr/lib/systemd/system/tether-relay.service"
	install -Dm644 packaging/linux/tether-relay.default "$r/etc/default/tether-relay"
	install -Dm755 packaging/linux/postinst-relay "$r/DEBIAN/postinst"
	install -Dm755 packaging/linux/prerm-relay "$r/DEBIAN/prerm"
	echo "/etc/default/tether-relay" >"$r/DEBIAN/conffiles"
	control tether-relay "$arch" "Tether relay: MCP endpoints for bridged local servers
 tether-relay holds one WebSocket slot per developer for their bridge and
 exposes every bridged MCP server as an MCP Streamable HTTP endpoint." >"$r/DEBIAN/control"
	debpkg "$r" "$DIST/tether-relay_${DEBVERSION}_$arch.deb"

	local t="$DIST/stage/tether-relay_${VERSION}_linux_$arch"
	mkdir -p "$t"
	cp "$bin/tether-relay" packaging/linux/tether-relay.service packaging/linux/tether-relay.default README.md "$t/"
	tar -C "$DIST/stage" -czf "$DIST/tether-relay_${VERSION}_linux_$arch.tar.gz" "$(basename "$t")"
	echo "  tar   $DIST/tether-relay_${VERSION}_linux_$arch.tar.gz"
}

# winversion: VERSION as the four numbers of a Windows VERSIONINFO, the way
# go-winres reads it: its leading digits and dots ("1.2.3-rc.1" → 1.2.3.0).
winversion() {
	local n a b c d
	n=$(grep -Eo '^[0-9]+(\.[0-9]+){0,3}' <<<"$VERSION" || true)
	IFS=. read -r a b c d <<<"$n"
	echo "${a:-0}.${b:-0}.${c:-0}.${d:-0}"
}

windows() {
	local arch=$1 z="$DIST/stage/tether_${VERSION}_windows_$1"
	mkdir -p "$z"
	# The icon, manifest and version resource come from cmd/tray/rsrc_windows_*.syso
	# (make winres; its version is 0.0.0.0, so a plain go build stays
	# reproducible); -H windowsgui: no console window for the tray. The
	# release version then goes into the linked resources: go-winres patch
	# rewrites the .rsrc section (the last one in a Go binary) and nothing
	# else; check.sh reads the VERSIONINFO back.
	gobuild windows "$arch" "$z/tether.exe" cmd/tray "-H windowsgui"
	GOFLAGS= go run "$WINRES" patch --in packaging/windows/winres.json --delete --no-backup \
		--file-version "$VERSION" --product-version "$VERSION" "$z/tether.exe"
	gobuild windows "$arch" "$z/tetherd.exe" cmd/svc
	cp packaging/windows/install.ps1 packaging/windows/uninstall.ps1 "$z/"
	(cd "$DIST/stage" && zip -qr "../tether_${VERSION}_windows_$arch.zip" "$(basename "$z")")
	echo "  zip   $DIST/tether_${VERSION}_windows_$arch.zip"
	# The installer (NSIS, per user): the same two programs; -WX: any
	# warning fails the build.
	local setup="$DIST/tether-setup_${VERSION}_windows_$arch.exe"
	makensis -WX -V2 -DVERSION="$VERSION" -DWINVERSION="$(winversion)" -DARCH="$arch" \
		-DSRC="$z" -DOUT="$setup" packaging/windows/tether.nsi
	echo "  nsis  $setup"
}

darwin() {
	local arch=$1 bin="$DIST/bin/darwin_$1"
	mkdir -p "$bin"
	gobuild darwin "$arch" "$bin/tetherd" cmd/svc
	gobuild darwin "$arch" "$bin/tether-relay" cmd/relay
	# Tether.app without its tray, which needs cgo (AppKit): a skeleton,
	# kept apart in macos-skeleton/ (not in SHA256SUMS, no cask) until
	# packaging/macos/finish.sh, on a Mac, builds the tray into it, signs
	# it and writes tether_VERSION_darwin_ARCH.zip, the cask and the sums.
	local s="$DIST/stage/tether_${VERSION}_darwin_$arch" app
	app="$s/Tether.app/Contents"
	mkdir -p "$app/MacOS" "$app/Resources" "$app/Library/LaunchAgents"
	sed "s/@VERSION@/${VERSION%%-*}/g" packaging/macos/Info.plist.in >"$app/Info.plist"
	printf 'APPL????' >"$app/PkgInfo"
	cp "$bin/tetherd" "$app/MacOS/tetherd"
	cp packaging/macos/tetherd.plist "$app/Library/LaunchAgents/tetherd.plist"
	go run packaging/macos/mkicns.go -in assets/connected.png -out "$app/Resources/Tether.icns"
	local k="$DIST/macos-skeleton"
	mkdir -p "$k"
	(cd "$s" && zip -qry "$k/tether_${VERSION}_darwin_$arch.skeleton.zip" Tether.app)
	# finish.sh stamps the tray as build.sh stamped tetherd.
	printf 'VERSION=%q\nCOMMIT=%q\nDATE=%q\n' "$VERSION" "$COMMIT" "$DATE" >"$k/build.env"
	echo "  zip   $k/tether_${VERSION}_darwin_$arch.skeleton.zip (no tray yet: packaging/macos/finish.sh)"
	local t="$DIST/stage/tether-relay_${VERSION}_darwin_$arch"
	mkdir -p "$t"
	cp "$bin/tether-relay" README.md "$t/"
	tar -C "$DIST/stage" -czf "$DIST/tether-relay_${VERSION}_darwin_$arch.tar.gz" "$(basename "$t")"
	echo "  tar   $DIST/tether-relay_${VERSION}_darwin_$arch.tar.gz"
}

for t in $TARGETS; do
	"${t%/*}" "${t#*/}"
done

# SBOM (CycloneDX) of the module: every Go dependency the binaries link.
GOFLAGS= go run "$CYCLONEDX" mod -licenses=false -json -output "$DIST/tether_${VERSION}_sbom.cdx.json" . 2>/dev/null
echo "  sbom  $DIST/tether_${VERSION}_sbom.cdx.json"

# Every artifact at the top of dist/ (not bin/, stage/, macos-skeleton/).
(cd "$DIST" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
echo "  sums  $DIST/SHA256SUMS"

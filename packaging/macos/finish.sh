#!/usr/bin/env bash
# Finishes the macOS release that `make dist` started on Linux. There the
# tray cannot be built (it needs cgo and AppKit), so dist/macos-skeleton/
# holds Tether.app without Contents/MacOS/tether. On a Mac, in a checkout of
# the commit dist/ was built from (dist/ copied beside it):
#   packaging/macos/finish.sh
#   TETHER_SIGN_IDENTITY="Developer ID Application: Example (TEAMID)" \
#   TETHER_NOTARY_PROFILE=<a `xcrun notarytool store-credentials` profile> \
#     packaging/macos/finish.sh
# For each skeleton (arm64, amd64): builds the tray into the bundle with the
# version stamp of dist/ (macos-skeleton/build.env), signs and notarizes it
# (sign.sh: skipped with a message when no identity is set), and zips it as
# dist/tether_VERSION_darwin_ARCH.zip. Then writes the Homebrew cask
# dist/tether.rb with the zips' sha256 and rewrites dist/SHA256SUMS.
#
# DIST=… picks another dist folder. TETHER_TRAY_arm64=PATH (or _amd64) puts
# a tray built elsewhere into the bundle instead of building it; it must be
# a Mach-O for that architecture. (check.sh runs this script on Linux that
# way, with tetherd standing in for the tray, to keep it working.)
set -euo pipefail
cd "$(dirname "$0")/../.."
DIST="${DIST:-dist}"
skel="$DIST/macos-skeleton"
die() {
	echo "finish.sh: $*" >&2
	exit 1
}
[ -f "$skel/build.env" ] || die "no $skel/build.env: run make dist (with darwin targets) first and copy dist/ here"
# shellcheck disable=SC1091 # written by build.sh: VERSION, COMMIT, DATE
. "$skel/build.env"
DIST=$(cd "$DIST" && pwd)
skel="$DIST/macos-skeleton"

sha256() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$@"
	else
		shasum -a 256 "$@"
	fi
}

# machO FILE ARCH: FILE is a 64-bit Mach-O for ARCH, or a universal binary.
machO() {
	local head
	head=$(od -An -tx1 -N8 "$1" | tr -d ' \n')
	case "$2:$head" in
	amd64:cffaedfe07000001 | arm64:cffaedfe0c000001 | *:cafebabe*) return 0 ;;
	esac
	return 1
}

pkg="github.com/tether-dev/tether/internal/version"
found=0
for z in "$skel"/tether_"${VERSION}"_darwin_*.skeleton.zip; do
	[ -f "$z" ] || continue
	found=1
	arch=${z##*_darwin_}
	arch=${arch%.skeleton.zip}
	echo "finish.sh: $arch"
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	(cd "$work" && unzip -q "$z")
	app="$work/Tether.app"
	tray="$app/Contents/MacOS/tether"
	prebuilt="TETHER_TRAY_$arch"
	if [ -n "${!prebuilt:-}" ]; then
		cp "${!prebuilt}" "$tray"
		chmod 755 "$tray"
	elif [ "$(uname -s)" = Darwin ]; then
		here=$(git rev-parse HEAD 2>/dev/null || echo unknown)
		if [ "$COMMIT" != unknown ] && [ "$here" != unknown ] && [ "$here" != "$COMMIT" ]; then
			die "dist/ was built from $COMMIT, this checkout is $here: check out that commit so the tray matches tetherd"
		fi
		CGO_ENABLED=1 GOOS=darwin GOARCH="$arch" go build -trimpath -buildvcs=false \
			-ldflags "-s -w -X $pkg.version=$VERSION -X $pkg.commit=$COMMIT -X $pkg.date=$DATE" \
			-o "$tray" ./cmd/tray
	else
		die "the tray needs cgo and AppKit: run this on a Mac (or set $prebuilt to a tray built on one)"
	fi
	machO "$tray" "$arch" || die "$tray is not a Mach-O for $arch"
	packaging/macos/sign.sh "$app"
	out="$DIST/tether_${VERSION}_darwin_$arch.zip"
	rm -f "$out"
	if command -v ditto >/dev/null 2>&1; then
		ditto -c -k --keepParent "$app" "$out" # keeps the signature's extended attributes
	else
		(cd "$work" && zip -qry "$out" Tether.app)
	fi
	rm -rf "$work"
	trap - EXIT
	echo "finish.sh: wrote $out"
done
[ "$found" = 1 ] || die "no $skel/tether_${VERSION}_darwin_*.skeleton.zip"

# The Homebrew cask; a missing architecture stays @MISSING@ (publish it only
# with both).
sum() {
	if [ -f "$1" ]; then
		sha256 "$1" | cut -d' ' -f1
	else
		echo "@MISSING@"
	fi
}
sed -e "s/@VERSION@/$VERSION/" \
	-e "s/@SHA256_ARM64@/$(sum "$DIST/tether_${VERSION}_darwin_arm64.zip")/" \
	-e "s/@SHA256_AMD64@/$(sum "$DIST/tether_${VERSION}_darwin_amd64.zip")/" \
	packaging/macos/tether.rb.in >"$DIST/tether.rb"
if grep -q '@MISSING@' "$DIST/tether.rb"; then
	echo "finish.sh: WARNING: $DIST/tether.rb lacks a checksum (an architecture was not finished): do not publish it" >&2
fi
echo "finish.sh: wrote $DIST/tether.rb"

# The same list as build.sh writes: every file at the top of dist/.
(cd "$DIST" && find . -maxdepth 1 -type f ! -name SHA256SUMS ! -name SHA256SUMS.new | sed 's|^\./||' | LC_ALL=C sort |
	while IFS= read -r f; do sha256 "$f"; done >SHA256SUMS.new && mv SHA256SUMS.new SHA256SUMS)
echo "finish.sh: wrote $DIST/SHA256SUMS"

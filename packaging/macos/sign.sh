#!/usr/bin/env bash
# Signs and notarizes Tether.app (run on a Mac). Without an identity it
# says so and exits 0, so `make dist` works everywhere:
#   TETHER_SIGN_IDENTITY="Developer ID Application: Example (TEAMID)"
#   TETHER_NOTARY_PROFILE=<a `xcrun notarytool store-credentials` profile>
#   packaging/macos/sign.sh dist/darwin_arm64/Tether.app
set -euo pipefail
app="${1:?usage: sign.sh PATH/Tether.app}"
if [ -z "${TETHER_SIGN_IDENTITY:-}" ]; then
	echo "sign.sh: skipped: no identity (set TETHER_SIGN_IDENTITY to sign $app)"
	exit 0
fi
if ! command -v codesign >/dev/null 2>&1; then
	echo "sign.sh: skipped: codesign not found (signing needs macOS with Xcode tools)"
	exit 0
fi
# Inner binaries first, then the bundle; hardened runtime for notarization.
for bin in "$app"/Contents/MacOS/*; do
	codesign --force --options runtime --timestamp --sign "$TETHER_SIGN_IDENTITY" "$bin"
done
codesign --force --options runtime --timestamp --sign "$TETHER_SIGN_IDENTITY" "$app"
codesign --verify --strict --verbose=2 "$app"
if [ -z "${TETHER_NOTARY_PROFILE:-}" ]; then
	echo "sign.sh: signed; notarization skipped: no TETHER_NOTARY_PROFILE"
	exit 0
fi
zip="$(mktemp -d)/Tether.zip"
ditto -c -k --keepParent "$app" "$zip"
xcrun notarytool submit "$zip" --keychain-profile "$TETHER_NOTARY_PROFILE" --wait
xcrun stapler staple "$app"
echo "sign.sh: signed, notarized and stapled $app"

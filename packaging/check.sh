#!/usr/bin/env bash
# make dist-check: validates what `make dist` put in dist/ (whatever targets
# it built), and lints packaging/container/. Needs dpkg-deb,
# desktop-file-utils, systemd (systemd-analyze), python3, unzip and 7z (to
# open the Windows installer) — Debian packages (dpkg, desktop-file-utils,
# systemd, python3, unzip, p7zip-full). Fails on the first problem.
set -euo pipefail
cd "$(dirname "$0")/.."
DIST="${DIST:-dist}"
DIST=$(cd "$DIST" 2>/dev/null && pwd) || { echo "dist-check: no ${DIST}; run make dist first" >&2; exit 1; }
[ -f "$DIST/SHA256SUMS" ] || { echo "dist-check: no $DIST/SHA256SUMS; run make dist first" >&2; exit 1; }
fail() { echo "dist-check: FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$DIST" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match"
# …and lists every artifact at the top of dist/.
listed=$(awk '{print $2}' "$DIST/SHA256SUMS" | sed 's/^\*//' | LC_ALL=C sort)
present=$(cd "$DIST" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' | LC_ALL=C sort)
[ "$listed" = "$present" ] || fail "SHA256SUMS does not list exactly the files in $DIST: $(diff <(echo "$listed") <(echo "$present") | grep '^[<>]' | tr '\n' ' ')"
echo "ok   SHA256SUMS"
# The version every artifact names, from the SBOM's file name.
V=$(basename "$DIST"/tether_*_sbom.cdx.json _sbom.cdx.json)
V=${V#tether_}
echo "ok   version $V"

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
	sed -e "s#/usr/bin/#$root/usr/bin/#g" -e "s#/usr/local/bin/#$root/usr/local/bin/#g" "$file" >"$tmp/units/$(basename "$file")"
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

# The relay tarballs: the binary, the unit and its settings; the unit as the
# README installs it (binary in /usr/local/bin, the unit's path changed to
# match) passes systemd-analyze.
for t in "$DIST"/tether-relay_*_linux_*.tar.gz; do
	r="$tmp/root-$(basename "$t" .tar.gz)"
	mkdir -p "$r/usr/local/bin" && tar -C "$r" -xzf "$t"
	d="$r/$(basename "$t" .tar.gz)"
	for f in tether-relay tether-relay.service tether-relay.default README.md; do
		[ -f "$d/$f" ] || fail "$t lacks $f"
	done
	cp "$d/tether-relay" "$r/usr/local/bin/"
	sed 's#/usr/bin/tether-relay#/usr/local/bin/tether-relay#' "$d/tether-relay.service" >"$r/tether-relay.service"
	grep -q '^ExecStart=/usr/local/bin/tether-relay ' "$r/tether-relay.service" || fail "$t: the unit's ExecStart is not /usr/bin/tether-relay"
	verify_unit "$r/tether-relay.service" "$r"
	echo "ok   $t"
done

# The native binaries name this build (the tray prints it without a display).
host="$DIST/bin/$(go env GOOS)_$(go env GOARCH)"
for b in tetherd tether-relay tether; do
	[ -x "$host/$b" ] || continue
	arg=version
	[ "$b" = tether ] && arg=--version
	v=$("$host/$b" "$arg" </dev/null)
	# Stamped by build.sh: this version and a commit.
	grep -Eq "^$b ${V//./\\.} \(commit [0-9a-f]{12}, built [0-9]{4}-" <<<"$v" || fail "$b version not stamped with $V: $v"
	echo "ok   $b version: $v"
done

# before FILE FIRST THEN: in FILE, the first line with FIRST comes before
# the first line with THEN (fixed strings).
before() {
	local a b
	a=$(grep -nF -m1 -- "$2" "$1" | cut -d: -f1)
	b=$(grep -nF -m1 -- "$3" "$1" | cut -d: -f1)
	[ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ] || fail "$1: \"$2\" must come before \"$3\""
}

zips=("$DIST"/tether_*_windows_*.zip)
if [ ${#zips[@]} -gt 0 ]; then
	go build -o "$tmp/pecheck" packaging/windows/pecheck.go
	# The scripts and the installer remove the Scheduled Task before the
	# programs (else it starts a deleted tetherd.exe at every logon), and an
	# update stops it before replacing them.
	before packaging/windows/uninstall.ps1 '& $tetherd uninstall' 'Remove-Item -Force $p'
	before packaging/windows/install.ps1 "runTetherd @('stop')" 'Copy-Item'
	before packaging/windows/install.ps1 'Copy-Item' "runTetherd @('start')"
	before packaging/windows/tether.nsi 'tetherd.exe" uninstall' 'Delete "$INSTDIR\tetherd.exe"'
	before packaging/windows/tether.nsi 'tetherd.exe" stop' 'File "${SRC}\tetherd.exe"'
	before packaging/windows/tether.nsi 'File "${SRC}\tetherd.exe"' 'tetherd.exe" start'
fi
for z in "${zips[@]}"; do
	arch=${z##*_windows_}
	arch=${arch%.zip}
	d="$tmp/$(basename "$z" .zip)"
	mkdir -p "$d" && (cd "$d" && unzip -q "$z")
	w="$d/tether_${V}_windows_$arch"
	# The tray carries the release version in its VERSIONINFO (build.sh
	# patches it in; the checked-in .syso says 0.0.0.0).
	"$tmp/pecheck" -gui -icon -version "$V" "$w/tether.exe"
	"$tmp/pecheck" "$w/tetherd.exe"
	for f in install.ps1 uninstall.ps1; do [ -f "$w/$f" ] || fail "$z lacks $f"; done
	grep -q 'HKCU:\\Software\\Classes\\tether' "$w/install.ps1" || fail "install.ps1 does not register tether://"
	echo "ok   $z"

	# The installer: a GUI PE with NSIS's data and the version, holding the
	# zip's very programs and an uninstaller.
	setup="$DIST/tether-setup_${V}_windows_$arch.exe"
	[ -f "$setup" ] || fail "no $setup beside $z"
	"$tmp/pecheck" -gui -nsis -version "$V" "$setup"
	x="$tmp/setup-$arch"
	7z x -y -o"$x" "$setup" >"$tmp/7z.log" 2>&1 || fail "7z cannot open $setup: $(tail -5 "$tmp/7z.log")"
	for f in tether.exe tetherd.exe; do
		cmp -s "$w/$f" "$x/$f" || fail "$setup: its $f is not the zip's"
	done
	7z l "$setup" | grep -q ' Uninstall\.exe$' || fail "$setup writes no Uninstall.exe"
	echo "ok   $setup"
done

# checkapp ZIP ARCH skeleton|finished: Tether.app's Info.plist, icon,
# LaunchAgent and tetherd; a skeleton has no tray yet, a finished app has
# the tray, a Mach-O for ARCH.
checkapp() {
	local d
	d="$tmp/app-$(basename "$1" .zip)"
	mkdir -p "$d" && (cd "$d" && unzip -q "$1")
	python3 - "$d/Tether.app/Contents" "$2" "$3" <<'PY' || fail "$1"
import plistlib, sys, os
c, arch, kind = sys.argv[1:]
p = plistlib.load(open(os.path.join(c, "Info.plist"), "rb"))
assert p["LSUIElement"] is True, "LSUIElement"
assert p["CFBundleExecutable"] == "tether"
assert p["CFBundleIdentifier"] == "dev.tether.tray"
assert any("tether" in t["CFBundleURLSchemes"] for t in p["CFBundleURLTypes"]), "tether URL scheme"
icns = open(os.path.join(c, "Resources", p["CFBundleIconFile"] + ".icns"), "rb").read()
assert icns[:4] == b"icns" and int.from_bytes(icns[4:8], "big") == len(icns), "icns header"
la = plistlib.load(open(os.path.join(c, "Library/LaunchAgents/tetherd.plist"), "rb"))
assert la["ProgramArguments"] == ["/Applications/Tether.app/Contents/MacOS/tetherd", "run", "--service"]
cpu = {"amd64": 0x01000007, "arm64": 0x0100000C}[arch]
def macho(path):
    h = open(path, "rb").read(8)
    assert os.access(path, os.X_OK), path + " not executable"
    assert h[:4] == b"\xcf\xfa\xed\xfe" and int.from_bytes(h[4:8], "little") == cpu, path + " is not a Mach-O for " + arch
macho(os.path.join(c, "MacOS/tetherd"))
tray = os.path.join(c, "MacOS", p["CFBundleExecutable"])
if kind == "skeleton":
    assert not os.path.exists(tray), "a skeleton with a tray"
else:
    macho(tray)
PY
}

# Tether.app as built on Linux: a skeleton, kept out of SHA256SUMS.
skels=("$DIST"/macos-skeleton/tether_*_darwin_*.skeleton.zip)
for z in "${skels[@]}"; do
	arch=${z##*_darwin_}
	checkapp "$z" "${arch%.skeleton.zip}" skeleton
	echo "ok   $z (skeleton: finish.sh on a Mac adds the tray)"
done
# Finished on a Mac (finish.sh): the tray inside, and a filled-in cask.
for z in "$DIST"/tether_*_darwin_*.zip; do
	arch=${z##*_darwin_}
	checkapp "$z" "${arch%.zip}" finished
	grep -q "$(sha256sum "$z" | cut -d' ' -f1)" "$DIST/tether.rb" || fail "tether.rb lacks the sha256 of $z"
	echo "ok   $z"
done
if [ -f "$DIST/tether.rb" ]; then
	! grep -q '@' "$DIST/tether.rb" || fail "tether.rb is not filled in: $(grep '@' "$DIST/tether.rb")"
	echo "ok   $DIST/tether.rb"
fi

# finish.sh itself, on a copy of dist/ with tetherd standing in for the tray
# (a Mach-O of the right architecture; the real tray needs a Mac): it must
# write the zip with the tray inside, the cask with its checksum, and
# SHA256SUMS with both.
if [ ${#skels[@]} -gt 0 ]; then
	f="$tmp/finish"
	mkdir -p "$f"
	find "$DIST" -maxdepth 1 -type f -exec cp {} "$f/" \;
	cp -r "$DIST/macos-skeleton" "$f/"
	trays=()
	for z in "${skels[@]}"; do
		arch=${z##*_darwin_}
		arch=${arch%.skeleton.zip}
		trays+=("TETHER_TRAY_$arch=$DIST/bin/darwin_$arch/tetherd")
	done
	env -u TETHER_SIGN_IDENTITY -u TETHER_NOTARY_PROFILE "${trays[@]}" DIST="$f" \
		packaging/macos/finish.sh >"$tmp/finish.log" 2>&1 || fail "finish.sh: $(tail -5 "$tmp/finish.log")"
	for t in "${trays[@]}"; do
		arch=${t%%=*}
		arch=${arch#TETHER_TRAY_}
		z="$f/tether_${V}_darwin_$arch.zip"
		[ -f "$z" ] || fail "finish.sh wrote no $(basename "$z")"
		checkapp "$z" "$arch" finished
		sum=$(sha256sum "$z" | cut -d' ' -f1)
		grep -q "$sum" "$f/tether.rb" || fail "finish.sh: the cask lacks the sha256 of $(basename "$z")"
		grep -q "  $(basename "$z")\$" "$f/SHA256SUMS" || fail "finish.sh: SHA256SUMS lacks $(basename "$z")"
	done
	grep -q "  tether.rb\$" "$f/SHA256SUMS" || fail "finish.sh: SHA256SUMS lacks tether.rb"
	grep -q "version \"$V\"" "$f/tether.rb" || fail "finish.sh: the cask's version is not $V"
	(cd "$f" && sha256sum --quiet -c SHA256SUMS) || fail "finish.sh: SHA256SUMS does not match"
	echo "ok   packaging/macos/finish.sh (on a copy, tetherd standing in for the tray)"
fi

# The Containerfiles (no container engine here): every COPY source exists,
# every file copied from a build stage is built there (go build -o) or made
# there, the go build packages are commands, the ENTRYPOINT binary is copied
# into the final stage, its USER is not root and every VOLUME is made in
# the image for that USER (a volume folder missing from the image is
# mounted root-owned; tetherd refuses a config folder it does not own).
python3 - packaging/container/*.Containerfile <<'PY' || fail "Containerfile lint"
import glob, json, os, re, shlex, sys

def instructions(path):
    text = re.sub(r"\\\n", " ", open(path).read())
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            yield op.upper(), rest.strip()

for path in sys.argv[1:]:
    def bad(msg):
        sys.exit(f"{path}: {msg}")
    stages, stage = {}, None
    for op, rest in instructions(path):
        if op == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", rest, re.I)
            stage = {"name": m.group(2) or str(len(stages)), "made": set(), "files": {}, "user": None, "volumes": [], "entry": None}
            stages[stage["name"]] = stage
        elif op == "RUN":
            words = shlex.split(rest)
            for i, w in enumerate(words[:-1]):
                if w == "-o" and words[i + 1].startswith("/"):
                    stage["made"].add(words[i + 1])
            for m in re.finditer(r"go build\b.*?\s(\./cmd/\S+)", rest):
                pkg = m.group(1)
                srcs = glob.glob(os.path.join(pkg, "*.go"))
                if not any(re.search(r"^package main$", open(s).read(), re.M) for s in srcs):
                    bad(f"go build {pkg}: not a command in this repository")
            # install -d [-o USER] [-g GROUP] [-m MODE] DIR…: folders made for USER.
            for m in re.finditer(r"install -d((?:\s+-[ogm]\s+\S+)*)((?:\s+/[^\s&;]+)+)", rest):
                owner = re.search(r"-o\s+(\S+)", m.group(1))
                for d in m.group(2).split():
                    stage["made"].add(d)
                    stage["files"][d] = owner.group(1) if owner else "root"
        elif op == "COPY":
            args = shlex.split(rest)
            flags = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in args if a.startswith("--")}
            args = [a for a in args if not a.startswith("--")]
            srcs, dst = args[:-1], args[-1]
            for s in srcs:
                if "--from" in flags:
                    src = stages.get(flags["--from"])
                    if src is None:
                        bad(f"COPY --from={flags['--from']}: no such stage")
                    if s not in src["made"]:
                        bad(f"COPY --from={flags['--from']} {s}: that stage does not make it")
                elif not glob.glob(s):
                    bad(f"COPY {s}: not in the repository")
                stage["files"][dst] = flags.get("--chown", "root").split(":")[0]
        elif op == "USER":
            stage["user"] = rest.split(":")[0]
        elif op == "VOLUME":
            stage["volumes"] += json.loads(rest) if rest.startswith("[") else rest.split()
        elif op == "ENTRYPOINT":
            stage["entry"] = json.loads(rest)
    final = stage
    if not final["entry"] or final["entry"][0] not in final["files"]:
        bad(f"ENTRYPOINT {final['entry']}: not copied into the final stage")
    if final["user"] in (None, "root", "0"):
        bad("the final stage runs as root")
    for v in final["volumes"]:
        if final["files"].get(v) != final["user"]:
            bad(f"VOLUME {v}: not made in the image for USER {final['user']} (owner {final['files'].get(v)})")
    print(f"ok   {path}")
PY
echo "dist-check: all good"

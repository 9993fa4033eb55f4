#!/usr/bin/env bash
# Runs every `func Fuzz*` in the repo's tracked test files, one at a time,
# for $FUZZTIME each (default 30s), starting from its checked-in seed
# corpus (testdata/fuzz/FuzzX/). Any crasher fails the run; go test writes
# the failing input under testdata/fuzz/FuzzX/ so it can be checked in
# with the fix. `make fuzz` runs this; CI runs it after `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}

targets=()
while IFS= read -r file; do
  pkg="./$(dirname "$file")"
  while IFS= read -r fn; do
    targets+=("$pkg $fn")
  done < <(grep -oE '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2)
done < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | sort)

if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no Fuzz targets found" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, $FUZZTIME each"
for t in "${targets[@]}"; do
  read -r pkg fn <<<"$t"
  echo "fuzz: $fn ($pkg)"
  "$GO" test -run '^$' -fuzz "^${fn}\$" -fuzztime "$FUZZTIME" "$pkg"
done

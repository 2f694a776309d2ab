#!/usr/bin/env bash
# The first command of the README's quick start: install what is missing, then build the sample
# images (base, then app and db from it) on the local QEMU provider, in ./demo.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
(cd "$root" && npm link --no-fund --no-audit --loglevel=error >/dev/null 2>&1) || echo "note: could not put provisional on PATH (npm link); use $root/bin/provisional.js"

demo="${DEMO_DIR:-$root/demo}"
mkdir -p "$demo"
cd "$demo"
provisional=("node" "$root/bin/provisional.js")
[ -f config/provisional/config.yml ] || "${provisional[@]}" init
"${provisional[@]}" validate
"${provisional[@]}" image update
"${provisional[@]}" image list
echo
echo "done: the sample images are built. Try: cd $demo && provisional image list"

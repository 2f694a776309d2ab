#!/usr/bin/env bash
# Installs what Provisional and its tests need on Debian 12 (run as root): QEMU and the tools the
# local provider builds its debian-12 base with, OpenSSH, then the npm packages, then builds.
# With --test: also what the test suite's emulators and conformance tests use (systemd-nspawn for
# the emulated droplets and instances, Packer 1.6.6, the AWS CLI and hcloud-python as real clients).
set -euo pipefail
cd "$(dirname "$0")/.."

# mmdebstrap builds the debian-12 base (and the emulators' rootfs); debootstrap is not used.
# HAProxy is the local provider's endpoint (a stable address in front of an image's servers).
packages=(qemu-system-x86 qemu-utils mmdebstrap e2fsprogs openssh-client ca-certificates haproxy)
if [ "${1:-}" = "--test" ]; then packages+=(systemd-container packer awscli python3-hcloud util-linux iproute2); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "error: installing packages needs root (or install them yourself: apt-get install ${missing[*]})" >&2; exit 2; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node -e 'const [major] = process.versions.node.split(".").map(Number); if (major < 20) { console.error(`error: Node.js 20 or later is needed, this is ${process.version}`); process.exit(2); }'
# npm ci only when node_modules does not match the lock file (npm test runs this script too).
if ! [ -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-fund --no-audit --loglevel=error
fi
# The tests build for themselves.
[ "${1:-}" = "--test" ] || npm run --silent build

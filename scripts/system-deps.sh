#!/usr/bin/env bash
# System libraries InsertBench needs on a fresh Debian/Ubuntu machine: EGL/Mesa (and OSMesa as a
# fallback) for headless MuJoCo rendering, libusb for pyrealsense2, chromium for the leaderboard
# site test (driven by playwright; no browser download), and python3-venv (Debian's python3 has
# no venv module without it). Needs root; a no-op elsewhere.
set -euo pipefail
packages=(libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libosmesa6 libusb-1.0-0 chromium python3-venv)
if ! command -v apt-get >/dev/null; then
    echo "system-deps: no apt-get here; install the equivalents of: ${packages[*]}" >&2
    exit 0
fi
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null

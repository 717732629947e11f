#!/usr/bin/env bash
# System libraries InsertBench needs on a fresh Debian/Ubuntu machine: EGL/Mesa (and OSMesa as a
# fallback) for headless MuJoCo rendering, libusb for pyrealsense2 and python3-venv (Debian's
# python3 has no venv module without it); and, where the distribution packages it (Debian; not
# Ubuntu, whose chromium is a snap), chromium for the leaderboard site test (driven by
# playwright; no browser download), which is skipped without it. Needs root; a no-op elsewhere.
set -euo pipefail
packages=(libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libosmesa6 libusb-1.0-0 python3-venv)
browser=chromium
if ! command -v apt-get >/dev/null; then
    echo "system-deps: no apt-get here; install the equivalents of: ${packages[*]} $browser" >&2
    exit 0
fi
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
want_browser=true
dpkg -s "$browser" >/dev/null 2>&1 && want_browser=false
[ ${#missing[@]} -eq 0 ] && ! $want_browser && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
if $want_browser; then
    # Read the policy whole first: under pipefail, grep -q exiting at its match can kill
    # apt-cache with SIGPIPE and turn a found package into "not found".
    policy=$(apt-cache policy "$browser" 2>/dev/null || true)
    if grep -q "Candidate: [0-9]" <<<"$policy"; then
        missing+=("$browser")
    else
        echo "system-deps: no $browser package here; the leaderboard site test will be skipped" >&2
    fi
fi
[ ${#missing[@]} -eq 0 ] && exit 0
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null

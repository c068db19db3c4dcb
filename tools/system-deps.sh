#!/usr/bin/env bash
# Installs the Debian/Ubuntu system libraries that Qt (PySide6) needs to start, offscreen
# and under Xvfb, plus Xvfb itself (for `make screenshot`). Only missing packages are
# installed; nothing happens when all are present or when this is not a Debian system.
set -uo pipefail
PKGS="xvfb xauth libxcb-cursor0 libxkbcommon-x11-0 libxkbcommon0 libxcb-icccm4 libxcb-image0 \
libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 \
libxcb-xfixes0 libegl1 libgl1 libfontconfig1 libdbus-1-3 fonts-dejavu-core"
command -v dpkg-query >/dev/null 2>&1 || { echo "system-deps: not a Debian system; install Qt's xcb libraries yourself"; exit 0; }
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "system-deps: missing$missing; run as root: apt-get install$missing"; exit 0; fi
fi
echo "system-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null \
  || echo "system-deps: apt-get failed; Qt tests may be skipped or fail"

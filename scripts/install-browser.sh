#!/bin/sh
# Headless Chromium (and a colour emoji font, so screenshots show the UI's emoji) for the
# Web UI browser test, tests/test_web_ui.py, from Debian's packages. Idempotent: exits at
# once when both are installed. Needs apt and root (or passwordless sudo); without them it
# says why and exits 0, and the test skips with that reason.
set -eu

CHROMIUM=/usr/bin/chromium
EMOJI_FONT=/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf

if [ -x "$CHROMIUM" ] && [ -e "$EMOJI_FONT" ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: no apt-get here; install Chromium at $CHROMIUM yourself" >&2
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "install-browser: not root and no passwordless sudo; run: sudo $0" >&2
    exit 0
fi

echo "install-browser: installing Debian's chromium and fonts-noto-color-emoji (once)..." >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-noto-color-emoji >/dev/null
echo "install-browser: $("$CHROMIUM" --version 2>/dev/null)" >&2

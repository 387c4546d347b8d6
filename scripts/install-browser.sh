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

# Without apt or root, apt-install.sh says why; the test then skips with that reason.
sh "$(dirname "$0")/apt-install.sh" browser chromium fonts-noto-color-emoji || exit 0
echo "install-browser: $("$CHROMIUM" --version 2>/dev/null)" >&2

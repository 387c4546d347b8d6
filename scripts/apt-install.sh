#!/bin/sh
# apt-install.sh WHO PACKAGE...: install Debian packages as root or with passwordless sudo.
# Exits 1, saying why, where there is no apt-get or no way to become root. Used by
# install-browser.sh and install-postgres.sh.
set -eu
WHO="$1"
shift

if ! command -v apt-get >/dev/null 2>&1; then
    echo "$WHO: no apt-get here; install $* yourself" >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "$WHO: not root and no passwordless sudo; run: sudo make $WHO" >&2
    exit 1
fi

echo "$WHO: installing Debian's $* (once)..." >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null

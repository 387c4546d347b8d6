#!/bin/sh
# PostgreSQL server binaries from Debian's packages, for the native Temporal cluster
# (`make cluster`, devtools/cluster.py). Idempotent: exits at once when initdb is there.
# Only the binaries are used: devtools/cluster.py runs its own server under .data/ as an
# unprivileged user, on its own port, whatever the package itself starts.
set -eu

if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    exit 0
fi

sh "$(dirname "$0")/apt-install.sh" postgres postgresql
echo "install-postgres: $(ls /usr/lib/postgresql/*/bin/postgres)" >&2

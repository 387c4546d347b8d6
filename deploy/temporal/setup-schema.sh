#!/bin/sh
# One-shot job (temporalio/admin-tools): create Temporal's two PostgreSQL databases and
# bring their schemas up to the versions this admin-tools release ships.
#
# Idempotent, so `docker compose up` may run it on every start: creating a database that
# exists is a no-op for the postgres12 plugin, `setup-schema -v 0.0` keeps a newer
# recorded version, and `update-schema` applies only the versions not applied yet.
#
# Connection from the environment, read by temporal-sql-tool itself: SQL_PLUGIN,
# SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD (kept out of the command line).
set -eu

: "${SQL_HOST:?SQL_HOST is required}"
: "${SQL_USER:?SQL_USER is required}"
SCHEMA_ROOT="${SCHEMA_ROOT:-/etc/temporal/schema/postgresql/v12}"

# database NAME SCHEMA_DIR: create database NAME and migrate it with SCHEMA_DIR/versioned.
database() {
  echo "temporal-schema: database $1"
  temporal-sql-tool --db "$1" create-database
  temporal-sql-tool --db "$1" setup-schema -v 0.0
  temporal-sql-tool --db "$1" update-schema -d "$SCHEMA_ROOT/$2/versioned"
}

database temporal temporal
database temporal_visibility visibility
echo "temporal-schema: done"

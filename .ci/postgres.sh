#!/usr/bin/env bash
# CI: make sure the PostgreSQL the tests use is there, so its half of the suite runs, never skips.
#
# What the tests look for (tests/db_fixtures.py): TEST_DATABASE_URL if set, else 127.0.0.1:5432,
# user postgres, no password (trust) or the password "postgres". This script gets a fresh Debian /
# Ubuntu machine there and does nothing on one that already is (idempotent, safe to rerun):
#   1. TEST_DATABASE_URL set, or already reachable (psql installed first if missing): done;
#   2. no server installed: apt-get install postgresql (root or sudo);
#   3. no cluster: pg_createcluster; cluster down: pg_ctlcluster start;
#   4. reachable but the login is refused: give the postgres role the password "postgres"
#      (over the local socket, as the postgres OS user), which Debian's default pg_hba accepts
#      from 127.0.0.1.
set -euo pipefail

HOST=127.0.0.1
PORT=5432
PASSWORD=postgres

say() { echo "postgres.sh: $*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else
        say "need root (or sudo) to: $*"
        return 1
    fi
}

as_postgres() {
    if [ "$(id -un)" = postgres ]; then "$@"
    elif [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"
    else sudo -n -u postgres "$@"; fi
}

login_works() {
    command -v psql >/dev/null || return 1
    PGCONNECT_TIMEOUT=3 psql "host=$HOST port=$PORT user=postgres dbname=postgres" -tAc 'SELECT 1' \
        >/dev/null 2>&1 && return 0
    PGCONNECT_TIMEOUT=3 PGPASSWORD=$PASSWORD \
        psql "host=$HOST port=$PORT user=postgres dbname=postgres" -tAc 'SELECT 1' >/dev/null 2>&1
}

if [ -n "${TEST_DATABASE_URL:-}" ]; then
    say "TEST_DATABASE_URL is set; the tests use that server"
    exit 0
fi
apt_install() {
    if [ -z "${APT_UPDATED:-}" ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v psql >/dev/null; then
    # The client first: a server may already listen (a service container) without psql here.
    say "installing the PostgreSQL client (apt-get)"
    apt_install postgresql-client
fi
if login_works; then
    say "PostgreSQL at $HOST:$PORT accepts user postgres"
    exit 0
fi

if ! command -v pg_ctlcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    say "installing PostgreSQL (apt-get)"
    apt_install postgresql
fi

version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main"' | grep -q .; then
    say "creating cluster $version/main on port $PORT"
    as_root pg_createcluster --port "$PORT" "$version" main >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" && $4 == "online"' | grep -q .; then
    say "starting cluster $version/main"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi

for _ in $(seq 1 40); do
    pg_isready -q -h "$HOST" -p "$PORT" && break
    sleep 0.25
done
if ! login_works; then
    say "setting the password of the postgres role (Debian's pg_hba asks for one over TCP)"
    as_postgres psql -q -p "$PORT" -c "ALTER ROLE postgres PASSWORD '$PASSWORD'"
fi
if login_works; then
    say "PostgreSQL at $HOST:$PORT is ready"
else
    say "PostgreSQL at $HOST:$PORT still refuses user postgres; see pg_hba.conf"
    exit 1
fi

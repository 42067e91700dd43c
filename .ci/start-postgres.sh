#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the audit-store tests and print the URL.
#
# Usage:
#   eval "$(.ci/start-postgres.sh)"      # starts (or reuses) the cluster, exports LF_TEST_POSTGRES_URL
#   .ci/start-postgres.sh stop            # stops the cluster and deletes its directory
#
# Idempotent: a second run finds the running cluster and prints the same line again.
# Only the `export ...` line goes to stdout; everything else goes to stderr.
#
# Environment (all optional):
#   LF_PG_PORT        TCP port on 127.0.0.1 (default 54329)
#   LF_PG_STATE_DIR   where the cluster lives (default ${TMPDIR:-/tmp}/lf-postgres-<port>)
#   LF_PG_OS_USER     OS user that owns the cluster when run as root (default postgres)
#
# The cluster listens on 127.0.0.1 only, with fsync off: it is for tests, never for data.
set -euo pipefail

port="${LF_PG_PORT:-54329}"
state="${LF_PG_STATE_DIR:-${TMPDIR:-/tmp}/lf-postgres-${port}}"
os_user="${LF_PG_OS_USER:-postgres}"
db_user="lf"
db_name="lf_test"
data="$state/data"
run="$state/run"  # unix socket and server log, owned by the cluster owner

log() { printf 'start-postgres: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

find_bindir() {
    # Newest installed major version wins.
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && printf '%s\n' "$dir"
}

# Run a command as the cluster owner: initdb and postgres refuse to run as root.
as_owner() {
    if is_root; then
        runuser -u "$os_user" -- "$@"
    else
        "$@"
    fi
}

if [ "${1:-start}" = stop ]; then
    if bindir=$(find_bindir) && [ -f "$data/PG_VERSION" ]; then
        (cd "$state" && as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >&2) || true
    fi
    rm -rf "$state"
    log "stopped and removed $state"
    exit 0
fi
[ "${1:-start}" = start ] || die "unknown command '$1' (expected start or stop)"

if ! bindir=$(find_bindir); then
    is_root || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin;" \
        "install them (apt-get install postgresql) or run this script as root"
    log "installing postgresql with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y --no-install-recommends postgresql >&2
    bindir=$(find_bindir) || die "apt-get installed postgresql but no initdb was found"
fi

if is_root && ! id -u "$os_user" >/dev/null 2>&1; then
    log "creating system user $os_user to own the cluster"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$os_user"
fi

mkdir -p "$state"
chmod 755 "$state"
cd "$state"  # the owner may not be able to read the caller's working directory

if [ ! -f "$state/password" ]; then
    (umask 077 && od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$state/password")
fi
password=$(cat "$state/password")

if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data" "$run"
    mkdir -p "$data" "$run"
    pwfile="$state/pwfile"
    cp "$state/password" "$pwfile"
    if is_root; then
        chown "$os_user" "$data" "$run" "$pwfile"
    fi
    chmod 700 "$data"
    log "initialising cluster in $data with $bindir/initdb"
    as_owner "$bindir/initdb" -D "$data" -U "$db_user" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >&2
    rm -f "$pwfile"
fi

if ! as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "starting server on 127.0.0.1:$port"
    as_owner "$bindir/pg_ctl" -D "$data" -l "$run/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $run -c fsync=off" \
        -o "-c synchronous_commit=off -c full_page_writes=off" start >&2 \
        || { cat "$run/server.log" >&2 || true; die "server did not start"; }
fi

psql=("$bindir/psql" -h "$run" -p "$port" -U "$db_user" -d postgres -tA -v ON_ERROR_STOP=1)
if [ "$(as_owner "${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$db_name'")" != 1 ]
then
    log "creating database $db_name"
    as_owner "${psql[@]}" -c "CREATE DATABASE $db_name" >&2
fi

printf 'export LF_TEST_POSTGRES_URL=postgresql://%s:%s@127.0.0.1:%s/%s\n' \
    "$db_user" "$password" "$port" "$db_name"

#!/usr/bin/env bash
# Project-local PostgreSQL + PostGIS cluster for development and tests.
#
#   scripts/localdb.sh start    initialise (first time) and start the cluster; idempotent
#   scripts/localdb.sh stop     stop it (fine if it is not running)
#   scripts/localdb.sh status   print running/stopped; exit 0 if running, 3 if not
#   scripts/localdb.sh url      print the owner's URL (migrations); svc-url: the services'; geo-url: geo_query's;
#                               keystore-url: the key store's (its own database and role: shared/keystore.py)
#   scripts/localdb.sh psql     open psql as the superuser (extra arguments are passed on)
#   scripts/localdb.sh standby [start|stop|status|geo-url]
#                               a streaming hot standby of this cluster (the primary must be running): made once with
#                               `pg_basebackup -R` in CANVASS_STANDBY_HOME (default: this folder's name + -standby) on
#                               CANVASS_STANDBY_PORT (default: this port + 1); geo-url: geo_query's URL on it
#
# Data lives in .local/pg (git-ignored; CANVASS_PG_HOME overrides). Port: $CANVASS_PG_PORT (default 54320), 127.0.0.1 only.
set -euo pipefail

PG_MAJOR=15
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PG_HOME="${CANVASS_PG_HOME:-$ROOT/.local/pg}"  # another folder gives another cluster (the fault tests use one)
DATA="$PG_HOME/data"
RUN="$PG_HOME/run"
LOG="$PG_HOME/postgres.log"
PWFILE="$PG_HOME/superuser.password"
PORT="${CANVASS_PG_PORT:-54320}"
# Set (by `standby start` only) when this cluster is to be made as a standby of the primary whose socket folder
# and port they name, instead of by initdb.
STANDBY_OF_RUN="${CANVASS_PG_STANDBY_OF_RUN:-}"
STANDBY_OF_PORT="${CANVASS_PG_STANDBY_OF_PORT:-}"
HOST=127.0.0.1
APP_URL="postgresql://canvass:canvass@$HOST:$PORT/canvass"
GEO_URL="postgresql://canvass_geo:canvass_geo@$HOST:$PORT/canvass"
SVC_URL="postgresql://canvass_svc:canvass_svc@$HOST:$PORT/canvass"  # the services' runtime role (no ownership)
KEYSTORE_URL="postgresql://canvass_keys:canvass_keys@$HOST:$PORT/canvass_keys"  # the data keys, apart from canvass

log() { printf 'localdb: %s\n' "$*" >&2; }
die() { printf 'localdb: error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# ---------------------------------------------------------------- binaries
find_bindir() {
    local d=""
    if command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir 2>/dev/null || true)"
    fi
    if [ -z "$d" ] || [ ! -x "$d/initdb" ] || [ ! -x "$d/pg_ctl" ]; then
        d="/usr/lib/postgresql/$PG_MAJOR/bin"
    fi
    printf '%s' "$d"
}
BIN="$(find_bindir)"

require_server_binaries() {
    if [ ! -x "$BIN/initdb" ] || [ ! -x "$BIN/pg_ctl" ] || [ ! -x "$BIN/postgres" ]; then
        # Debian's server package when it is missing (as root with apt-get; otherwise ensure_debian.sh says how).
        local debian="/usr/lib/postgresql/$PG_MAJOR/bin"
        if bash "$ROOT/scripts/ensure_debian.sh" "$debian/postgres=postgresql-$PG_MAJOR"; then BIN="$debian"; fi
    fi
    if [ ! -x "$BIN/initdb" ] || [ ! -x "$BIN/pg_ctl" ] || [ ! -x "$BIN/postgres" ]; then
        die "PostgreSQL server binaries not found in $BIN; install them (apt-get install postgresql-$PG_MAJOR postgresql-$PG_MAJOR-postgis-3) or set DATABASE_URL to an existing PostgreSQL+PostGIS database"
    fi
}

client() {  # psql / pg_isready: prefer the server's own, else whatever is on PATH
    local name="$1"
    if [ -x "$BIN/$name" ]; then printf '%s' "$BIN/$name"; else command -v "$name" || die "$name not found"; fi
}

# Run a server-side command as the cluster owner (postgres refuses to run as root).
as_owner() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# ---------------------------------------------------------------- PostGIS
postgis_control() {
    local share=""
    if [ -x "$BIN/pg_config" ]; then share="$("$BIN/pg_config" --sharedir 2>/dev/null || true)"; fi
    [ -n "$share" ] || share="/usr/share/postgresql/$PG_MAJOR"
    printf '%s/extension/postgis.control' "$share"
}

ensure_postgis() {
    local control
    control="$(postgis_control)"
    [ -f "$control" ] && return 0
    local pkg="postgresql-$PG_MAJOR-postgis-3"
    local hint="PostGIS is missing: install it with 'apt-get install $pkg' (as root), or set DATABASE_URL to an existing PostgreSQL+PostGIS database"
    if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
        printf 'localdb: %s\n' "$hint" >&2
        exit 1
    fi
    log "PostGIS not installed; installing $pkg with apt-get (this can take a minute)"
    # Wait for another apt/dpkg run instead of failing on its lock.
    if ! apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null \
        || ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$pkg" >/dev/null \
        || [ ! -f "$control" ]; then
        printf 'localdb: installing %s failed; %s\n' "$pkg" "$hint" >&2
        exit 1
    fi
    log "installed $pkg"
}

# ---------------------------------------------------------------- folders
check_traversable() {
    # The cluster owner must be able to reach $PG_HOME through every parent folder.
    is_root || return 0
    local dir="$PG_HOME"
    if ! runuser -u postgres -- test -x "$dir" 2>/dev/null || ! runuser -u postgres -- test -w "$dir" 2>/dev/null; then
        # Report the outermost folder that blocks it.
        local d="" part
        local IFS=/
        for part in ${dir#/}; do
            d="$d/$part"
            if ! runuser -u postgres -- test -x "$d" 2>/dev/null; then
                die "the 'postgres' user cannot traverse $d (needed to reach $PG_HOME); allow it (e.g. chmod o+x $d) or set DATABASE_URL to an existing PostGIS database"
            fi
        done
        die "the 'postgres' user cannot use $PG_HOME"
    fi
}

prepare_dirs() {
    mkdir -p "$PG_HOME" "$RUN"
    if is_root; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' OS user to own the cluster; run as a normal user or install the postgresql-$PG_MAJOR package"
        if [ -d "$ROOT/.local" ]; then chmod o+x "$ROOT/.local"; fi  # the default home's parent
        chown -R postgres: "$PG_HOME"
    fi
    chmod 0755 "$PG_HOME" "$RUN"  # the socket folder must be reachable by local clients
    touch "$LOG"
    if is_root; then chown postgres: "$LOG"; fi
    check_traversable
}

pick_locale() {
    if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then printf 'C.UTF-8'; else printf 'C'; fi
}

init_cluster() {
    [ -f "$DATA/PG_VERSION" ] && return 0
    if [ -d "$DATA" ] && [ -n "$(ls -A "$DATA" 2>/dev/null)" ]; then
        die "$DATA exists but is not a PostgreSQL data folder; move it away and run start again"
    fi
    if [ -n "$STANDBY_OF_PORT" ]; then
        # A copy of the primary that follows its WAL: -R writes standby.signal and primary_conninfo (through the
        # primary's socket, where the superuser's replication connection is trusted, as initdb's pg_hba.conf has it).
        log "copying the primary on port $STANDBY_OF_PORT into $DATA (pg_basebackup -R)"
        if ! as_owner "$BIN/pg_basebackup" -h "$STANDBY_OF_RUN" -p "$STANDBY_OF_PORT" -U postgres -D "$DATA" -R \
            -X stream --checkpoint=fast >"$PG_HOME/basebackup.log" 2>&1; then
            cat "$PG_HOME/basebackup.log" >&2
            die "pg_basebackup failed (see above)"
        fi
        return 0
    fi
    local loc
    loc="$(pick_locale)"
    log "initialising a new cluster in $DATA (locale $loc)"
    # Host (TCP) logins use passwords, so the superuser needs one; local socket logins are trusted.
    (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$PWFILE")
    if is_root; then chown postgres: "$PWFILE"; fi
    local enc_opts=(--encoding=UTF8 --locale="$loc")
    [ "$loc" = C ] && enc_opts=(--encoding=UTF8 --locale=C)
    if ! as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --pwfile="$PWFILE" "${enc_opts[@]}" >"$PG_HOME/initdb.log" 2>&1; then
        cat "$PG_HOME/initdb.log" >&2
        die "initdb failed (see above)"
    fi
}

write_config() {
    local conf="$DATA/canvass.conf"
    local tmp
    tmp="$(mktemp)"
    cat >"$tmp" <<EOF
# Written by scripts/localdb.sh on every start; edit the script, not this file.
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = '$RUN'
max_connections = 500
shared_buffers = 256MB
logging_collector = off
log_destination = 'stderr'
log_line_prefix = '%m [%p] %q%u@%d '
timezone = 'UTC'
EOF
    if is_root; then chown postgres: "$tmp"; fi
    chmod 0600 "$tmp"
    mv -f "$tmp" "$conf"
    if ! grep -q "^include_if_exists = 'canvass.conf'" "$DATA/postgresql.conf"; then
        printf "\ninclude_if_exists = 'canvass.conf'\n" >>"$DATA/postgresql.conf"
    fi
}

# ---------------------------------------------------------------- process state
pid_from_file() {
    [ -f "$DATA/postmaster.pid" ] || return 1
    local pid
    pid="$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    printf '%s' "$pid"
}

# A process that is a postgres server working in our data folder.
is_our_postgres() {
    local pid="$1"
    [ -d "/proc/$pid" ] || return 1
    # A zombie (exited, never reaped, e.g. when PID 1 does not reap) is not a live server.
    local stat
    stat="$(cat "/proc/$pid/stat" 2>/dev/null || true)"
    stat="${stat##*) }"
    case "${stat%% *}" in "" | Z | X | x) return 1 ;; esac
    local comm
    comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    case "$comm" in postgres | postmaster) ;; *) return 1 ;; esac
    local cwd
    cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null || true)"
    # cwd is unreadable for other users' processes when not root; trust the name then.
    [ -z "$cwd" ] || [ "$cwd" = "$DATA" ] || [ "$cwd" = "$(readlink -f "$DATA")" ]
}

postmaster_alive() {
    local pid
    pid="$(pid_from_file)" || return 1
    is_our_postgres "$pid"
}

accepting() {
    "$(client pg_isready)" -q -h "$RUN" -p "$PORT" -U postgres -d postgres >/dev/null 2>&1
}

# Backends left over after the postmaster was killed hold the shared memory; wait for them.
wait_for_orphans() {
    local i pids
    for i in $(seq 1 30); do
        pids=""
        local p
        for p in /proc/[0-9]*; do
            p="${p#/proc/}"
            if is_our_postgres "$p" 2>/dev/null && [ -n "$(readlink "/proc/$p/cwd" 2>/dev/null || true)" ]; then
                pids="$pids $p"
            fi
        done
        [ -z "$pids" ] && return 0
        [ "$i" -eq 1 ] && log "waiting for leftover server processes to exit:$pids"
        sleep 1
    done
    die "leftover postgres processes ($pids) still use $DATA; stop them and run start again"
}

# After a crash (kill -9 of the postmaster) its postmaster.pid and socket lock files stay behind and name a
# pid that is dead, a zombie or reused; postgres then refuses to start. Remove them when nothing of ours runs.
clear_stale_pid() {
    postmaster_alive && return 0
    if [ -f "$DATA/postmaster.pid" ]; then
        log "removing stale postmaster.pid (server was not shut down cleanly)"
        wait_for_orphans
        rm -f "$DATA/postmaster.pid"
    fi
    local lock pid
    for lock in "$RUN"/.s.PGSQL.*.lock; do
        [ -f "$lock" ] || continue
        pid="$(head -n 1 "$lock" 2>/dev/null || true)"
        if [[ "$pid" =~ ^[0-9]+$ ]] && is_our_postgres "$pid"; then continue; fi
        rm -f "$lock" "${lock%.lock}"
    done
}

wait_ready() {
    local i
    for i in $(seq 1 60); do
        accepting && return 0
        sleep 1
    done
    return 1
}

# ---------------------------------------------------------------- roles, database, extension
superuser_psql() {
    PGOPTIONS="-c client_min_messages=warning" "$(client psql)" -X -q -v ON_ERROR_STOP=1 -h "$RUN" -p "$PORT" -U postgres "$@"
}

bootstrap() {
    superuser_psql -d postgres >/dev/null <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'canvass') THEN
        CREATE ROLE canvass LOGIN PASSWORD 'canvass' CREATEDB CREATEROLE;
    ELSE
        ALTER ROLE canvass LOGIN PASSWORD 'canvass' CREATEDB CREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'canvass_read') THEN
        CREATE ROLE canvass_read NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'canvass_geo') THEN
        CREATE ROLE canvass_geo LOGIN PASSWORD 'canvass_geo' IN ROLE canvass_read;
    ELSE
        ALTER ROLE canvass_geo LOGIN PASSWORD 'canvass_geo';
        GRANT canvass_read TO canvass_geo;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'canvass_app') THEN
        CREATE ROLE canvass_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'canvass_svc') THEN
        CREATE ROLE canvass_svc LOGIN PASSWORD 'canvass_svc' IN ROLE canvass_app;
    ELSE
        ALTER ROLE canvass_svc LOGIN PASSWORD 'canvass_svc';
        GRANT canvass_app TO canvass_svc;
    END IF;
    -- The key store's own role (shared/keystore.py): it owns canvass_keys and nothing of canvass.
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'canvass_keys') THEN
        CREATE ROLE canvass_keys LOGIN PASSWORD 'canvass_keys';
    ELSE
        ALTER ROLE canvass_keys LOGIN PASSWORD 'canvass_keys';
    END IF;
    -- so the test suite can drop its databases while geo_query's read role is still connected
    GRANT pg_signal_backend TO canvass;
END
$$;
SQL
    # template1 first, so every database created later (including canvass and the test databases) has PostGIS.
    superuser_psql -d template1 -c 'CREATE EXTENSION IF NOT EXISTS postgis' >/dev/null
    superuser_psql -d postgres >/dev/null <<'SQL'
SELECT 'CREATE DATABASE canvass OWNER canvass'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'canvass')
\gexec
SELECT 'CREATE DATABASE canvass_keys OWNER canvass_keys'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'canvass_keys')
\gexec
SQL
    # The key store's database: no one but its own role (and the superuser) may connect to it.
    superuser_psql -d postgres >/dev/null <<'SQL'
REVOKE ALL ON DATABASE canvass_keys FROM PUBLIC;
GRANT CONNECT ON DATABASE canvass_keys TO canvass_keys;
SQL
    superuser_psql -d canvass >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS postgis;
ALTER DATABASE canvass OWNER TO canvass;
ALTER SCHEMA public OWNER TO canvass;
SQL
}

# ---------------------------------------------------------------- commands
cmd_start() {
    require_server_binaries
    ensure_postgis
    prepare_dirs
    init_cluster
    write_config
    if postmaster_alive; then
        if wait_ready; then
            log "already running (pid $(pid_from_file), port $PORT)"
        else
            die "a server is running on $DATA but does not accept connections on port $PORT; see $LOG"
        fi
    else
        clear_stale_pid
        log "starting PostgreSQL on $HOST:$PORT (log: $LOG)"
        if ! as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null; then
            tail -n 20 "$LOG" >&2 || true
            die "PostgreSQL did not start (port $PORT in use? set CANVASS_PG_PORT); see $LOG"
        fi
        wait_ready || die "PostgreSQL started but does not accept connections; see $LOG"
    fi
    if [ -f "$DATA/standby.signal" ]; then
        log "ready: a hot standby (read-only) on $HOST:$PORT"
        return 0
    fi
    bootstrap
    log "ready: DATABASE_URL=$SVC_URL"
    log "       MIGRATIONS_DATABASE_URL=$APP_URL"
    log "       GEO_QUERY_DATABASE_URL=$GEO_URL"
    log "       CANVASS_KEYSTORE_URL=$KEYSTORE_URL"
}

cmd_stop() {
    if [ ! -f "$DATA/PG_VERSION" ]; then
        log "no local cluster (never started)"
        return 0
    fi
    if postmaster_alive; then
        as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
        log "stopped"
    else
        log "not running"
    fi
}

cmd_status() {
    if [ -f "$DATA/PG_VERSION" ] && postmaster_alive && accepting; then
        echo "running (pid $(pid_from_file), $APP_URL)"
        exit 0
    fi
    echo "stopped"
    exit 3
}

cmd_psql() {
    postmaster_alive || die "the local cluster is not running; run: scripts/localdb.sh start"
    local psql_bin
    psql_bin="$(client psql)"
    exec "$psql_bin" -h "$RUN" -p "$PORT" -U postgres -d canvass "$@"
}

# The standby of this cluster: the same script on the standby's folder and port (its start makes it the first time).
cmd_standby() {
    local action="${1:-start}"
    local home="${CANVASS_STANDBY_HOME:-$PG_HOME-standby}"
    local port="${CANVASS_STANDBY_PORT:-$((PORT + 1))}"
    local self="${BASH_SOURCE[0]}"
    case "$action" in
        start)
            postmaster_alive && accepting || die "the primary (port $PORT, $DATA) is not running: start it first"
            CANVASS_PG_HOME="$home" CANVASS_PG_PORT="$port" CANVASS_PG_STANDBY_OF_RUN="$RUN" \
                CANVASS_PG_STANDBY_OF_PORT="$PORT" bash "$self" start
            ;;
        stop | status) CANVASS_PG_HOME="$home" CANVASS_PG_PORT="$port" bash "$self" "$action" ;;
        geo-url) echo "postgresql://canvass_geo:canvass_geo@$HOST:$port/canvass" ;;
        *) usage ;;
    esac
}

usage() {
    echo "usage: $0 {start|stop|status|url|svc-url|geo-url|keystore-url|standby [start|stop|status|geo-url]|psql [psql args...]}" >&2
    exit 2
}

main() {
    [ "$#" -ge 1 ] || usage
    local cmd="$1"
    shift
    case "$cmd" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        url) echo "$APP_URL" ;;
        geo-url) echo "$GEO_URL" ;;
        svc-url) echo "$SVC_URL" ;;
        keystore-url) echo "$KEYSTORE_URL" ;;
        standby) cmd_standby "$@" ;;
        psql) cmd_psql "$@" ;;
        *) usage ;;
    esac
}

main "$@"

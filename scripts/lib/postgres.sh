# A throwaway PostgreSQL server for tests and benchmarks, sourced by
# scripts/test and scripts/bench-postgres.
#
#   pg_start [server options...]   installs PostgreSQL from Debian's packages
#                                  if it is missing, initdb's a temporary
#                                  cluster as a non-root user, starts it on
#                                  127.0.0.1 on a free port, and sets
#                                  PG_TEST_URL (a superuser URL, database
#                                  "postgres"). It is stopped and removed on
#                                  exit.
#   pg_stop                        stops it early.

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

pg_start() {
  local bin
  bin=$(pg_bin)
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "PostgreSQL is not installed; run as root or: apt-get install postgresql" >&2
      return 1
    fi
    echo "== installing PostgreSQL from Debian's packages"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(pg_bin)
  fi
  # PostgreSQL refuses to run as root: use a user of its own.
  PG_AS=()
  local owner
  owner=$(id -un)
  if [ "$(id -u)" = 0 ]; then
    owner=ordo-pg
    id -u "$owner" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$owner"
    PG_AS=(runuser -u "$owner" --)
  fi
  PG_DIR=$(mktemp -d /tmp/ordo-pg.XXXXXX)
  chown "$owner" "$PG_DIR"
  chmod 755 "$PG_DIR"
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  PG_CTL="$bin/pg_ctl"
  "${PG_AS[@]}" "$bin/initdb" -D "$PG_DIR/data" -U ordo --auth=trust --no-locale -E UTF8 >"$PG_DIR/initdb.log" 2>&1 || {
    cat "$PG_DIR/initdb.log" >&2
    return 1
  }
  trap pg_stop EXIT
  "${PG_AS[@]}" "$PG_CTL" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $PG_DIR $*" start >/dev/null || {
    cat "$PG_DIR/server.log" >&2
    return 1
  }
  PG_TEST_URL="postgres://ordo@127.0.0.1:$port/postgres"
  export PG_TEST_URL
  echo "== PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $PG_DIR)"
}

pg_stop() {
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ]; then
    # A server that crashed or ran out of room says so in its log, which
    # is removed with the cluster: show why before it goes.
    local failed='PANIC|terminated by signal|No space left|out of memory'
    if grep -qE "$failed" "$PG_DIR/server.log" 2>/dev/null; then
      echo "== PostgreSQL failed during the run; its log says:" >&2
      { grep -E -B2 -A2 "$failed" "$PG_DIR/server.log" | head -n 60; } >&2 || true
      df -h "$PG_DIR" /tmp >&2 || true
      free -m >&2 || true
    fi
    "${PG_AS[@]}" "$PG_CTL" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
  PG_DIR=
}

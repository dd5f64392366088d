# A throwaway S3-compatible server (PyPI's moto) for tests, sourced by
# scripts/test.
#
#   s3_start    installs moto[server] into a virtualenv under target/ if it
#               is not there yet, starts it on 127.0.0.1 on a free port and
#               sets S3_TEST_URL. Buckets are made by the tests.
#   s3_stop     stops it.

s3_start() {
  local venv="${CARGO_TARGET_DIR:-target}/moto-venv"
  if [ ! -x "$venv/bin/moto_server" ]; then
    echo "== installing moto[server] (an S3 emulator) from PyPI into $venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      rm -rf "$venv"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check "moto[server]"
  fi
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  S3_LOG=$(mktemp /tmp/ordo-s3.XXXXXX.log)
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$S3_LOG" 2>&1 &
  S3_PID=$!
  S3_TEST_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('$S3_TEST_URL/')" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "the S3 emulator did not start:" >&2
  cat "$S3_LOG" >&2
  return 1
}

s3_stop() {
  if [ -n "${S3_PID:-}" ]; then
    kill "$S3_PID" 2>/dev/null || true
    wait "$S3_PID" 2>/dev/null || true
    S3_PID=
    rm -f "${S3_LOG:-}"
  fi
}

#!/usr/bin/env bash
# Starts the real servers the monitor tests sample, on loopback, idempotently, and prints the
# environment the tests read (`eval "$(scripts/test-services.sh)"`):
#   STAMPEDE_TEST_PG_URL     postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres (pgbench tables in it)
#   STAMPEDE_TEST_PGBENCH    the pgbench binary of the same PostgreSQL
#   STAMPEDE_TEST_REDIS_URL  redis://:PASSWORD@127.0.0.1:PORT/0
#   STAMPEDE_TEST_INSURANCE_DB_URL  the insurance example's database (examples/data/insurance-db.sql)
#   STAMPEDE_TEST_WS_URL     ws://127.0.0.1:PORT, Python's `websockets` (scripts/ws-echo-server.py)
#   STAMPEDE_TEST_HTTPBIN_URL http://127.0.0.1:PORT (httpbin under gunicorn, for the HTTP tests)
#   STAMPEDE_TEST_PROMETHEUS_URL http://127.0.0.1:PORT (Prometheus with the remote-write receiver)
#   STAMPEDE_TEST_OTLP_PYTHON a python with `opentelemetry-proto` (decodes OTLP in the tests)
# Both databases get a password, so the tests can check that it never reaches a run directory.
# httpbin (PyPI `httpbin` + `gunicorn`) is installed once into a venv under the cache directory
# and started on a free port, which is kept in a file so that later calls find the same server.
# PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user.
set -euo pipefail

PG_PORT=${STAMPEDE_TEST_PG_PORT:-25432}
REDIS_PORT=${STAMPEDE_TEST_REDIS_PORT:-26379}
PASSWORD=stampede-test-pw
# Ports below the kernel's ephemeral range (32768+), so an outgoing connection never holds them.
PG_DIR=/tmp/stampede-test-pg
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PG_BIN" ] || { echo "test-services: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if ! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
  if [ ! -f "$PG_DIR/PG_VERSION" ]; then
    rm -rf "$PG_DIR"
    mkdir -p "$PG_DIR"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DIR"
    echo "$PASSWORD" > "$PG_DIR.pw"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DIR.pw"
    as_pg "$PG_BIN/initdb" -D "$PG_DIR" -U postgres --pwfile="$PG_DIR.pw" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >/dev/null
    rm -f "$PG_DIR.pw"
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" -w \
    -o "-p $PG_PORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=50" start >/dev/null
fi
# pgbench's tables, once (scale 1: 100,000 accounts, a few seconds).
if ! as_pg "$PG_BIN/psql" -h /tmp -p "$PG_PORT" -U postgres -d postgres -tAc \
  "SELECT 1 FROM pg_tables WHERE tablename = 'pgbench_accounts'" | grep -q 1; then
  as_pg "$PG_BIN/pgbench" -h /tmp -p "$PG_PORT" -U postgres -i -s 1 -q postgres >/dev/null 2>&1
fi

if ! redis-cli -p "$REDIS_PORT" -a "$PASSWORD" --no-auth-warning ping 2>/dev/null | grep -q PONG; then
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --requirepass "$PASSWORD" --daemonize yes \
    --save "" --appendonly no --pidfile /tmp/stampede-test-redis.pid --logfile /tmp/stampede-test-redis.log
  for _ in $(seq 50); do
    redis-cli -p "$REDIS_PORT" -a "$PASSWORD" --no-auth-warning ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
fi

# The insurance example's database (examples/data/insurance-db.sql), loaded once.
if ! as_pg "$PG_BIN/psql" -h /tmp -p "$PG_PORT" -U postgres -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'insurance'" | grep -q 1; then
  as_pg "$PG_BIN/psql" -h /tmp -p "$PG_PORT" -U postgres -d postgres -qc "CREATE DATABASE insurance" >/dev/null
fi
as_pg "$PG_BIN/psql" -h /tmp -p "$PG_PORT" -U postgres -d insurance -q -v ON_ERROR_STOP=1 \
  -f "$(cd "$(dirname "$0")/.." && pwd)/examples/data/insurance-db.sql" >/dev/null

# Python's `websockets` in a venv of its own, serving scripts/ws-echo-server.py.
WS_PORT=${STAMPEDE_TEST_WS_PORT:-28765}
WS_VENV=/tmp/stampede-test-ws-venv
if [ ! -x "$WS_VENV/bin/python" ] || ! "$WS_VENV/bin/python" -c "import websockets" 2>/dev/null; then
  python3 -m venv "$WS_VENV" >/dev/null
  "$WS_VENV/bin/pip" install -q "websockets>=13,<16" >/dev/null
fi
if ! (exec 3<>"/dev/tcp/127.0.0.1/$WS_PORT") 2>/dev/null; then
  nohup "$WS_VENV/bin/python" "$(dirname "$0")/ws-echo-server.py" "$WS_PORT" >/tmp/stampede-test-ws.log 2>&1 &
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$WS_PORT") 2>/dev/null && break
    sleep 0.1
  done
fi
HTTPBIN_VENV=${STAMPEDE_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stampede-test}/httpbin-venv
HTTPBIN_PORT_FILE=/tmp/stampede-test-httpbin.port
httpbin_up() {
  [ -f "$HTTPBIN_PORT_FILE" ] && "$HTTPBIN_VENV/bin/python" - "$(cat "$HTTPBIN_PORT_FILE")" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/get", timeout=2) as r:
    sys.exit(0 if b'"url"' in r.read() else 1)
PY
}
if [ ! -x "$HTTPBIN_VENV/bin/gunicorn" ] || ! "$HTTPBIN_VENV/bin/python" -c 'import httpbin' 2>/dev/null; then
  rm -rf "$HTTPBIN_VENV"
  mkdir -p "$(dirname "$HTTPBIN_VENV")"
  python3 -m venv "$HTTPBIN_VENV" >&2
  "$HTTPBIN_VENV/bin/pip" install -q --disable-pip-version-check httpbin gunicorn >&2
fi
if ! httpbin_up; then
  [ -f /tmp/stampede-test-httpbin.pid ] && kill "$(cat /tmp/stampede-test-httpbin.pid)" 2>/dev/null || true
  port=$("$HTTPBIN_VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  echo "$port" > "$HTTPBIN_PORT_FILE"
  # gthread: the tests' VUs and a slow endpoint must not queue behind each other.
  "$HTTPBIN_VENV/bin/gunicorn" --daemon --bind "127.0.0.1:$port" --worker-class gthread --workers 1 \
    --threads 16 --pid /tmp/stampede-test-httpbin.pid --error-logfile /tmp/stampede-test-httpbin.log \
    httpbin:app
  for _ in $(seq 100); do httpbin_up && break; sleep 0.1; done
  httpbin_up || { echo "test-services: httpbin did not start (/tmp/stampede-test-httpbin.log)" >&2; exit 1; }
fi

# A real Prometheus receiving remote write (and native histograms), for `--output prometheus-rw`
# and `stampede export`; the tests tell their runs apart by a label of their own.
PROM_PORT=${STAMPEDE_TEST_PROMETHEUS_PORT:-29090}
PROM_DIR=/tmp/stampede-test-prometheus
prom_up() { (exec 3<>"/dev/tcp/127.0.0.1/$PROM_PORT") 2>/dev/null; }
if ! prom_up; then
  command -v prometheus >/dev/null || { echo "test-services: prometheus is not installed (apt-get install prometheus)" >&2; exit 1; }
  mkdir -p "$PROM_DIR"
  printf 'global:\n  scrape_interval: 1m\n' > "$PROM_DIR/prometheus.yml"
  nohup prometheus --config.file="$PROM_DIR/prometheus.yml" --storage.tsdb.path="$PROM_DIR/data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-remote-write-receiver \
    --enable-feature=native-histograms >"$PROM_DIR/prometheus.log" 2>&1 &
  for _ in $(seq 100); do prom_up && break; sleep 0.1; done
  prom_up || { echo "test-services: prometheus did not start ($PROM_DIR/prometheus.log)" >&2; exit 1; }
fi

# The official OTLP protobuf definitions (PyPI `opentelemetry-proto`), to decode what
# `--output otlp` sends (scripts/otlp-receiver.py).
OTLP_VENV=${STAMPEDE_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stampede-test}/otlp-venv
if ! "$OTLP_VENV/bin/python" -c 'import opentelemetry.proto.collector.metrics.v1.metrics_service_pb2' 2>/dev/null; then
  rm -rf "$OTLP_VENV"
  mkdir -p "$(dirname "$OTLP_VENV")"
  python3 -m venv "$OTLP_VENV" >&2
  "$OTLP_VENV/bin/pip" install -q --disable-pip-version-check opentelemetry-proto >&2
fi

echo "export STAMPEDE_TEST_PG_URL=postgres://postgres:$PASSWORD@127.0.0.1:$PG_PORT/postgres"
echo "export STAMPEDE_TEST_PGBENCH=$PG_BIN/pgbench"
echo "export STAMPEDE_TEST_REDIS_URL=redis://:$PASSWORD@127.0.0.1:$REDIS_PORT/0"
echo "export STAMPEDE_TEST_WS_URL=ws://127.0.0.1:$WS_PORT"
echo "export STAMPEDE_TEST_INSURANCE_DB_URL=postgres://postgres:$PASSWORD@127.0.0.1:$PG_PORT/insurance"
echo "export STAMPEDE_TEST_HTTPBIN_URL=http://127.0.0.1:$(cat "$HTTPBIN_PORT_FILE")"
echo "export STAMPEDE_TEST_PROMETHEUS_URL=http://127.0.0.1:$PROM_PORT"
echo "export STAMPEDE_TEST_OTLP_PYTHON=$OTLP_VENV/bin/python"

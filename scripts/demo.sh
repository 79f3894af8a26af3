#!/usr/bin/env bash
# Set up and run the demo: migrate, create the demo curator (its login is printed), import
# the real scikit-image photos (+ some openclipart drawings), create a sample project, then
# start the web server and a django-q2 worker together. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh

export PORT=${PORT:-8000}
.venv/bin/python manage.py migrate --no-input
.venv/bin/python manage.py demo --port "$PORT"

# The worker gets a process group of its own: on Ctrl-C, SIGTERM or any exit we stop it as
# a whole, asking first, then insisting — a half-stopped cluster must not outlive the demo.
setsid .venv/bin/python manage.py qcluster &
worker=$!
# The server runs in the background too and the script waits for it: bash runs a trap only
# between commands, so with the server in the foreground a SIGTERM sent to this script (a
# supervisor, `kill PID`) would wait until the server had exited by itself.
.venv/bin/python manage.py runserver "127.0.0.1:${PORT}" --noreload &
server=$!
stop_group() {  # $1: the leader of a process group
  # SIGTERM to the cluster's master only: it stops its workers itself (with the whole group
  # signalled at once, django-q2's master waits for ever).
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 20); do
    kill -0 -- "-$1" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -KILL -- "-$1" 2>/dev/null || true
}
stop_all() {
  kill -TERM "$server" 2>/dev/null || true
  stop_group "$worker"
  wait "$server" 2>/dev/null || true
}
# SIGPIPE ignored: with the output piped (| tee) Ctrl-C closes the pipe first, and the
# cleanup must still run.
trap "" PIPE
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
echo "==> Curio on http://127.0.0.1:${PORT}/ (server pid $server, worker pid $worker; Ctrl-C stops both)"
# The server's exit status is the demo's (a port already in use ends the demo, worker included).
wait "$server"

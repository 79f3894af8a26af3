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

# The worker gets a process group of its own: on Ctrl-C (or any exit) we stop it as a
# whole, asking first, then insisting — a half-stopped cluster must not outlive the demo.
setsid .venv/bin/python manage.py qcluster &
worker=$!
stop_worker() {
  kill -TERM -- "-$worker" 2>/dev/null || return 0
  for _ in $(seq 1 20); do
    kill -0 -- "-$worker" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -KILL -- "-$worker" 2>/dev/null || true
}
# SIGPIPE ignored: with the output piped (| tee) Ctrl-C closes the pipe first, and the
# cleanup must still run.
trap "" PIPE
trap stop_worker EXIT
trap 'exit 130' INT TERM
echo "==> Curio on http://127.0.0.1:${PORT}/ (worker pid $worker; Ctrl-C stops both)"
.venv/bin/python manage.py runserver "127.0.0.1:${PORT}" --noreload

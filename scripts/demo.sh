#!/usr/bin/env bash
# Set up and run the demo: migrate, create the demo curator (its login is printed), import
# the real scikit-image photos (+ some openclipart drawings), create a sample project, then
# start the web server and a django-q2 worker together. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh

PORT=${PORT:-8000}
.venv/bin/python manage.py migrate --no-input
.venv/bin/python manage.py demo

.venv/bin/python manage.py qcluster &
worker=$!
trap 'kill $worker 2>/dev/null || true' EXIT INT TERM
echo "==> Curio on http://127.0.0.1:${PORT}/ (worker pid $worker)"
.venv/bin/python manage.py runserver "127.0.0.1:${PORT}" --noreload

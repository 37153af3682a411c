#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 for the tests (they create and drop a
# throw-away database and role of their own). Starts the machine's Debian cluster when it is
# installed and stopped; with --install, installs Debian's postgresql package first when it is
# absent (CI). Prints one line saying what it found or did. Not run as root, it uses `sudo -n`
# (GitHub's runners allow it without a password).
set -euo pipefail

as_root=()
if [ "$(id -u)" != 0 ]; then
  as_root=(sudo -n)
fi

if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "postgres: answering on 127.0.0.1:5432"
  exit 0
fi
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  if [ "${1:-}" != "--install" ]; then
    echo "postgres: not installed (apt-get install -y postgresql), and nothing answers on" \
      "127.0.0.1:5432: the registry tests need it" >&2
    exit 1
  fi
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
# The cluster on the tests' port (pg_lsclusters: version, name, port, ...), e.g. "15 main".
read -r version cluster _ < <(pg_lsclusters --no-header | awk '$3 == 5432' | head -n 1) || true
if [ -z "${version:-}" ]; then
  echo "postgres: no cluster on port 5432 to start (pg_createcluster <version> main -p 5432)" >&2
  exit 1
fi
"${as_root[@]}" pg_ctlcluster "$version" "$cluster" start
for _ in $(seq 1 120); do
  if pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "postgres: cluster $version/$cluster started on 127.0.0.1:5432"
    exit 0
  fi
  sleep 0.5
done
echo "postgres: cluster $version/$cluster started but does not answer on 127.0.0.1:5432" >&2
exit 1

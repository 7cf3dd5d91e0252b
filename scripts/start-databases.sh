#!/usr/bin/env bash
# Makes sure the local Postgres (127.0.0.1:5432, trust auth) and MariaDB (127.0.0.1:3306,
# root without password) answer and have a `test` database, and RabbitMQ answers on 5672. These machines start both
# before each session; elsewhere this installs and starts them from Debian's packages.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

command -v psql >/dev/null || apt_install postgresql-client
command -v mariadb >/dev/null || apt_install mariadb-client

pg_ok() { psql "postgres://postgres@127.0.0.1:5432/postgres" -qtAX -c "SELECT 1" >/dev/null 2>&1; }
my_ok() { mariadb -h 127.0.0.1 -P 3306 -u root -e "SELECT 1" >/dev/null 2>&1; }

wait_for() { for _ in $(seq 1 100); do "$1" && return 0; sleep 0.2; done; return 1; }

if ! pg_ok; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  echo "postgres: starting"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  wait_for pg_ok || { echo "Postgres does not answer on 127.0.0.1:5432 (trust auth for user postgres is expected)" >&2; exit 1; }
fi
psql "postgres://postgres@127.0.0.1:5432/postgres" -qtAX -c "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
  || psql "postgres://postgres@127.0.0.1:5432/postgres" -qtAX -c "CREATE DATABASE test"

if ! my_ok; then
  command -v mariadbd >/dev/null || apt_install mariadb-server
  echo "mariadb: starting"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  wait_for my_ok || { echo "MariaDB does not answer on 127.0.0.1:3306 (root without password is expected)" >&2; exit 1; }
fi
mariadb -h 127.0.0.1 -P 3306 -u root -e "CREATE DATABASE IF NOT EXISTS test"

# RabbitMQ (127.0.0.1:5672, guest/guest) for the RabbitMQ connector tests.
rabbit_ok() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! rabbit_ok; then
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  echo "rabbitmq: starting"
  rabbitmq-server -detached || true
  for _ in $(seq 1 150); do rabbit_ok && break; sleep 0.2; done
  rabbit_ok || { echo "RabbitMQ does not answer on 127.0.0.1:5672 (guest/guest is expected)" >&2; exit 1; }
fi
echo "databases and brokers: Postgres, MariaDB and RabbitMQ ready"

#!/bin/bash
# Runs deploy/install.sh in a clean Debian 12 chroot (debootstrap), as far as a machine without a
# booted systemd inside allows: `install.sh --prepare` with the network (apt, venv, npm), then the
# full install.sh in a private network namespace (its PostgreSQL and RabbitMQ never meet the
# host's), twice (idempotence), then checks. Not part of CI (minutes, and needs root and the Debian
# mirror). Usage: deploy/chroot-test.sh [CHROOT_DIR]   (default /tmp/joliba-chroot)
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=${1:-/tmp/joliba-chroot}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" = 0 ] || { echo "chroot-test: run as root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "chroot-test: apt-get install debootstrap" >&2; exit 1; }

[ -x "$ROOT/bin/bash" ] || debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR"
cp /etc/resolv.conf /etc/hosts "$ROOT/etc/"
# This machine's package-index settings (pip, npm), if any, so the chroot installs as the host does.
# (and its CA bundle: the index may be reached through a proxy with its own certificate).
for f in /etc/pip.conf /etc/xdg/pip/constraints.txt /etc/npmrc /root/.npmrc /root/.config/pip/pip.conf \
  /etc/ssl/certs/ca-certificates.crt; do
  if [ -f "$f" ]; then install -D -m 0644 "$f" "$ROOT$f"; fi
done
mounted=()
cleanup() { for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done; }
trap cleanup EXIT
bind() { mkdir -p "$ROOT$1"; mount --bind "$1" "$ROOT$1"; mounted+=("$ROOT$1"); }
bind /dev; bind /dev/pts; bind /dev/shm; bind /sys  # /dev/shm: Celery prefork's semaphores
mount -t proc proc "$ROOT/proc"; mounted+=("$ROOT/proc")
[ -d /opt/wheels ] && { bind /opt/wheels; mount -o remount,ro,bind "$ROOT/opt/wheels"; }
mkdir -p "$ROOT/src/joliba"
rsync -a --delete --exclude .git --exclude /.venv --exclude /node_modules --exclude /var \
  --exclude '*_cache' --exclude '*.egg-info' "$SRC/" "$ROOT/src/joliba/"

cat > "$ROOT/etc/joliba-test.env" <<ENV
JOLIBA_ENV=production
SECRET_KEY=$(head -c 48 /dev/urandom | base64 | tr -d '/+=')
ALLOWED_HOSTS=joliba.test
CSRF_TRUSTED_ORIGINS=https://joliba.test
JOLIBA_DOMAIN=joliba.test
JOLIBA_DATA_DIR=/var/lib/joliba
STATIC_ROOT=/var/lib/joliba/static
JOLIBA_PROXY_COUNT=0
POSTGRES_PASSWORD=unused-here
POSTGRES_JOLIBA_PASSWORD=pw-joliba-$RANDOM
POSTGRES_ORTHANC_PASSWORD=pw-orthanc-$RANDOM
RABBITMQ_PASSWORD=pw-rabbit-$RANDOM
DATABASE_URL=postgres://joliba:@127.0.0.1:5432/joliba
CELERY_BROKER_URL=amqp://joliba:@127.0.0.1:5672/joliba
CELERY_SPLIT_QUEUES=1
ORTHANC_URL=http://127.0.0.1:8042
ORTHANC_USERNAME=joliba
ORTHANC_PASSWORD=pw-orthanc-http
DEFAULT_FROM_EMAIL=Joliba <alertes@joliba.test>
ENV
# The URLs carry the passwords above.
sed -i -e "s|^DATABASE_URL=postgres://joliba:@|DATABASE_URL=postgres://joliba:$(grep -oP '^POSTGRES_JOLIBA_PASSWORD=\K.*' "$ROOT/etc/joliba-test.env")@|" \
  -e "s|^CELERY_BROKER_URL=amqp://joliba:@|CELERY_BROKER_URL=amqp://joliba:$(grep -oP '^RABBITMQ_PASSWORD=\K.*' "$ROOT/etc/joliba-test.env")@|" "$ROOT/etc/joliba-test.env"
install -d -m 0750 "$ROOT/etc/joliba"
[ -f "$ROOT/etc/joliba/joliba.env" ] || cp "$ROOT/etc/joliba-test.env" "$ROOT/etc/joliba/joliba.env"

echo "== chroot-test: install.sh --prepare (network)"
chroot "$ROOT" env JOLIBA_SRC=/src/joliba JOLIBA_ALLOW_OLD_ORTHANC=1 bash /src/joliba/deploy/install.sh --prepare

# The chroot's cluster took the next free port if the host's PostgreSQL holds 5432.
pg_port=$(grep -oP '^port = \K[0-9]+' "$ROOT"/etc/postgresql/*/main/postgresql.conf | head -n1)
sed -i "/^DATABASE_URL=/s|@127.0.0.1:[0-9]*/joliba$|@127.0.0.1:$pg_port/joliba|" "$ROOT/etc/joliba/joliba.env"

offline() {  # the rest in a private network namespace with loopback only, its processes ended after
  unshare --net --pid --fork --mount-proc="$ROOT/proc" bash -c \
    "ip link set lo up && chroot '$ROOT' env JOLIBA_SRC=/src/joliba JOLIBA_ALLOW_OLD_ORTHANC=1 bash -c '$1'"
}
cat > "$ROOT/root/checks.sh" <<'CHECKS'
set -euo pipefail
bash /src/joliba/deploy/install.sh
bash /src/joliba/deploy/install.sh
echo "CHECK second run: ok"
echo "CHECK migrations applied: $(joliba-manage showmigrations --plan | grep -c '\[X\]'), pending: $(joliba-manage showmigrations --plan | grep -c '\[ \]' || true)"
echo "CHECK databases: $(runuser -u postgres -- psql -qtAc "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname IN ('joliba', 'orthanc')")"
echo "CHECK rabbitmq permissions: $(rabbitmqctl -q list_permissions -p joliba | tr '\t\n' '  ')"
nginx -t -q && echo "CHECK nginx -t: ok"
echo "CHECK enabled: $(find /etc/systemd/system/multi-user.target.wants -name 'joliba*' -printf '%f ' | tr -s ' ')"
echo "CHECK static files: $(find /var/lib/joliba/static -type f | wc -l)"
cd /etc/systemd/system
systemd-analyze verify joliba-web.service joliba-beat.service joliba-worker@ingest.service joliba-orthanc.service \
  && echo "CHECK systemd-analyze verify: ok"
CHECKS
# Then the services by hand, as the units would run them (no systemd here): Orthanc on its
# PostgreSQL index, gunicorn behind nginx, a worker on a quorum queue.
cat > "$ROOT/root/run-services.sh" <<'RUN'
set -euo pipefail
asjoliba() {  # the program with /etc/joliba/joliba.env, as the joliba user (EnvironmentFile=)
  runuser -u joliba -- /opt/joliba/.venv/bin/python -c '
import os, sys
for line in open("/etc/joliba/joliba.env"):
    line = line.strip()
    if line and not line.startswith("#") and "=" in line:
        k, v = line.split("=", 1)
        os.environ[k] = v
os.chdir("/opt/joliba/platform")
os.execv(sys.argv[1], sys.argv[1:])' "$@"
}
set -a; . /etc/joliba/orthanc.env; set +a
runuser -u orthanc -- env ORTHANC_PASSWORD="$ORTHANC_PASSWORD" POSTGRES_ORTHANC_PASSWORD="$POSTGRES_ORTHANC_PASSWORD" \
  /usr/local/sbin/joliba-orthanc --logdir=/var/log/orthanc /etc/joliba/orthanc/ &
for _ in $(seq 60); do curl -fsS -u "joliba:$ORTHANC_PASSWORD" http://127.0.0.1:8042/system >/tmp/system.json 2>/dev/null && break; sleep 1; done
echo "CHECK orthanc /system: $(tr -d '\n ' < /tmp/system.json | grep -oE '"(Version|DatabaseBackendPlugin)":"?[^,"]*' | tr '\n' ' ')"
asjoliba /opt/joliba/.venv/bin/gunicorn joliba.wsgi --bind=127.0.0.1:8000 --worker-class=gthread --workers=1 --threads=4 &
asjoliba /opt/joliba/.venv/bin/celery -A joliba worker -Q ingest -n ingest@chroot --concurrency=1 --loglevel=WARNING &
nginx
sleep 15
echo "CHECK gunicorn login page: $(curl -s -o /dev/null -w '%{http_code}' -H 'Host: joliba.test' http://127.0.0.1:8000/accounts/login/)"
echo "CHECK through nginx (TLS): $(curl -sk -o /dev/null -w '%{http_code}' --resolve joliba.test:443:127.0.0.1 https://joliba.test/accounts/login/)"
echo "CHECK http redirects: $(curl -s -o /dev/null -w '%{http_code}' -H 'Host: joliba.test' http://127.0.0.1/accounts/login/)"
echo "CHECK worker ping: $(asjoliba /opt/joliba/.venv/bin/celery -A joliba inspect ping -d ingest@chroot --timeout 10 2>&1 | grep -c pong)"
echo "CHECK queues: $(rabbitmqctl -q list_queues -p joliba name type | tr '\t\n' ': ')"
RUN
echo "== chroot-test: install.sh (private network), twice, then checks"
offline 'bash /root/checks.sh && bash /root/run-services.sh'
echo "== chroot-test: done"

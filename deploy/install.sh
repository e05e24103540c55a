#!/bin/bash
# Joliba on a bare Debian 12 server, without Docker (docs/deployment.md).
#
#   cp deploy/joliba.env.example /etc/joliba/joliba.env   # fill in every CHANGE_ME
#   ORTHANC_BINARY=/path/to/Orthanc-1.12.11 deploy/install.sh
#
# Installs the Debian packages (PostgreSQL, RabbitMQ, nginx, Orthanc and its plugins, Kannel), the
# platform in /opt/joliba with its venv, the databases, the broker's account, nginx's site, and
# the systemd units (deploy/systemd/), then enables and starts them. Idempotent: run it again after
# an update of the source or of the environment file. Never asks anything.
#
# Orthanc: production needs >= 1.12.11 (memory-safety fixes); Debian 12 ships 1.10.1. The script
# uses the binary named by ORTHANC_BINARY (the Orthanc Team's Linux build, copied to the server
# beforehand), else Debian's, and refuses to go on with a version below 1.12.11 unless
# JOLIBA_ALLOW_OLD_ORTHANC=1 (a test machine on loopback only; it warns).
#
# `install.sh --prepare` stops after the steps that need the network (packages, code, venv, static
# files): for an image, or a machine that is then moved where it will run. Run without it next.
#
# Environment: JOLIBA_ENV_FILE (/etc/joliba/joliba.env), JOLIBA_SRC (this checkout), JOLIBA_PREFIX
# (/opt/joliba), ORTHANC_BINARY, JOLIBA_ALLOW_OLD_ORTHANC, JOLIBA_SKIP_APT=1 (packages already
# there), JOLIBA_NO_START=1 (configure and enable the Joliba units, start none of them).
set -euo pipefail

PREPARE_ONLY=0
case "${1:-}" in
  --prepare) PREPARE_ONLY=1 ;;
  "") ;;
  *) echo "usage: install.sh [--prepare]" >&2; exit 2 ;;
esac
ENV_FILE=${JOLIBA_ENV_FILE:-/etc/joliba/joliba.env}
SRC=${JOLIBA_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
PREFIX=${JOLIBA_PREFIX:-/opt/joliba}
DATA=/var/lib/joliba
ORTHANC_MIN=1.12.11
QUEUES=(ingest inference alerts)
APT_PACKAGES=(systemd python3 python3-venv gettext npm rsync curl ca-certificates openssl
  postgresql rabbitmq-server nginx
  orthanc orthanc-dicomweb orthanc-gdcm orthanc-postgresql kannel)

log() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

# systemd runs this machine (not a chroot, not a container build).
have_systemd() { [ -d /run/systemd/system ]; }

# A value of the environment file, parsed as systemd's EnvironmentFile= does (KEY=VALUE lines).
envget() {
  python3 - "$ENV_FILE" "$1" <<'PY'
import sys
path, name = sys.argv[1], sys.argv[2]
for line in open(path, encoding="utf-8"):
    line = line.strip()
    if line and not line.startswith("#") and "=" in line:
        key, value = line.split("=", 1)
        if key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            print(value)
            break
PY
}

version_at_least() {  # version_at_least HAVE WANT
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

# --- Checks before anything changes -------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "run as root"
# shellcheck disable=SC1091
. /etc/os-release
if [ "${VERSION_CODENAME:-}" != bookworm ]; then
  log "warning: written for Debian 12 (bookworm), this is ${PRETTY_NAME:-unknown}"
fi
[ -f "$SRC/manage.py" ] && [ -f "$SRC/deploy/joliba.env.example" ] || die "JOLIBA_SRC=$SRC is not a Joliba checkout"
if [ ! -f "$ENV_FILE" ]; then
  install -d -m 0750 "$(dirname "$ENV_FILE")"
  install -m 0600 "$SRC/deploy/joliba.env.example" "$ENV_FILE"
  die "wrote $ENV_FILE from the example: replace every CHANGE_ME, then run this again"
fi
if grep -q '^[^#]*CHANGE_ME' "$ENV_FILE"; then
  die "$ENV_FILE still has placeholders: $(grep -o '^[A-Z_]*=[^#]*CHANGE_ME' "$ENV_FILE" | cut -d= -f1 | tr '\n' ' ')"
fi
# --- Debian packages ------------------------------------------------------------------------------
if [ "${JOLIBA_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # In a chroot or image nothing may start during the installation (policy-rc.d says no).
    if ! have_systemd && [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

[ "$(envget JOLIBA_ENV)" = production ] || die "$ENV_FILE must set JOLIBA_ENV=production"

# --- Orthanc's version ---------------------------------------------------------------------------
ORTHANC_BIN=${ORTHANC_BINARY:-/usr/sbin/Orthanc}
[ -x "$ORTHANC_BIN" ] || die "no Orthanc binary at $ORTHANC_BIN"
orthanc_version=$("$ORTHANC_BIN" --version 2>/dev/null | head -n1 | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1 || true)
[ -n "$orthanc_version" ] || die "cannot read the version of $ORTHANC_BIN"
if ! version_at_least "$orthanc_version" "$ORTHANC_MIN"; then
  if [ "${JOLIBA_ALLOW_OLD_ORTHANC:-0}" = 1 ]; then
    log "WARNING: Orthanc $orthanc_version < $ORTHANC_MIN: not for production (JOLIBA_ALLOW_OLD_ORTHANC=1)"
  else
    die "Orthanc $orthanc_version at $ORTHANC_BIN; production needs >= $ORTHANC_MIN: set ORTHANC_BINARY to the Orthanc Team's build (docs/deployment.md)"
  fi
fi
log "Orthanc $orthanc_version ($ORTHANC_BIN)"

# --- User, folders, code, venv -------------------------------------------------------------------
id joliba >/dev/null 2>&1 || useradd --system --home-dir "$DATA" --shell /usr/sbin/nologin joliba
install -d -m 0750 -o joliba -g joliba "$DATA"
install -d -m 0755 /etc/joliba
chown root:joliba "$ENV_FILE" && chmod 0640 "$ENV_FILE"
if [ "$(readlink -f "$SRC")" != "$(readlink -f "$PREFIX")" ]; then
  # Build outputs (venv, node_modules, bundled static files, egg-info) stay: the stamps know them.
  rsync -a --delete --exclude .git --exclude /.venv --exclude /.venv-keras --exclude /var \
    --exclude /node_modules --exclude __pycache__ --exclude /test-artifacts --exclude '*_cache' \
    --exclude '*.egg-info' --exclude /platform/uploads/static/uploads/vendor \
    --exclude /platform/viewer/static/viewer/viewer.min.js "$SRC/" "$PREFIX/"
fi
chown -R root:root "$PREFIX"
[ -x "$PREFIX/.venv/bin/python" ] || python3 -m venv "$PREFIX/.venv"
# Reinstalled when pyproject.toml changes, rebuilt when package-lock.json does (stamps).
stamp="$PREFIX/.venv/.installed-$(sha256sum "$PREFIX/pyproject.toml" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  "$PREFIX/.venv/bin/pip" install -q --upgrade pip
  "$PREFIX/.venv/bin/pip" install -q -e "${PREFIX}[ai]"
  rm -f "$PREFIX"/.venv/.installed-* && touch "$stamp"
fi
static_stamp="$PREFIX/.venv/.static-$(cat "$PREFIX/package-lock.json" "$PREFIX"/platform/viewer/js/*.js | sha256sum | cut -c1-16)"
if [ ! -f "$static_stamp" ]; then
  (cd "$PREFIX" && sh scripts/build_static.sh >/dev/null)
  rm -f "$PREFIX"/.venv/.static-* && touch "$static_stamp"
fi

# joliba-manage: manage.py as the joliba user with the environment file (also for the admin:
# `joliba-manage createsuperuser`).
install -d /usr/local/lib/joliba
cat > /usr/local/lib/joliba/manage.py <<EOF
import os, runpy, sys
for line in open("$ENV_FILE", encoding="utf-8"):
    line = line.strip()
    if line and not line.startswith("#") and "=" in line:
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        os.environ[key.strip()] = value
os.chdir("$PREFIX")
sys.argv = ["manage.py", *sys.argv[1:]]
runpy.run_path("$PREFIX/manage.py", run_name="__main__")
EOF
printf '#!/bin/sh\nexec runuser -u joliba -- %s/.venv/bin/python /usr/local/lib/joliba/manage.py "$@"\n' "$PREFIX" \
  > /usr/local/sbin/joliba-manage
chmod 0755 /usr/local/sbin/joliba-manage
if [ "$PREPARE_ONLY" = 1 ]; then
  log "prepared (packages, code, venv, static files); run install.sh without --prepare to finish"
  exit 0
fi

# --- Services that must run for the next steps ---------------------------------------------------
start_now() {  # start_now UNIT: with systemd, or the package's own way in a chroot
  if have_systemd; then systemctl enable --now "$1"; return; fi
  case "$1" in
    postgresql) pg_lsclusters -h | while read -r version cluster _; do pg_ctlcluster "$version" "$cluster" start 2>/dev/null || true; done ;;
    rabbitmq-server)
      if ! rabbitmqctl -q status >/dev/null 2>&1; then
        rabbitmq-server -detached
        for _ in $(seq 60); do rabbitmqctl -q status >/dev/null 2>&1 && break; sleep 2; done
        rabbitmqctl -q await_startup --timeout 120
      fi ;;
  esac
}

# --- PostgreSQL: the platform's and Orthanc's databases --------------------------------------------
start_now postgresql
psql_admin() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtA "$@"; }
ensure_db() {  # ensure_db NAME PASSWORD: role and database NAME, owned by it, password set
  local name=$1 password=$2
  psql_admin -v name="$name" -v pw="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'name')\gexec
ALTER ROLE :"name" PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'name')\gexec
SQL
}
ensure_db joliba "$(envget POSTGRES_JOLIBA_PASSWORD)"
# Debian's cluster takes the next free port when 5432 is taken: DATABASE_URL must say the same.
pg_port=$(pg_lsclusters -h | awk 'NR == 1 {print $3}')
case "$(envget DATABASE_URL)" in
  *"@127.0.0.1:$pg_port/"* | *"@localhost:$pg_port/"*) ;;
  *) die "PostgreSQL listens on port $pg_port here: DATABASE_URL in $ENV_FILE must be postgres://joliba:...@127.0.0.1:$pg_port/joliba" ;;
esac
ensure_db orthanc "$(envget POSTGRES_ORTHANC_PASSWORD)"

# --- RabbitMQ: vhost and account (quorum queues are declared by the platform) ----------------------
start_now rabbitmq-server
rabbit_pw=$(envget RABBITMQ_PASSWORD)
rabbitmqctl -q list_vhosts | grep -qx joliba || rabbitmqctl -q add_vhost joliba
if rabbitmqctl -q list_users | cut -f1 | grep -qx joliba; then
  rabbitmqctl -q change_password joliba "$rabbit_pw"
else
  rabbitmqctl -q add_user joliba "$rabbit_pw"
fi
rabbitmqctl -q set_permissions -p joliba joliba '.*' '.*' '.*'
rabbitmqctl -q list_users | cut -f1 | grep -qx guest && rabbitmqctl -q delete_user guest

# --- The platform: translations, migrations, static files ---------------------------------------
(cd "$PREFIX" && "$PREFIX/.venv/bin/python" manage.py compilemessages --ignore=.venv -v0)
/usr/local/sbin/joliba-manage migrate --noinput -v0
install -d -m 0750 -o joliba -g joliba "$DATA/static"
/usr/local/sbin/joliba-manage collectstatic --noinput -v0
/usr/local/sbin/joliba-manage check --deploy --fail-level ERROR

# --- Orthanc: the platform's configuration plus the PostgreSQL index -------------------------------
install -d -m 0750 -o root -g orthanc /etc/joliba/orthanc
"$PREFIX/.venv/bin/python" - "$PREFIX/deploy/orthanc/orthanc.json" /etc/joliba/orthanc "$pg_port" <<'PY'
import json, sys
from pathlib import Path
config = json.loads(Path(sys.argv[1]).read_text())
index = "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so"
if index not in config["Plugins"]:
    config["Plugins"].append(index)
out = Path(sys.argv[2])
(out / "orthanc.json").write_text(json.dumps(config, indent=2) + "\n")
postgresql = {"PostgreSQL": {
    "EnableIndex": True, "EnableStorage": False, "Host": "127.0.0.1", "Port": int(sys.argv[3]),
    "Database": "orthanc", "Username": "orthanc", "Password": "${POSTGRES_ORTHANC_PASSWORD}",
    "Lock": False, "EnableSsl": False,
}}
(out / "postgresql.json").write_text(json.dumps(postgresql, indent=2) + "\n")
PY
umask 027
printf 'ORTHANC_PASSWORD=%s\nPOSTGRES_ORTHANC_PASSWORD=%s\n' \
  "$(envget ORTHANC_PASSWORD)" "$(envget POSTGRES_ORTHANC_PASSWORD)" > /etc/joliba/orthanc.env
umask 022
chown root:orthanc /etc/joliba/orthanc.env /etc/joliba/orthanc/*.json
chmod 0640 /etc/joliba/orthanc.env /etc/joliba/orthanc/*.json
install -d -m 0750 -o orthanc -g orthanc /var/lib/orthanc /var/log/orthanc
ln -sfn "$ORTHANC_BIN" /usr/local/sbin/joliba-orthanc
# Debian's own unit would start a second Orthanc on /etc/orthanc.
if have_systemd; then systemctl disable --now orthanc.service 2>/dev/null || true; fi
systemctl mask orthanc.service >/dev/null 2>&1 || true

# --- Kannel: the platform's configuration, kept once edited ------------------------------------------
if [ -d /etc/kannel ] && ! grep -q 'Joliba' /etc/kannel/kannel.conf 2>/dev/null; then
  [ -f /etc/kannel/kannel.conf ] && cp -n /etc/kannel/kannel.conf /etc/kannel/kannel.conf.debian
  # Debian's kannel user has no group of its own (nogroup): owner kannel, group root.
  install -m 0640 -o kannel -g root "$PREFIX/deploy/kannel/kannel.conf" /etc/kannel/kannel.conf
fi
if grep -q 'CHANGE_ME\|JOLIBA_URL' /etc/kannel/kannel.conf 2>/dev/null; then
  log "warning: /etc/kannel/kannel.conf still has placeholders (modem, passwords, JOLIBA_URL): edit it, then systemctl restart kannel"
fi

# --- nginx: TLS in front, the upload endpoint unbuffered -------------------------------------------
domain=$(envget JOLIBA_DOMAIN)
[ -n "$domain" ] || die "$ENV_FILE must set JOLIBA_DOMAIN"
install -d -m 0750 /etc/joliba/tls
if [ ! -f /etc/joliba/tls/fullchain.pem ] || [ ! -f /etc/joliba/tls/privkey.pem ]; then
  log "warning: no certificate in /etc/joliba/tls: a self-signed one for $domain until you put yours there"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$domain" \
    -keyout /etc/joliba/tls/privkey.pem -out /etc/joliba/tls/fullchain.pem 2>/dev/null
  chmod 0640 /etc/joliba/tls/privkey.pem
fi
sed -e "s|\${JOLIBA_DOMAIN}|$domain|g" -e 's|server web:8000;|server 127.0.0.1:8000;|' \
  -e 's|/etc/nginx/tls/|/etc/joliba/tls/|g' "$PREFIX/deploy/nginx/joliba.conf" > /etc/nginx/sites-available/joliba
ln -sfn /etc/nginx/sites-available/joliba /etc/nginx/sites-enabled/joliba
rm -f /etc/nginx/sites-enabled/default
nginx -t -q

# --- systemd units -------------------------------------------------------------------------------
install -m 0644 "$PREFIX"/deploy/systemd/*.service /etc/systemd/system/
units=(joliba-orthanc.service joliba-web.service joliba-beat.service joliba-flower.service)
for q in "${QUEUES[@]}"; do units+=("joliba-worker@$q.service"); done
[ -f "/etc/joliba/worker-alerts.env" ] || printf 'QUEUES=alerts,celery\n' > /etc/joliba/worker-alerts.env
[ -f "/etc/joliba/worker-inference.env" ] || printf 'CONCURRENCY=1\n' > /etc/joliba/worker-inference.env
if have_systemd; then systemctl daemon-reload; fi
systemctl enable "${units[@]}" nginx.service postgresql.service rabbitmq-server.service >/dev/null
if have_systemd && [ "${JOLIBA_NO_START:-0}" != 1 ]; then
  systemctl restart "${units[@]}"
  systemctl reload-or-restart nginx.service
  log "started: ${units[*]} nginx"
  log "next: joliba-manage createsuperuser; then https://$domain/"
else
  log "configured and enabled, not started (no systemd here or JOLIBA_NO_START=1)"
fi

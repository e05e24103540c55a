#!/bin/bash
# First start of the PostgreSQL container only (docker-entrypoint-initdb.d): the platform's and
# Orthanc's index databases, each owned by its own role.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" \
  -v joliba_pw="$POSTGRES_JOLIBA_PASSWORD" -v orthanc_pw="$POSTGRES_ORTHANC_PASSWORD" <<'SQL'
CREATE ROLE joliba LOGIN PASSWORD :'joliba_pw';
CREATE DATABASE joliba OWNER joliba;
CREATE ROLE orthanc LOGIN PASSWORD :'orthanc_pw';
CREATE DATABASE orthanc OWNER orthanc;
SQL

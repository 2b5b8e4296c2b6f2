#!/bin/sh
# Runs once, after 10-roles.sql, when the db container initialises an empty data volume: gives the two login roles
# the passwords the deployment's environment sets (CANVASS_SVC_DB_PASSWORD, CANVASS_GEO_DB_PASSWORD), passed to psql
# as variables so that no password is written in a file. To change one later: ALTER ROLE, then the URL that uses it.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v svc_password="$CANVASS_SVC_DB_PASSWORD" -v geo_password="$CANVASS_GEO_DB_PASSWORD" <<'SQL'
ALTER ROLE canvass_svc PASSWORD :'svc_password';
ALTER ROLE canvass_geo PASSWORD :'geo_password';
SQL

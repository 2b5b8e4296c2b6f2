-- Runs once, when the db container initialises an empty data volume (as POSTGRES_USER, in POSTGRES_DB).
-- Creates the read-only role used by geo_query and the runtime role the services connect as; table privileges are
-- granted by the migrations. Their passwords are not here: 20-role-passwords.sh sets them from the environment.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'canvass_read') THEN
        CREATE ROLE canvass_read NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'canvass_geo') THEN
        CREATE ROLE canvass_geo LOGIN IN ROLE canvass_read;
    ELSE
        GRANT canvass_read TO canvass_geo;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'canvass_app') THEN
        CREATE ROLE canvass_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'canvass_svc') THEN
        CREATE ROLE canvass_svc LOGIN IN ROLE canvass_app;
    ELSE
        GRANT canvass_app TO canvass_svc;
    END IF;
END
$$;

CREATE EXTENSION IF NOT EXISTS postgis;

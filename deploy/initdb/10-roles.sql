-- Runs once, when the db container initialises an empty data volume (as POSTGRES_USER, in POSTGRES_DB).
-- Creates the read-only role used by geo_query and the runtime role the services connect as; table privileges are
-- granted by the migrations. Change the canvass_geo and canvass_svc passwords for a real deployment (ALTER ROLE)
-- together with GEO_QUERY_DATABASE_URL and DATABASE_URL.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'canvass_read') THEN
        CREATE ROLE canvass_read NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'canvass_geo') THEN
        CREATE ROLE canvass_geo LOGIN PASSWORD 'canvass_geo' IN ROLE canvass_read;
    ELSE
        GRANT canvass_read TO canvass_geo;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'canvass_app') THEN
        CREATE ROLE canvass_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'canvass_svc') THEN
        CREATE ROLE canvass_svc LOGIN PASSWORD 'canvass_svc' IN ROLE canvass_app;
    ELSE
        GRANT canvass_app TO canvass_svc;
    END IF;
END
$$;

CREATE EXTENSION IF NOT EXISTS postgis;

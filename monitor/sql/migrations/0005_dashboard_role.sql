-- jiancha schema, version 5: read-only access for dashboards (Grafana's PostgreSQL
-- datasource). The role cannot log in; the operator grants it to Grafana's login role:
--   CREATE ROLE grafana LOGIN PASSWORD '...' IN ROLE jiancha_dashboard;
-- Roles belong to the whole server: the role may exist already (another database).
-- Creating one needs CREATEROLE; without it this says so and leaves it to the
-- operator (README, "Database roles"), and the schema is migrated all the same.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jiancha_dashboard') THEN
        BEGIN
            CREATE ROLE jiancha_dashboard NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created concurrently from another database
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'role jiancha_dashboard not created (no CREATEROLE); see README';
                RETURN;
        END;
    END IF;
    GRANT USAGE ON SCHEMA jiancha TO jiancha_dashboard;
    GRANT SELECT ON ALL TABLES IN SCHEMA jiancha TO jiancha_dashboard;
    -- tables later migrations add (they run as the same owner)
    ALTER DEFAULT PRIVILEGES IN SCHEMA jiancha GRANT SELECT ON TABLES TO jiancha_dashboard;
END;
$$;

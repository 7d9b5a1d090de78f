-- The ledger of applied migrations of schema jiancha. `jiancha db migrate`
-- creates it (under its advisory lock) before the first migration, so it is
-- not itself a migration. Keep it equal to its copy in schema.sql.

CREATE SCHEMA IF NOT EXISTS jiancha;

CREATE TABLE IF NOT EXISTS jiancha.schema_migrations (
    version     integer PRIMARY KEY,                -- NNNN of NNNN_name.sql
    name        text NOT NULL,                      -- name of NNNN_name.sql
    checksum    text NOT NULL,                      -- sha256 of the file (LF line ends)
    applied_at  timestamptz NOT NULL DEFAULT now()
);

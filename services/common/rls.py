"""Tenant isolation in PostgreSQL: tenant_id columns, per-tenant keys, roles and policies.

Every tenant table carries `tenant_id` and has row-level security ENABLEd and FORCEd
with one policy: a row is visible and writable only while `ragchat.tenant` (set per
transaction by `services.common.db.Pool`) names its tenant. Unset, nothing is visible.
The services act as APP_ROLE, which owns nothing; upkeep that spans tenants (purges,
the stale-job sweep) switches explicitly to MAINTENANCE_ROLE, which APP_ROLE may SET
but does not inherit. The migration runs as the tables' owner.
"""

from __future__ import annotations

from typing import LiteralString

from psycopg import sql

APP_ROLE = "ragchat_app"
MAINTENANCE_ROLE = "ragchat_maintenance"
TENANT_SETTING = "ragchat.tenant"

# Parents first: the bm25 tables are created by pg_bm25.SCHEMA with tenant_id already.
TENANT_TABLES = (
    "documents", "jobs", "chunks", "sessions", "turns", "document_versions",
    "idempotency_keys", "request_log",
)
RLS_TABLES = (*TENANT_TABLES, "bm25_postings", "bm25_corpus")

# Rows written before tenants existed belong to 'default'. New rows take the
# transaction's tenant (what the policy checks); the owner, outside any tenant, 'default'.
TENANT_COLUMNS: LiteralString = """
DO $$ DECLARE t text; BEGIN
    FOREACH t IN ARRAY string_to_array({tables}, ',') LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(t)
                       AND attname = 'tenant_id' AND NOT attisdropped) THEN
            EXECUTE format('ALTER TABLE %I ADD COLUMN tenant_id text NOT NULL'
                           ' DEFAULT %L', t, 'default');
            EXECUTE format('ALTER TABLE %I ALTER COLUMN tenant_id SET DEFAULT'
                           ' coalesce(nullif(current_setting(%L, true), %L), %L)',
                           t, 'ragchat.tenant', '', 'default');
        END IF;
    END LOOP;
END $$;
-- Keys that were global become per tenant: one tenant's key never blocks another's.
DROP INDEX IF EXISTS documents_document_key_idx;
CREATE UNIQUE INDEX IF NOT EXISTS documents_tenant_document_key_idx
    ON documents (tenant_id, document_key);
CREATE INDEX IF NOT EXISTS documents_tenant_created_idx
    ON documents (tenant_id, created_at, document_id);
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
                   AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'idempotency_keys'::regclass
                   AND i.indisprimary AND a.attname = 'tenant_id') THEN
        ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey,
            ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (tenant_id, request_id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
                   AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'request_log'::regclass
                   AND i.indisprimary AND a.attname = 'tenant_id') THEN
        ALTER TABLE request_log DROP CONSTRAINT request_log_pkey,
            ADD CONSTRAINT request_log_pkey PRIMARY KEY (tenant_id, method, request_id);
    END IF;
END $$;
"""

# Roles are cluster-wide: another database on the same server may have made them.
ROLES: LiteralString = """
DO $$ DECLARE r text; BEGIN
    FOREACH r IN ARRAY ARRAY['ragchat_app', 'ragchat_maintenance'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END;
        END IF;
    END LOOP;
    IF NOT pg_has_role('ragchat_app', 'ragchat_maintenance', 'SET') THEN
        -- SET but not INHERIT: the app sees every tenant only after SET LOCAL ROLE.
        GRANT ragchat_maintenance TO ragchat_app WITH INHERIT FALSE;
    END IF;
    IF NOT pg_has_role(current_user, 'ragchat_app', 'SET') THEN
        BEGIN  -- services that log in as the owner (one RDS secret) SET ROLE ragchat_app
            EXECUTE format('GRANT ragchat_app TO %I WITH INHERIT FALSE, SET TRUE',
                           current_user);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'could not grant ragchat_app to %', current_user;
        END;
    END IF;
    IF NOT pg_has_role(current_user, 'ragchat_maintenance', 'USAGE') THEN
        BEGIN  -- the owner (when not a superuser) backfills across tenants
            EXECUTE format('GRANT ragchat_maintenance TO %I', current_user);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'could not grant ragchat_maintenance to %', current_user;
        END;
    END IF;
END $$;
GRANT USAGE ON SCHEMA public TO ragchat_app, ragchat_maintenance;
"""

# TRUNCATE is never granted: it ignores row-level security.
POLICIES: LiteralString = """
DO $$ DECLARE t text; BEGIN
    FOREACH t IN ARRAY string_to_array({tables}, ',') LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO ragchat_app,'
                       ' ragchat_maintenance', t);
        IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE tablename = t
                       AND policyname = 'tenant_isolation') THEN
            EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
            EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
            EXECUTE format('CREATE POLICY tenant_isolation ON %I'
                           ' USING (tenant_id = current_setting(%L, true))'
                           ' WITH CHECK (tenant_id = current_setting(%L, true))',
                           t, 'ragchat.tenant', 'ragchat.tenant');
            EXECUTE format('CREATE POLICY maintenance ON %I TO ragchat_maintenance'
                           ' USING (true) WITH CHECK (true)', t);
        END IF;
    END LOOP;
END $$;
"""


def statements() -> tuple[sql.Composed, sql.Composed, sql.Composed]:
    """Tenant columns and keys, roles, then policies (run after pg_bm25's schema)."""
    tenant = sql.Literal(",".join(TENANT_TABLES))
    every = sql.Literal(",".join(RLS_TABLES))
    return (sql.SQL(TENANT_COLUMNS).format(tables=tenant), sql.SQL(ROLES).format(),
            sql.SQL(POLICIES).format(tables=every))


def policies_for(tables: list[str]) -> sql.Composed:
    """Grants and the tenant policies for tables added later (index generations)."""
    return sql.SQL(POLICIES).format(tables=sql.Literal(",".join(tables)))

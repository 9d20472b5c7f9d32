-- The parts of the Debian Janitor's production schema that scheduling touches
-- (shared/spec/janitor-schema.md), for test databases and restored snapshots.
-- The debversion type is installed separately (harness.pgschema.install_debversion)
-- and all_debian_versions, which production no longer creates, is optional.

CREATE DOMAIN codebase_name AS text CHECK (VALUE SIMILAR TO '[a-z0-9][a-z0-9+-.]+');
CREATE DOMAIN suite_name AS text CHECK (VALUE SIMILAR TO '[a-z0-9][a-z0-9+-.]+');
CREATE DOMAIN campaign_name AS text CHECK (VALUE SIMILAR TO '[a-z0-9][a-z0-9+-.]+');

CREATE TYPE vcs_type AS ENUM ('bzr', 'git', 'svn', 'mtn', 'hg', 'arch', 'cvs', 'darcs');
CREATE TYPE publish_mode AS ENUM (
    'push', 'attempt-push', 'propose', 'build-only', 'push-derived', 'skip', 'bts');
-- Declared order is sort order: workers take ORDER BY bucket, priority, id.
CREATE TYPE queue_bucket AS ENUM (
    'update-existing-mp', 'manual', 'control', 'hook', 'reschedule', 'update-new-mp',
    'missing-deps', 'default');
CREATE TYPE change_set_state AS ENUM ('created', 'working', 'ready', 'publishing', 'done');
CREATE TYPE publish_status AS ENUM (
    'unknown', 'blocked', 'needs-manual-review', 'rejected', 'approved', 'ignored');

CREATE TABLE codebase (
    name codebase_name UNIQUE,
    branch_url text,
    url text,
    branch text,
    subpath text,
    vcs_last_revision text,
    last_scanned timestamp,
    web_url text,
    vcs_type vcs_type,
    value integer,
    inactive boolean NOT NULL DEFAULT false,
    hostname text GENERATED ALWAYS AS (
        substring(branch_url FROM '^[A-Za-z0-9+.-]+://(?:[^/@]*@)?([^/:]+)')
    ) STORED,
    UNIQUE (branch_url, subpath),
    CHECK (name IS NOT NULL OR branch_url IS NOT NULL),
    -- branch_url is deprecated but still constrained: a row sets both or neither.
    CHECK ((branch_url IS NULL) = (url IS NULL))
);

CREATE TABLE change_set (
    id text PRIMARY KEY,
    campaign campaign_name NOT NULL,
    state change_set_state NOT NULL DEFAULT 'created'
);

-- A table whose row type is the element type of named_publish_policy.per_branch_policy.
CREATE TABLE branch_publish_policy (
    role text NOT NULL UNIQUE,
    mode publish_mode DEFAULT 'build-only',
    frequency_days integer
);

CREATE TABLE named_publish_policy (
    name text PRIMARY KEY,
    per_branch_policy branch_publish_policy[],
    rate_limit_bucket text
);

CREATE TABLE candidate (
    id serial PRIMARY KEY,
    codebase text NOT NULL REFERENCES codebase (name) ON DELETE CASCADE,
    suite suite_name NOT NULL,
    context text,
    value integer CHECK (value > 0),
    success_chance double precision,
    command text NOT NULL CHECK (command != ''),
    publish_policy text REFERENCES named_publish_policy (name),
    change_set text REFERENCES change_set (id)
);
CREATE UNIQUE INDEX candidate_codebase_suite_set
    ON candidate (codebase, suite, coalesce(change_set, ''));

CREATE TABLE run (
    id text PRIMARY KEY,
    command text,
    description text,
    start_time timestamp,
    finish_time timestamp,
    duration interval GENERATED ALWAYS AS (finish_time - start_time) STORED,
    result_code text NOT NULL,
    instigated_context text,
    context text,
    suite suite_name NOT NULL,
    failure_details json,
    failure_transient boolean,
    failure_stage text,
    resume_from text REFERENCES run (id),
    change_set text NOT NULL REFERENCES change_set (id),
    codebase text NOT NULL REFERENCES codebase (name),
    logfilenames text[] NOT NULL,
    publish_status publish_status NOT NULL DEFAULT 'unknown',
    value integer,
    worker text,
    CHECK (finish_time >= start_time),
    CHECK (result_code != 'nothing-new-to-do' OR resume_from IS NOT NULL)
);
CREATE INDEX run_codebase_suite_start_time_idx ON run (codebase, suite, start_time DESC);
CREATE INDEX run_suite_start_time_idx ON run (suite, start_time);
CREATE INDEX run_start_time_idx ON run (start_time);

CREATE TABLE queue (
    id serial PRIMARY KEY,
    bucket queue_bucket NOT NULL DEFAULT 'default',
    codebase text NOT NULL REFERENCES codebase (name) ON DELETE CASCADE,
    branch_url text,
    suite suite_name NOT NULL,
    command text CHECK (command != ''),
    priority bigint NOT NULL DEFAULT 0,
    context text,
    estimated_duration interval,
    refresh boolean DEFAULT false,
    requester text,
    change_set text REFERENCES change_set (id)
);
CREATE UNIQUE INDEX queue_codebase_suite_set ON queue (codebase, suite, coalesce(change_set, ''));
CREATE INDEX queue_priority_id_idx ON queue (priority, id);
CREATE INDEX queue_bucket_priority_id_idx ON queue (bucket, priority, id);

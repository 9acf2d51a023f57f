-- Tables of the PostgreSQL sink. Every event table is keyed by the event's
-- event_id, so a redelivered event inserts nothing. kafka_* columns say where
-- the event was read; produced_at is when the processor emitted it (the Kafka
-- record timestamp); written_at is when this sink committed it. source_file
-- and source_line name the billing file line that caused the event.

-- Every eligibility change, as emitted.
CREATE TABLE eligibility_history (
    event_id        text PRIMARY KEY,
    utility         text NOT NULL,
    customer_id     text NOT NULL,
    premise_id      text NOT NULL,
    secondary_id    text,
    program         text NOT NULL,
    eligible        boolean NOT NULL,
    reason_codes    text[] NOT NULL,           -- the codes of reasons, for easy filtering
    reasons         jsonb NOT NULL,            -- code, rule, service_point_id, effective_date, until, source
    since           date,                      -- earliest effective_date of the reasons; null when eligible
    source_file     text,
    source_line     bigint,
    cause           jsonb NOT NULL,
    kafka_topic     text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    produced_at     timestamptz NOT NULL,
    written_at      timestamptz NOT NULL DEFAULT now()
);
-- Few, narrow indexes: each one costs every insert. BRIN suits produced_at,
-- which grows with insertion order, at a fraction of a btree's upkeep.
CREATE INDEX eligibility_history_customer ON eligibility_history (customer_id);
CREATE INDEX eligibility_history_produced_at ON eligibility_history USING brin (produced_at);

-- The current eligibility of each (customer, premise, program): the latest
-- event of the subject. status_since is when eligible last took its present
-- value (produced_at of the event that changed it; kept while only the
-- reasons change).
CREATE TABLE eligibility_current (
    customer_id     text NOT NULL,
    premise_id      text NOT NULL,
    program         text NOT NULL,
    utility         text NOT NULL,
    secondary_id    text,
    eligible        boolean NOT NULL,
    reason_codes    text[] NOT NULL,
    reasons         jsonb NOT NULL,
    since           date,
    status_since    timestamptz NOT NULL,
    event_id        text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, premise_id, program)
);

-- Usage corrections (U4 exact, U5 overlapping overwrites).
CREATE TABLE corrections (
    event_id         text PRIMARY KEY,
    utility          text NOT NULL,
    service_point_id text NOT NULL,
    kind             text NOT NULL,
    rule             text NOT NULL,
    date_to          date NOT NULL,
    duration         integer NOT NULL,
    old_value        double precision NOT NULL,
    new_value        double precision NOT NULL,
    old_charge       double precision,
    new_charge       double precision,
    new_date_to      date NOT NULL,
    new_duration     integer NOT NULL,
    source_file      text,
    source_line      bigint,
    cause            jsonb NOT NULL,
    kafka_topic      text NOT NULL,
    kafka_partition  integer NOT NULL,
    kafka_offset     bigint NOT NULL,
    produced_at      timestamptz NOT NULL,
    written_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX corrections_service_point ON corrections (service_point_id);

-- Account events (ACTIVATED, SUPERSEDED, TERMINATED, ...).
CREATE TABLE account_events (
    event_id         text PRIMARY KEY,
    utility          text NOT NULL,
    service_point_id text NOT NULL,
    account_id       text NOT NULL,
    customer_id      text NOT NULL,
    premise_id       text NOT NULL,
    secondary_id     text,
    type             text NOT NULL,
    rule             text NOT NULL,
    date             date NOT NULL,
    detail           text,
    source_file      text,
    source_line      bigint,
    cause            jsonb NOT NULL,
    kafka_topic      text NOT NULL,
    kafka_partition  integer NOT NULL,
    kafka_offset     bigint NOT NULL,
    produced_at      timestamptz NOT NULL,
    written_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_events_customer ON account_events (customer_id);
CREATE INDEX account_events_service_point ON account_events (service_point_id);

-- Anomalies, raised and cleared (cleared = true when a condition ends).
CREATE TABLE anomalies (
    event_id         text PRIMARY KEY,
    utility          text NOT NULL,
    service_point_id text NOT NULL,
    code             text NOT NULL,
    rule             text NOT NULL,
    message          text NOT NULL,
    effective_date   date NOT NULL,
    until            date,
    cleared          boolean NOT NULL,
    account_id       text,
    customer_id      text,
    premise_id       text,
    secondary_id     text,
    source_file      text,
    source_line      bigint,
    cause            jsonb NOT NULL,
    kafka_topic      text NOT NULL,
    kafka_partition  integer NOT NULL,
    kafka_offset     bigint NOT NULL,
    produced_at      timestamptz NOT NULL,
    written_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX anomalies_service_point ON anomalies (service_point_id);

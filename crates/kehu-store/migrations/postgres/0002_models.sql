-- Model registry: versioned scorecards / propensity models, one active version per purpose.
CREATE TABLE models (
    id BIGSERIAL PRIMARY KEY,
    purpose TEXT NOT NULL,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    metrics TEXT NOT NULL,
    model TEXT NOT NULL,
    report TEXT,
    active BOOLEAN NOT NULL DEFAULT false,
    UNIQUE (purpose, version)
);
CREATE UNIQUE INDEX models_one_active ON models (purpose) WHERE active;

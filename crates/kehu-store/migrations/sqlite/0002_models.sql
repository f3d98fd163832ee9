-- Model registry: versioned scorecards / propensity models, one active version per purpose.
CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    purpose TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at TEXT NOT NULL,
    metrics TEXT NOT NULL,
    model TEXT NOT NULL,
    report TEXT,
    active INTEGER NOT NULL DEFAULT 0,
    UNIQUE (purpose, version)
);
CREATE UNIQUE INDEX models_one_active ON models (purpose) WHERE active = 1;

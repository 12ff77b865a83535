-- The platform meters runs from its own record (issue 14). While a job is placed or running it
-- holds an allocation (JSON: model, cards, CPU, memory, rate, contract), and its current run has
-- a start; each run's usage is recorded with the transition that ends it.
ALTER TABLE jobs ADD COLUMN allocation TEXT;
ALTER TABLE jobs ADD COLUMN placed_ms BIGINT;
ALTER TABLE jobs ADD COLUMN started_ms BIGINT;
ALTER TABLE jobs ADD COLUMN runs BIGINT NOT NULL DEFAULT 0;
-- A metered run's price (absent in usage agents reported before).
ALTER TABLE usage_events ADD COLUMN run_ms BIGINT;
ALTER TABLE usage_events ADD COLUMN rate_millifen_per_hour BIGINT;
ALTER TABLE usage_events ADD COLUMN contract TEXT;
-- Agents' own measures of runs: evidence beside the platform's meter, never billed.
CREATE TABLE usage_reports (
    source TEXT NOT NULL,
    event_id TEXT NOT NULL,
    job_id BIGINT NOT NULL,
    pool TEXT NOT NULL,
    accelerator_ms BIGINT NOT NULL,
    digest TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (source, event_id)
);

-- Corrections of interval reads (I2, kind INTERVAL): which interval of which
-- channel was replaced. Null for billing-period corrections (U4, U5).
ALTER TABLE corrections
    ADD COLUMN channel          text,
    ADD COLUMN interval_end     timestamptz,
    ADD COLUMN interval_minutes integer,
    ADD COLUMN old_estimate     boolean,
    ADD COLUMN new_estimate     boolean;

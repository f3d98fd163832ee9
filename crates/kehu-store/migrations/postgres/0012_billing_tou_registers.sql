-- Time-of-use registers on reads (docs/billing.md, "Time-of-use"): the peak, flat and
-- valley registers as read (whole kWh, before the multiplier; all three or none), and the
-- consumption per band after the multiplier when it could be computed (peak and valley
-- from their registers, flat the rest of the total). Nullable: a read without band
-- registers bills its total, and a time-of-use account at the flat price.
ALTER TABLE billing_reads ADD COLUMN peak_value BIGINT;
ALTER TABLE billing_reads ADD COLUMN flat_value BIGINT;
ALTER TABLE billing_reads ADD COLUMN valley_value BIGINT;
ALTER TABLE billing_reads ADD COLUMN peak_kwh BIGINT;
ALTER TABLE billing_reads ADD COLUMN flat_kwh BIGINT;
ALTER TABLE billing_reads ADD COLUMN valley_kwh BIGINT;

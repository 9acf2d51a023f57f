package postgres

// BecameIneligibleOn answers "who became ineligible on day $1 and why": one
// row per reason of each subject whose eligibility changed to ineligible (from
// eligible, or at its first evaluation) in an event the processors emitted
// that day (produced_at, in the session's time zone). The README shows it for
// yesterday; the end-to-end test runs this text.
const BecameIneligibleOn = `SELECT x.customer_id, x.premise_id, x.program, x.produced_at AS became_ineligible_at,
       r->>'code' AS reason, r->>'rule' AS rule, (r->>'effective_date')::date AS since,
       r->>'service_point_id' AS service_point_id, r->'source'->>'file' AS file, (r->'source'->>'line')::bigint AS line
FROM (SELECT h.*, lag(h.eligible) OVER (PARTITION BY h.customer_id, h.premise_id, h.program
                                        ORDER BY h.kafka_partition, h.kafka_offset) AS was_eligible
      FROM eligibility_history h
      WHERE (h.customer_id, h.premise_id, h.program) IN (
            SELECT customer_id, premise_id, program FROM eligibility_history
            WHERE produced_at >= $1::date AND produced_at < $1::date + 1)) x
CROSS JOIN LATERAL jsonb_array_elements(x.reasons) r
WHERE NOT x.eligible AND x.was_eligible IS DISTINCT FROM false
  AND x.produced_at >= $1::date AND x.produced_at < $1::date + 1
ORDER BY x.customer_id, x.premise_id, x.program, x.produced_at, reason`

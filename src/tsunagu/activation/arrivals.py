"""Events stored since a moment, each with the profile it belongs to (by user id, anonymous id,
member card, LINE id or device id), in the columns the funnel steps' conditions read
(`analytics.filters.Step.sql`): what journeys' triggers read (EVENTS); and only the customers of
those events (CUSTOMERS), what segments' incremental refresh reads.
Parameters: the moments after and up to which the events were stored. Needs `tg_clean`
(store.identifiers.normalize_macros) on the cursor.
"""

from __future__ import annotations

_ARRIVED = """
        tg_clean('member_card', json_extract_string(raw, '$.context.traits.member_card')) AS card,
        json_extract_string(raw, '$.context.traits.line_user_id') AS line,
        json_extract_string(raw, '$.context.device.id') AS device
    FROM events WHERE stored_at > ? AND stored_at <= ? AND source <> 'tsunagu'"""

EVENTS = f"""
WITH e AS MATERIALIZED (
    SELECT *, {_ARRIVED}
),
-- Only the nodes of these events' identifiers: the few are looked up, the graph not joined whole.
ids AS MATERIALIZED (
    SELECT type, value, profile_id FROM identity_nodes
    WHERE value IN (SELECT user_id FROM e UNION SELECT anonymous_id FROM e UNION SELECT card FROM e
                    UNION SELECT line FROM e UNION SELECT device FROM e)
)
SELECT e.message_id, e.user_id, e.anonymous_id, e.timestamp AS ts, e.stored_at, coalesce(e.event, e.type) AS event,
       e.channel, e.store_id, json_extract(e.raw, '$.properties') AS properties,
       json_extract_string(e.raw, '$.properties.sku') AS sku,
       json_extract_string(e.raw, '$.properties.category') AS category,
       json_extract_string(e.raw, '$.properties.products[*].sku') AS skus,
       json_extract_string(e.raw, '$.properties.products[*].category') AS categories,
       TRY_CAST(json_extract_string(e.raw, '$.properties.revenue') AS DOUBLE) AS revenue,
       json_extract_string(e.raw, '$.properties.order_id') AS order_id,
       json_extract_string(e.raw, '$.name') AS name,
       TRY_CAST(json_extract_string(e.raw, '$.context.location.latitude') AS DOUBLE) AS lat,
       TRY_CAST(json_extract_string(e.raw, '$.context.location.longitude') AS DOUBLE) AS lon,
       coalesce(u.profile_id, a.profile_id, c.profile_id, l.profile_id, d.profile_id) AS profile_id
FROM e
LEFT JOIN ids u ON u.type = 'user_id' AND u.value = e.user_id
LEFT JOIN ids a ON a.type = 'anonymous_id' AND a.value = e.anonymous_id
LEFT JOIN ids c ON c.type = 'member_card' AND c.value = e.card
LEFT JOIN ids l ON l.type = 'line_user_id' AND l.value = e.line
LEFT JOIN ids d ON d.type = 'device_id' AND d.value = e.device
"""

CUSTOMERS = f"""
WITH e AS MATERIALIZED (SELECT user_id, anonymous_id, {_ARRIVED}),
keys AS MATERIALIZED (
    SELECT DISTINCT * FROM (
        SELECT 'user_id' AS type, user_id AS value FROM e
        UNION ALL SELECT 'anonymous_id', anonymous_id FROM e
        UNION ALL SELECT 'member_card', card FROM e
        UNION ALL SELECT 'line_user_id', line FROM e
        UNION ALL SELECT 'device_id', device FROM e
    ) WHERE value IS NOT NULL
)
SELECT n.profile_id AS customer FROM keys k JOIN identity_nodes n USING (type, value)
UNION SELECT type || ':' || value FROM keys WHERE type IN ('user_id', 'anonymous_id')
"""
"""The customers of the events stored in the range (same parameters as EVENTS): their profiles,
and the names analytics gives customers the graph does not know yet (TYPE:VALUE). Only the
identifiers, so a few arrivals cost milliseconds, not a read of every column."""

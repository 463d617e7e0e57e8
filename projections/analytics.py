"""The analytics contract: versioned SQL views over the read models (schema ``analytics``).

``analytics.v1_*`` keep their names, columns and meaning for as long as v1 exists; a change that
would break a reader becomes ``v2_*`` beside them. Readers should use these views, never the
read-model tables (those change with the code). docs/analytics.md documents every column.

The admin endpoints (``gateway/routes/reports.py``) read the same views, so what an admin sees and
what an analyst queries agree. The views are made again after every ``herald rebuild`` swap.
"""

from __future__ import annotations

VERSION = "v1"

DDL = """
CREATE SCHEMA IF NOT EXISTS analytics;

CREATE OR REPLACE VIEW analytics.v1_workspaces AS
SELECT workspace_id, name, tier, timezone, limits, opened_at FROM workspaces;

CREATE OR REPLACE VIEW analytics.v1_social_accounts AS
SELECT social_account_id, workspace_id, platform, handle, connected_at FROM social_accounts;

CREATE OR REPLACE VIEW analytics.v1_posts AS
SELECT post_id, workspace_id, publish_at, created_at, updated_at, jsonb_array_length(media_urls) AS media_count
  FROM posts;

CREATE OR REPLACE VIEW analytics.v1_destinations AS
SELECT post_id, destination_id, workspace_id, social_account_id, platform, status, attempt, due_at,
       updated_at, reason, platform_post_id, url
  FROM queue_destinations;

CREATE OR REPLACE VIEW analytics.v1_credit_grants AS
SELECT workspace_id, grant_id, amount, remaining, source, expires_at, granted_at FROM wallet_grants;

CREATE OR REPLACE VIEW analytics.v1_credit_holds AS
SELECT workspace_id, hold_id, post_id, destination_id, amount, status, placed_at, settled_at, reason
  FROM wallet_holds;

CREATE OR REPLACE VIEW analytics.v1_wallet_balances AS
SELECT workspace_id, granted, held, available FROM wallet_balances;

CREATE OR REPLACE VIEW analytics.v1_rejections AS
SELECT workspace_id, command_id, command_type, reason_code, detail, issued_by, rejected_at FROM command_rejections;

-- Credits moved per UTC day, workspace tier and platform (granted and expired credits have no platform).
CREATE OR REPLACE VIEW analytics.v1_credits_daily AS
WITH moves AS (
    SELECT g.granted_at AS at, g.workspace_id, NULL::text AS platform,
           g.amount AS granted, 0 AS consumed, 0 AS released, 0 AS expired
      FROM wallet_grants g
    UNION ALL
    SELECT h.settled_at, h.workspace_id, d.platform, 0,
           CASE WHEN h.status = 'consumed' THEN h.amount ELSE 0 END,
           CASE WHEN h.status = 'released' THEN h.amount ELSE 0 END, 0
      FROM wallet_holds h
      LEFT JOIN queue_destinations d ON d.post_id = h.post_id AND d.destination_id = h.destination_id
     WHERE h.status IN ('consumed', 'released')
    UNION ALL
    SELECT x.expired_at, x.workspace_id, NULL::text, 0, 0, 0, x.amount
      FROM wallet_expiries x
)
SELECT (m.at AT TIME ZONE 'UTC')::date AS day, COALESCE(w.tier, 'unknown') AS tier, m.platform,
       sum(m.granted)::bigint AS granted, sum(m.consumed)::bigint AS consumed, sum(m.released)::bigint AS released,
       sum(m.expired)::bigint AS expired
  FROM moves m LEFT JOIN workspaces w ON w.workspace_id = m.workspace_id
 GROUP BY 1, 2, 3;

-- Credits per workspace and UTC day, for "top workspaces".
CREATE OR REPLACE VIEW analytics.v1_credits_by_workspace_daily AS
SELECT (h.settled_at AT TIME ZONE 'UTC')::date AS day, h.workspace_id,
       sum(h.amount) FILTER (WHERE h.status = 'consumed')::bigint AS consumed,
       sum(h.amount) FILTER (WHERE h.status = 'released')::bigint AS released
  FROM wallet_holds h
 WHERE h.status IN ('consumed', 'released')
 GROUP BY 1, 2;

-- Destinations that ended per UTC day (of their last outcome), platform and tier; lateness is the
-- time from the due time of the attempt that published to the recorded outcome.
CREATE OR REPLACE VIEW analytics.v1_publishing_daily AS
SELECT (d.updated_at AT TIME ZONE 'UTC')::date AS day, d.platform, COALESCE(w.tier, 'unknown') AS tier,
       count(*) FILTER (WHERE d.status = 'published') AS published,
       count(*) FILTER (WHERE d.status = 'failed') AS failed,
       count(*) FILTER (WHERE d.status = 'skipped') AS skipped,
       count(*) FILTER (WHERE d.status = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE d.status = 'published' AND d.attempt > 1) AS published_after_retry,
       count(*) FILTER (WHERE d.attempt > 1) AS retried,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.updated_at - d.due_at))
             FILTER (WHERE d.status = 'published')::numeric, 3) AS lateness_p50_s,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM d.updated_at - d.due_at))
             FILTER (WHERE d.status = 'published')::numeric, 3) AS lateness_p95_s,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM d.updated_at - d.due_at))
             FILTER (WHERE d.status = 'published')::numeric, 3) AS lateness_p99_s
  FROM queue_destinations d LEFT JOIN workspaces w ON w.workspace_id = d.workspace_id
 WHERE d.status IN ('published', 'failed', 'skipped', 'cancelled')
 GROUP BY 1, 2, 3;

-- Workspaces per tier and how much of their limits they use now.
CREATE OR REPLACE VIEW analytics.v1_tier_usage AS
WITH per_workspace AS (
    SELECT w.workspace_id, w.tier, (w.limits->>'queue_size')::int AS queue_size,
           (w.limits->>'accounts_per_platform')::int AS accounts_per_platform,
           COALESCE(s.waiting, 0) AS waiting,
           COALESCE((SELECT max(n) FROM (SELECT count(*) AS n FROM social_accounts a
                                          WHERE a.workspace_id = w.workspace_id GROUP BY a.platform) c), 0)
               AS busiest_platform_accounts,
           COALESCE(b.available, 0) AS credits_available
      FROM workspaces w
      LEFT JOIN queue_workspace_summary s ON s.workspace_id = w.workspace_id
      LEFT JOIN wallet_balances b ON b.workspace_id = w.workspace_id
)
SELECT tier, count(*) AS workspaces,
       sum(waiting)::bigint AS posts_waiting,
       round(avg(waiting::numeric / NULLIF(queue_size, 0)), 4) AS avg_queue_use,
       count(*) FILTER (WHERE waiting >= queue_size) AS at_queue_limit,
       round(avg(busiest_platform_accounts::numeric / NULLIF(accounts_per_platform, 0)), 4) AS avg_account_use,
       count(*) FILTER (WHERE busiest_platform_accounts >= accounts_per_platform) AS at_account_limit,
       sum(credits_available)::bigint AS credits_available
  FROM per_workspace
 GROUP BY tier;

-- The publishing work by state, now.
CREATE OR REPLACE VIEW analytics.v1_jobs AS
SELECT status, count(*) AS destinations, min(due_at) AS oldest_due_at, max(updated_at) AS last_change_at
  FROM queue_destinations
 GROUP BY status;

-- Every failed, retried, skipped or unknown publishing outcome, from the audit read model (a
-- retry that later succeeded stays in this log).
CREATE OR REPLACE VIEW analytics.v1_publishing_errors AS
SELECT e.time AS at, e.workspace_id, e.post_id, e.social_account_id, a.platform,
       split_part(e.type, '.', 3) AS outcome, (e.data->>'attempt')::int AS attempt,
       e.data->>'error_kind' AS error_kind, COALESCE(e.data->>'detail', e.data->>'reason') AS detail, e.position
  FROM audit_account_events e
  LEFT JOIN social_accounts a ON a.social_account_id = e.social_account_id
 WHERE e.type IN ('herald.post.destination_failed.v1', 'herald.post.retry_scheduled.v1',
                  'herald.post.destination_skipped.v1', 'herald.post.outcome_unknown.v1')
   AND e.data->>'requested_by' IS NULL;  -- an admin's retry is not an error
"""

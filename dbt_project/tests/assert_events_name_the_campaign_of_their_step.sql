-- An event's campaign is its step's campaign; the rollups match events to campaigns through
-- the step, so an event that says otherwise is broken data.
{{ config(meta={'dagster': {'ref': {'name': 'stg_enginy__campaign_events'}}}) }}
select events.event_id, events.campaign_id, steps.campaign_id as step_campaign_id
from {{ ref('stg_enginy__campaign_events') }} as events
inner join {{ ref('stg_enginy__campaign_steps') }} as steps on steps.step_id = events.step_id
where events.campaign_id <> steps.campaign_id

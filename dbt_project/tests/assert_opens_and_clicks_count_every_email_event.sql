-- Over all memberships, the opens and clicks the rollups report are the opened and clicked
-- events on email steps of campaigns the contact is in: none lost, none counted twice.
{{ config(meta={'dagster': {'ref': {'name': 'campaign_rollups_by_campaign'}}}) }}
with reported as (
    select sum(campaign_opens) as opens, sum(campaign_clicks) as clicks
    from {{ ref('campaign_rollups_by_campaign') }}
),

recorded as (
    select
        count(case when events.event_type = 'opened' then 1 end) as opens,
        count(case when events.event_type = 'clicked' then 1 end) as clicks
    from {{ ref('stg_enginy__campaign_events') }} as events
    inner join {{ ref('stg_enginy__campaign_steps') }} as steps
        on steps.step_id = events.step_id and steps.step_type = 'email'
    inner join {{ ref('stg_enginy__campaign_contacts') }} as memberships
        on memberships.contact_id = events.contact_id and memberships.campaign_id = steps.campaign_id
)

select reported.opens, recorded.opens as recorded_opens, reported.clicks, recorded.clicks as recorded_clicks
from reported cross join recorded
where coalesce(reported.opens, 0) <> recorded.opens or coalesce(reported.clicks, 0) <> recorded.clicks

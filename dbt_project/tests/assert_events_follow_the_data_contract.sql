-- docs/enginy_data_contract.md: opens and clicks happen on emails, replies on emails and
-- LinkedIn messages, acceptances on connection requests, and each follows the `sent` event of
-- the same contact and step. The rollups ignore what breaks this (an open of a call counts
-- nowhere), so it warns rather than stops them.
{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'stg_enginy__campaign_events'}}}) }}
with events as (
    select events.*, steps.step_type
    from {{ ref('stg_enginy__campaign_events') }} as events
    inner join {{ ref('stg_enginy__campaign_steps') }} as steps on steps.step_id = events.step_id
),

sends as (
    select contact_id, step_id, min(occurred_at) as sent_at
    from events where event_type = 'sent' group by contact_id, step_id
)

select events.event_id, events.event_type, events.step_type,
    case
        when sends.sent_at is null then 'no sent event for this contact and step'
        when events.occurred_at < sends.sent_at then 'happened before the step was sent'
        else 'on a step of the wrong type'
    end as problem
from events
left join sends on sends.contact_id = events.contact_id and sends.step_id = events.step_id
where events.event_type <> 'sent' and (
    sends.sent_at is null
    or events.occurred_at < sends.sent_at
    or (events.event_type in ('opened', 'clicked') and events.step_type <> 'email')
    or (events.event_type = 'replied' and events.step_type not in ('email', 'linkedin_message'))
    or (events.event_type = 'accepted' and events.step_type <> 'linkedin_connection_request')
)

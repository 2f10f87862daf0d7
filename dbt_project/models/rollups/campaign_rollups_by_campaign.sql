-- One row per contact and campaign the contact was added to: the per-campaign properties of
-- Step 3 (Campaign Mapping) for that campaign, and which campaign is the contact's most recently
-- active one. The rules are in _rollups.yml.
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns',
    pre_hook="{{ delete_rows_to_rebuild() }}",
) }}
-- A scoped build (macros/rollup_scope.sql) rebuilds the changed contacts' rows only:
-- depends_on: {{ ref('rollup_changed_contacts') }}
with memberships as (
    select contact_id, campaign_id, added_at from {{ ref('stg_enginy__campaign_contacts') }}
    where {{ in_rollup_scope('contact_id') }}
),

campaigns as (
    select campaign_id, campaign_name from {{ ref('stg_enginy__campaigns') }}
),

steps as (
    select * from {{ ref('stg_enginy__campaign_steps') }}
),

sequences as (
    select
        campaign_id,
        {{ comma_list('step_label', 'position') }} as campaign_sequence_details,
        max(position) as last_position,
        count(case when is_message then 1 end) as message_steps
    from steps
    group by campaign_id
),

-- What happened at each step, per contact. The step says which campaign it belongs to.
step_events as (
    select
        events.contact_id,
        steps.campaign_id,
        steps.position,
        steps.step_type,
        steps.is_message,
        steps.message_number,
        count(case when events.event_type = 'sent' then 1 end) as sends,
        count(case when events.event_type = 'opened' then 1 end) as opens,
        count(case when events.event_type = 'clicked' then 1 end) as clicks,
        count(case when events.event_type = 'replied' then 1 end) as replies,
        max(events.occurred_at) as last_event_at
    from {{ ref('stg_enginy__campaign_events') }} as events
    inner join steps on steps.step_id = events.step_id
    where {{ in_rollup_scope('events.contact_id') }}
    group by 1, 2, 3, 4, 5, 6
),

progress as (
    select
        contact_id,
        campaign_id,
        max(case when sends > 0 then position end) as last_executed_position,
        max(case when sends > 0 and is_message then message_number end) as last_sent_message,
        max(case when replies > 0 and is_message then message_number end) as last_replied_message,
        sum(case when step_type = 'email' then opens else 0 end) as opens,
        sum(case when step_type = 'email' then clicks else 0 end) as clicks,
        {{ comma_list(message_answer('message_number'), 'position', 'replies > 0 and is_message') }}
            as replied_messages,
        {{ comma_list(message_answer('message_number'), 'position', "opens > 0 and step_type = 'email'") }}
            as opened_messages,
        {{ comma_list(message_answer('message_number'), 'position', "clicks > 0 and step_type = 'email'") }}
            as clicked_messages,
        max(last_event_at) as last_event_at
    from step_events
    group by contact_id, campaign_id
),

status as (
    select
        memberships.contact_id,
        memberships.campaign_id,
        campaigns.campaign_name,
        memberships.added_at,
        coalesce(progress.last_event_at, memberships.added_at) as last_event_at,
        sequences.campaign_sequence_details,
        coalesce(sequences.message_steps, 0) as message_steps,
        sequences.last_position,
        progress.last_executed_position,
        progress.last_sent_message,
        progress.last_replied_message,
        coalesce(progress.opens, 0) as opens,
        coalesce(progress.clicks, 0) as clicks,
        progress.replied_messages,
        progress.opened_messages,
        progress.clicked_messages
    from memberships
    left join campaigns on campaigns.campaign_id = memberships.campaign_id
    left join sequences on sequences.campaign_id = memberships.campaign_id
    left join progress
        on progress.contact_id = memberships.contact_id and progress.campaign_id = memberships.campaign_id
),

labelled as (
    select
        status.*,
        coalesce(status.last_replied_message, status.last_sent_message) as engagement_message
    from status
)

select
    labelled.contact_id,
    labelled.campaign_id,
    labelled.campaign_name,
    labelled.added_at,
    case when labelled.last_event_at > labelled.added_at then labelled.last_event_at else labelled.added_at end
        as last_active_at,
    row_number() over (
        partition by labelled.contact_id
        order by
            case when labelled.last_event_at > labelled.added_at then labelled.last_event_at else labelled.added_at end desc,
            labelled.added_at desc,
            labelled.campaign_id desc
    ) = 1 as is_most_recent_campaign,
    labelled.message_steps,
    labelled.engagement_message as engagement_message_number,
    labelled.campaign_sequence_details,
    case
        when labelled.last_replied_message is not null then
            'Message Replied (' || cast(labelled.last_replied_message as {{ dbt.type_string() }}) || '/'
            || cast(labelled.message_steps as {{ dbt.type_string() }}) || ') - ' || message_step.message_channel
        when labelled.last_sent_message is not null then
            'Message Sent (' || cast(labelled.last_sent_message as {{ dbt.type_string() }}) || '/'
            || cast(labelled.message_steps as {{ dbt.type_string() }}) || ') - ' || message_step.message_channel
        else 'Added to Campaign'
    end as campaign_engagement_status,
    case
        when labelled.last_replied_message is not null then 'Replied'
        when labelled.last_executed_position is null then 'Not Started'
        when labelled.last_executed_position = labelled.last_position then 'Finished'
        else 'Ongoing'
    end as sequence_status,
    coalesce(labelled.replied_messages, 'No') as campaign_reply_analysis,
    cast(labelled.opens as {{ dbt.type_int() }}) as campaign_opens,
    cast(labelled.clicks as {{ dbt.type_int() }}) as campaign_clicks,
    coalesce(labelled.opened_messages, 'No') as campaign_open_analysis,
    coalesce(labelled.clicked_messages, 'No') as campaign_click_analysis
from labelled
left join steps as message_step
    on message_step.campaign_id = labelled.campaign_id
    and message_step.message_number = labelled.engagement_message

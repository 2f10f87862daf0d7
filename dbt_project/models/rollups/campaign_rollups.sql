-- One row per Enginy contact: the 13 campaign properties of Step 3 (Campaign Mapping), with the
-- names crm_pipelines.config.CAMPAIGN_PROPERTIES gives them. The rules are in _rollups.yml.
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns',
    pre_hook="{{ delete_rows_to_rebuild() }}",
) }}
-- A scoped build (macros/rollup_scope.sql) rebuilds the changed contacts' rows only:
-- depends_on: {{ ref('rollup_changed_contacts') }}
with contacts as (
    select contact_id from {{ ref('stg_enginy__contacts') }}
    where {{ in_rollup_scope('contact_id') }}
),

by_campaign as (
    select * from {{ ref('campaign_rollups_by_campaign') }}
    where {{ in_rollup_scope('contact_id') }}
),

most_recent as (
    select * from by_campaign where is_most_recent_campaign
),

campaign_names as (
    select
        contact_id,
        {{ comma_list('campaign_name', 'added_at, campaign_name, campaign_id') }} as campaigns
    from by_campaign
    group by contact_id
),

events as (
    select
        events.event_id,
        events.contact_id,
        events.identity_id,
        events.event_type,
        events.occurred_at,
        steps.step_type
    from {{ ref('stg_enginy__campaign_events') }} as events
    left join {{ ref('stg_enginy__campaign_steps') }} as steps on steps.step_id = events.step_id
    where {{ in_rollup_scope('events.contact_id') }}
),

first_contact_by_sender as (
    select
        events.contact_id,
        identities.identity_name,
        min(events.occurred_at) as first_contacted_at
    from {{ ref('stg_enginy__campaign_events') }} as events
    inner join {{ ref('stg_enginy__identities') }} as identities on identities.identity_id = events.identity_id
    where events.event_type = 'sent' and {{ in_rollup_scope('events.contact_id') }}
    group by events.contact_id, identities.identity_name
),

senders as (
    select
        contact_id,
        {{ comma_list('identity_name', 'first_contacted_at, identity_name') }} as senders
    from first_contact_by_sender
    group by contact_id
),

activities as (
    select
        contact_id,
        {{ comma_list(activity_label('event_type', 'step_type'), 'occurred_at, event_id') }} as activities
    from events
    group by contact_id
),

tags as (
    select
        contact_id,
        {{ comma_list('tag_name', 'tagged_at, tag_name, tag_id') }} as conversation_tags,
        {{ comma_list('tag_category', 'tagged_at, tag_name, tag_id') }} as conversation_tags_categories
    from {{ ref('stg_enginy__contact_tags') }}
    where {{ in_rollup_scope('contact_id') }}
    group by contact_id
)

select
    contacts.contact_id,
    most_recent.campaign_sequence_details,
    most_recent.campaign_engagement_status,
    most_recent.sequence_status,
    most_recent.campaign_reply_analysis,
    most_recent.campaign_opens,
    most_recent.campaign_clicks,
    most_recent.campaign_open_analysis,
    most_recent.campaign_click_analysis,
    campaign_names.campaigns,
    senders.senders,
    activities.activities,
    tags.conversation_tags,
    tags.conversation_tags_categories
from contacts
left join most_recent on most_recent.contact_id = contacts.contact_id
left join campaign_names on campaign_names.contact_id = contacts.contact_id
left join senders on senders.contact_id = contacts.contact_id
left join activities on activities.contact_id = contacts.contact_id
left join tags on tags.contact_id = contacts.contact_id

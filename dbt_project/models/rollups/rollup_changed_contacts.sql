-- The contacts whose campaign rollups a scoped build rebuilds (macros/rollup_scope.sql); no row
-- in a full build, which rebuilds every contact. A contact is in it when, since the Enginy
-- change sensor's cursor, its Enginy record was updated, it was added to a campaign or tagged, or
-- it had an event; or when an event of its is in the window the event staging took again (the
-- last event_lookback_days: late opens and clicks); or when a campaign it has rollups for no
-- longer lists it. A tag removed or a campaign renamed reaches the rollups with the next full
-- build (the nightly reconciliation's).
{%- set since = rollups_changed_since() %}
{%- set by_campaign = adapter.get_relation(this.database, this.schema, 'campaign_rollups_by_campaign') if execute else none %}
{%- if since %}
{%- set at = "cast('" ~ since ~ "' as timestamp with time zone)" %}
select cast(id as {{ dbt.type_string() }}) as contact_id
from {{ source('enginy', 'contacts') }}
where updated_at >= {{ at }}
union
select contact_id from {{ ref('stg_enginy__campaign_contacts') }} where added_at >= {{ at }}
union
select contact_id from {{ ref('stg_enginy__contact_tags') }} where tagged_at >= {{ at }}
union
select contact_id from {{ ref('stg_enginy__campaign_events') }}
where occurred_at >= {{ at }}
    or occurred_at >= (select max(occurred_at) from {{ ref('stg_enginy__campaign_events') }})
        - interval '{{ var("event_lookback_days") }} days'
{%- if by_campaign is not none %}
union
select held.contact_id
from {{ by_campaign }} as held
left join {{ ref('stg_enginy__campaign_contacts') }} as memberships
    on memberships.contact_id = held.contact_id and memberships.campaign_id = held.campaign_id
where memberships.contact_id is null
{%- endif %}
{%- else %}
select cast(null as {{ dbt.type_string() }}) as contact_id
where false
{%- endif %}

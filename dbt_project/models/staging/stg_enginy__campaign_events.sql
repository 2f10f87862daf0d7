{#-
  The campaign events, kept incrementally: the events log only grows, so each build inserts the
  events of the last `event_lookback_days` before the newest one already staged (late opens and
  clicks included) and replaces any it held under the same id.

  A guard keeps this honest when the source does not just grow (events deleted, or the data set
  regenerated): if the source and this table disagree on how many events are older than that
  window, the build takes every event again and a post-hook drops the ones the source no longer
  has. `dbt build --full-refresh` rebuilds it from scratch at any time.
-#}
{{ config(
    materialized='incremental',
    unique_key='event_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    post_hook="{{ drop_events_gone_from_source() }}",
) }}

{%- set window_start -%}
    (select max(occurred_at) from {{ this }}) - interval '{{ var("event_lookback_days") }} days'
{%- endset -%}

select
    cast(id as {{ dbt.type_string() }}) as event_id,
    cast(campaign_id as {{ dbt.type_string() }}) as campaign_id,
    cast(step_id as {{ dbt.type_string() }}) as step_id,
    cast(contact_id as {{ dbt.type_string() }}) as contact_id,
    cast(identity_id as {{ dbt.type_string() }}) as identity_id,
    channel,
    event_type,
    occurred_at
from {{ events_to_stage() }} as events
{% if is_incremental() and staged_events_match_source(window_start) %}
where occurred_at >= {{ window_start }}
{% endif %}

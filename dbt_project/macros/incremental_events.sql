{#-
  The guard of the incremental event staging (models/staging/stg_enginy__campaign_events.sql).
-#}

{#- The source events the staging holds: those outside the quarantine (macros/quarantine.sql), and
    not of a quarantined contact, step, identity or campaign. The guard counts these, so an event
    quarantined after it was staged is dropped by the post-hook. -#}
{% macro events_to_stage() -%}
    {{ keyed_source('campaign_events', {'contact_id': 'contacts', 'step_id': 'campaign_steps',
                                        'identity_id': 'identities', 'campaign_id': 'campaigns'}) }}
{%- endmacro %}

{#- True when the source and the staged table hold as many events older than `window_start`, so
    inserting only the recent window leaves the table equal to the source. -#}
{% macro staged_events_match_source(window_start) %}
    {% if not execute %}{{ return(true) }}{% endif %}
    {% set counts %}
        select
            (select count(*) from {{ events_to_stage() }} as events where occurred_at < {{ window_start }}),
            (select count(*) from {{ this }} where occurred_at < {{ window_start }})
    {% endset %}
    {% set row = run_query(counts).rows[0] %}
    {% if row[0] != row[1] %}
        {{ log("stg_enginy__campaign_events: the source holds " ~ row[0] ~ " events older than the incremental "
               ~ "window, the staged table " ~ row[1] ~ "; taking every event again", info=true) }}
        {{ return(false) }}
    {% endif %}
    {{ return(true) }}
{% endmacro %}

{#- Post-hook: when the staged table still holds more events than the source (events deleted at
    the source, or the data set regenerated), drop those the source no longer has. Two counts
    when nothing is wrong; the anti-join only when something is. -#}
{% macro drop_events_gone_from_source() %}
    {% if execute and is_incremental() %}
        {% set counts %}
            select (select count(*) from {{ events_to_stage() }} as events), (select count(*) from {{ this }})
        {% endset %}
        {% set row = run_query(counts).rows[0] %}
        {% if row[0] != row[1] %}
            {{ log("stg_enginy__campaign_events: dropping " ~ (row[1] - row[0]) ~ " events the source no longer has",
                   info=true) }}
            delete from {{ this }}
            where not exists (
                select 1 from {{ events_to_stage() }} as source_events
                where cast(source_events.id as {{ dbt.type_string() }}) = {{ this }}.event_id
            )
        {% endif %}
    {% endif %}
{% endmacro %}

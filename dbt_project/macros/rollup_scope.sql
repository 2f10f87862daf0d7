{#-
  Which contacts a build of the two rollup models rebuilds.

  The Enginy change sensor's runs (a thousand contacts changed among a million) set
  CRM_PIPELINES_ROLLUPS_CHANGED_SINCE to the sensor's cursor, an ISO time: the model
  rollup_changed_contacts then lists the contacts whose rollups may have changed (see it), and
  the two rollup models delete and rebuild the rows of only those, keeping every other row. Any
  other build (the first, every full run, `dbt build` by hand) rebuilds every contact's rows.

  An environment variable, not a dbt var: a var that changes every run would make dbt parse the
  whole project again each time.
-#}

{% macro rollups_changed_since() %}
    {{- return(env_var('CRM_PIPELINES_ROLLUPS_CHANGED_SINCE', '')) -}}
{%- endmacro %}

{#- True when this build of an incremental rollup model rebuilds the changed contacts only. -#}
{% macro rollups_scoped() %}
    {{- return(is_incremental() and rollups_changed_since() != '') -}}
{%- endmacro %}

{#- A filter on `column` (a contact id): true in a full build, the changed contacts in a scoped one. -#}
{% macro in_rollup_scope(column) %}
    {%- if rollups_scoped() -%}
        {{ column }} in (select contact_id from {{ ref('rollup_changed_contacts') }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of the rollup models: the rows about to be rebuilt go first — the changed contacts'
    in a scoped build (a contact no longer in any campaign loses its rows), every row in a full
    build of a model already built (so rows of contacts gone since go too). -#}
{% macro delete_rows_to_rebuild() %}
    {%- if rollups_scoped() -%}
        delete from {{ this }} where contact_id in (select contact_id from {{ ref('rollup_changed_contacts') }})
    {%- elif is_incremental() -%}
        delete from {{ this }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

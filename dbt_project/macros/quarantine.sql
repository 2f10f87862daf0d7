{#-
  The quarantine of rows that break the keys of the Enginy data contract (docs/enginy_data_contract.md):
  a row without an id, and every row of an id that more than one row holds (which of them is right
  cannot be known). models/staging/enginy_quarantine.sql lists them; the staging models read the
  source tables through `keyed_source`, which leaves them out — and the rows that point at them —
  so the contract's tests pass and the rollups are built on the rest instead of stopping.

  crm_pipelines/enginy/quarantine.py applies the same rule to the contacts and companies the
  export reads.
-#}

{#- The source tables keyed by `id`, and what one of their rows is called in a reason. -#}
{% macro keyed_tables() %}
    {{- return({
        'contacts': 'contact', 'companies': 'company', 'identities': 'identity', 'campaigns': 'campaign',
        'campaign_steps': 'campaign step', 'campaign_events': 'campaign event',
        'conversation_tags': 'conversation tag'}) -}}
{%- endmacro %}

{#- Source table `table` without its quarantined rows, nor the rows whose `references` (column →
    keyed table) name a quarantined row: an event of a quarantined contact is left out with it,
    where it would otherwise break the relationships test. A reference to an id that never existed
    is kept, for the tests to report. -#}
{% macro keyed_source(table, references={}) -%}
    (select * from {{ source('enginy', table) }}
    where {% if table in keyed_tables() %}id is not null and {{ not_quarantined(table, 'id') }}{% else %}true{% endif %}
    {%- for column, parent in references.items() %}
        and ({{ column }} is null or {{ not_quarantined(parent, column) }})
    {%- endfor %})
{%- endmacro %}

{% macro not_quarantined(table, column) -%}
    cast({{ column }} as {{ dbt.type_string() }}) not in (
        select record_id from {{ ref('enginy_quarantine') }}
        where source_table = '{{ table }}' and record_id is not null)
{%- endmacro %}

{#- The quarantined rows of one keyed source table, as enginy_quarantine lists them. -#}
{% macro key_breaches(table, entity) -%}
    select
        '{{ table }}' as source_table,
        cast(source_row.id as {{ dbt.type_string() }}) as record_id,
        'id' as field,
        cast(source_row.id as {{ dbt.type_string() }}) as value,
        case
            when source_row.id is null then
                'This Enginy {{ entity }} has no id, so it cannot be matched, exported or rolled up: give it an '
                || 'id in Enginy (its row is in source_row).'
            else
                'Enginy {{ entity }} id ' || cast(source_row.id as {{ dbt.type_string() }}) || ' is held by '
                || cast(shared.rows_with_id as {{ dbt.type_string() }}) || ' rows of {{ table }}; none is used, '
                || 'since which one is right cannot be known: keep one row per id in Enginy.'
        end as reason,
        {{ row_as_json('source_row') }} as source_row
    from {{ source('enginy', table) }} as source_row
    left join (
        select id, count(*) as rows_with_id
        from {{ source('enginy', table) }}
        where id is not null
        group by id
        having count(*) > 1
    ) as shared on shared.id = source_row.id
    where source_row.id is null or shared.id is not null
{%- endmacro %}

{#- A whole row as JSON text: what identifies a row that has no id. -#}
{% macro row_as_json(alias) -%}
    {{ return(adapter.dispatch('row_as_json', 'crm_pipelines')(alias)) }}
{%- endmacro %}

{% macro default__row_as_json(alias) -%}
    cast(row_to_json({{ alias }}) as {{ dbt.type_string() }})
{%- endmacro %}

{% macro duckdb__row_as_json(alias) -%}
    cast(to_json({{ alias }}) as {{ dbt.type_string() }})
{%- endmacro %}

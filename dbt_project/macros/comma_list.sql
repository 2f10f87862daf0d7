{#-
  The comma-separated lists every list-valued property is: `expression` of the rows (where
  `where` holds), in `order_by` order, joined with ", "; null when there is none. Rows whose
  expression is null are left out.

  Dispatched because the fastest form differs: DuckDB builds an ordered list and joins it
  (several times faster than an ordered string_agg over many small groups — bench/README.md);
  elsewhere, dbt's own cross-database listagg.
-#}
{% macro comma_list(expression, order_by, where=none) -%}
    {{ return(adapter.dispatch('comma_list', 'crm_pipelines')(expression, order_by, where)) }}
{%- endmacro %}

{% macro default__comma_list(expression, order_by, where) -%}
    {%- set measure = expression if where is none else "case when " ~ where ~ " then " ~ expression ~ " end" -%}
    {{ dbt.listagg(measure, "', '", "order by " ~ order_by) }}
{%- endmacro %}

{% macro duckdb__comma_list(expression, order_by, where) -%}
    array_to_string(list({{ expression }} order by {{ order_by }}){% if where is not none %} filter (where {{ where }}){% endif %}, ', ')
{%- endmacro %}

-- The Enginy rows that break the keys of the data contract, one row each, with the reason a person
-- acts on (macros/quarantine.sql). The staging models leave them out; the export reports the
-- contacts and companies among them in export_rejections.
{% for table, entity in keyed_tables().items() %}
{{ key_breaches(table, entity) }}
{% if not loop.last %}union all{% endif %}
{%- endfor %}

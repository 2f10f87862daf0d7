-- The identities that run campaigns; their names are the Senders property.
select
    cast(id as {{ dbt.type_string() }}) as identity_id,
    name as identity_name
from {{ keyed_source('identities') }} as identities

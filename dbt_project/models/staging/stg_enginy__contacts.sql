-- Every Enginy contact: the rollups have one row for each, in a campaign or not.
select cast(id as {{ dbt.type_string() }}) as contact_id
from {{ keyed_source('contacts') }} as contacts

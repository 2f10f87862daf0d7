select
    cast(id as {{ dbt.type_string() }}) as campaign_id,
    name as campaign_name,
    cast(identity_id as {{ dbt.type_string() }}) as identity_id,
    created_at
from {{ keyed_source('campaigns') }} as campaigns

select
    cast(id as {{ dbt.type_string() }}) as campaign_id,
    name as campaign_name,
    -- An identity in quarantine is no one's: its campaigns stay, sent by an unknown identity.
    case when {{ not_quarantined('identities', 'identity_id') }}
        then cast(identity_id as {{ dbt.type_string() }}) end as identity_id,
    created_at
from {{ keyed_source('campaigns') }} as campaigns

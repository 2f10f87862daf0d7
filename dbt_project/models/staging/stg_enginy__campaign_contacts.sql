-- Memberships: a contact added to a campaign, and when. A membership listed twice is one
-- membership (the contract's key is contact and campaign): the first time it was added counts.
select
    cast(contact_id as {{ dbt.type_string() }}) as contact_id,
    cast(campaign_id as {{ dbt.type_string() }}) as campaign_id,
    min(added_at) as added_at
from {{ keyed_source('campaign_contacts', {'contact_id': 'contacts', 'campaign_id': 'campaigns'}) }} as memberships
group by 1, 2

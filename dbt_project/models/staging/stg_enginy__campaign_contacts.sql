-- Memberships: a contact added to a campaign, and when.
select
    cast(contact_id as {{ dbt.type_string() }}) as contact_id,
    cast(campaign_id as {{ dbt.type_string() }}) as campaign_id,
    added_at
from {{ keyed_source('campaign_contacts', {'contact_id': 'contacts', 'campaign_id': 'campaigns'}) }} as memberships

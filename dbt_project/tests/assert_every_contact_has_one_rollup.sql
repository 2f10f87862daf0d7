-- campaign_rollups has exactly one row per Enginy contact (unique contact_id is tested on the
-- column; this checks none is missing).
{{ config(meta={'dagster': {'ref': {'name': 'campaign_rollups'}}}) }}
select contacts.contact_id
from {{ ref('stg_enginy__contacts') }} as contacts
left join {{ ref('campaign_rollups') }} as rollups on rollups.contact_id = contacts.contact_id
where rollups.contact_id is null

select contact_id, count(case when is_most_recent_campaign then 1 end) as most_recent_campaigns
from {{ ref('campaign_rollups_by_campaign') }}
group by contact_id
having count(case when is_most_recent_campaign then 1 end) <> 1

-- One category per tag, in the same order: the categories list has as many entries as the
-- contact has tags (categories never contain a comma, tag names may).
{{ config(meta={'dagster': {'ref': {'name': 'campaign_rollups'}}}) }}
with tag_counts as (
    select contact_id, count(*) as tags from {{ ref('stg_enginy__contact_tags') }} group by contact_id
)

select rollups.contact_id, rollups.conversation_tags_categories, tag_counts.tags
from {{ ref('campaign_rollups') }} as rollups
left join tag_counts on tag_counts.contact_id = rollups.contact_id
where coalesce(tag_counts.tags, 0)
    <> case when rollups.conversation_tags_categories is null then 0
       else length(rollups.conversation_tags_categories)
            - length(replace(rollups.conversation_tags_categories, ',', '')) + 1 end

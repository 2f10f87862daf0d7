-- Conversation tags applied to contacts, with each tag's name and category. A tag applied to a
-- contact twice is one tag (the contract's key is contact and tag): the first time counts.
select
    cast(applied.contact_id as {{ dbt.type_string() }}) as contact_id,
    cast(applied.tag_id as {{ dbt.type_string() }}) as tag_id,
    min(tags.name) as tag_name,
    min(tags.category) as tag_category,
    min(applied.tagged_at) as tagged_at
from {{ keyed_source('contact_conversation_tags', {'contact_id': 'contacts', 'tag_id': 'conversation_tags'}) }}
    as applied
left join {{ keyed_source('conversation_tags') }} as tags
    on cast(tags.id as {{ dbt.type_string() }}) = cast(applied.tag_id as {{ dbt.type_string() }})
group by 1, 2

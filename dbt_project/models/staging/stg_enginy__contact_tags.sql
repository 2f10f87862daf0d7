-- Conversation tags applied to contacts, with each tag's name and category.
select
    cast(applied.contact_id as {{ dbt.type_string() }}) as contact_id,
    cast(applied.tag_id as {{ dbt.type_string() }}) as tag_id,
    tags.name as tag_name,
    tags.category as tag_category,
    applied.tagged_at
from {{ keyed_source('contact_conversation_tags', {'contact_id': 'contacts', 'tag_id': 'conversation_tags'}) }}
    as applied
left join {{ keyed_source('conversation_tags') }} as tags
    on cast(tags.id as {{ dbt.type_string() }}) = cast(applied.tag_id as {{ dbt.type_string() }})

-- Each step of each campaign, with the numbers the campaign properties show:
--   message_number  the step's number among the campaign's messages (emails and LinkedIn
--                   messages together): "Message Sent (2/5)", "Yes (2nd Message)";
--   channel_number  its number among the messages of its own channel: "2nd Email", "1st LinkedIn".
with steps as (
    select
        cast(id as {{ dbt.type_string() }}) as step_id,
        cast(campaign_id as {{ dbt.type_string() }}) as campaign_id,
        cast(position as {{ dbt.type_int() }}) as position,
        step_type,
        channel,
        step_type in ('email', 'linkedin_message') as is_message
    from {{ keyed_source('campaign_steps', {'campaign_id': 'campaigns'}) }} as steps
),

numbered as (
    select
        *,
        case when is_message then count(case when is_message then 1 end) over (
            partition by campaign_id order by position rows between unbounded preceding and current row
        ) end as message_number,
        case when is_message then count(*) over (
            partition by campaign_id, step_type order by position rows between unbounded preceding and current row
        ) end as channel_number
    from steps
)

select
    step_id,
    campaign_id,
    position,
    step_type,
    channel,
    is_message,
    cast(message_number as {{ dbt.type_int() }}) as message_number,
    cast(channel_number as {{ dbt.type_int() }}) as channel_number,
    {{ step_label('step_type', 'channel_number') }} as step_label,
    {{ channel_label('step_type') }} as message_channel
from numbered

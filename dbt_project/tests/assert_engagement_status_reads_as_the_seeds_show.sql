-- The status strings have the shapes Step 3 shows, k is a message of the sequence (1 ≤ k ≤ n),
-- and the statuses agree with each other: a reply shows in both, and "Not Started" means no
-- message was sent.
select contact_id, campaign_id, campaign_engagement_status, sequence_status, engagement_message_number, message_steps
from {{ ref('campaign_rollups_by_campaign') }}
where not (
        campaign_engagement_status = 'Added to Campaign'
        or campaign_engagement_status like 'Message Sent (%/%) - Email'
        or campaign_engagement_status like 'Message Sent (%/%) - LinkedIn'
        or campaign_engagement_status like 'Message Replied (%/%) - Email'
        or campaign_engagement_status like 'Message Replied (%/%) - LinkedIn'
    )
    or (engagement_message_number is not null and engagement_message_number not between 1 and message_steps)
    or ((sequence_status = 'Replied') <> (campaign_engagement_status like 'Message Replied%'))
    or (sequence_status = 'Not Started' and campaign_engagement_status <> 'Added to Campaign')
    or (campaign_reply_analysis <> 'No' and campaign_reply_analysis not like 'Yes (%Message)')
    or (campaign_open_analysis <> 'No' and campaign_open_analysis not like 'Yes (%Message)')
    or (campaign_click_analysis <> 'No' and campaign_click_analysis not like 'Yes (%Message)')
    or (campaign_clicks > 0 and campaign_click_analysis = 'No')
    or (campaign_opens > 0 and campaign_open_analysis = 'No')

{#
  The words the CRM shows, in one place. Each macro renders a SQL expression; none reads data.
  Plain ANSI SQL that DuckDB and PostgreSQL both run; dispatched, so another warehouse can
  supply its own version (`<adapter>__ordinal`) without touching the models.
#}

{% macro ordinal(number) -%}
    {{ return(adapter.dispatch('ordinal', 'crm_pipelines')(number)) }}
{%- endmacro %}

{#- English ordinals: 1st 2nd 3rd 4th … 11th 12th 13th … 21st 22nd 23rd … 101st 111th 112th. -#}
{% macro default__ordinal(number) -%}
    (cast({{ number }} as {{ dbt.type_string() }}) || case
        when {{ number }} % 100 in (11, 12, 13) then 'th'
        when {{ number }} % 10 = 1 then 'st'
        when {{ number }} % 10 = 2 then 'nd'
        when {{ number }} % 10 = 3 then 'rd'
        else 'th'
    end)
{%- endmacro %}

{#- A step as Campaign Sequence Details shows it: emails and LinkedIn messages are numbered
    within their own channel ("2nd Email", "1st LinkedIn"); other steps are named. -#}
{% macro step_label(step_type, channel_number) -%}
    case {{ step_type }}
        when 'email' then {{ ordinal(channel_number) }} || ' Email'
        when 'linkedin_message' then {{ ordinal(channel_number) }} || ' LinkedIn'
        when 'linkedin_connection_request' then 'LinkedIn Connection Request'
        when 'linkedin_profile_visit' then 'LinkedIn Profile Visit'
        when 'call' then 'Call'
    end
{%- endmacro %}

{#- A message step's channel as Campaign Engagement Status shows it. -#}
{% macro channel_label(step_type) -%}
    case {{ step_type }} when 'email' then 'Email' when 'linkedin_message' then 'LinkedIn' end
{%- endmacro %}

{#- One event as the Activities property lists it. -#}
{% macro activity_label(event_type, step_type) -%}
    case
        when {{ event_type }} = 'sent' and {{ step_type }} = 'linkedin_profile_visit' then 'Visit LinkedIn profile'
        when {{ event_type }} = 'sent' and {{ step_type }} = 'linkedin_connection_request' then 'LinkedIn Invitation sent'
        when {{ event_type }} = 'sent' and {{ step_type }} = 'linkedin_message' then 'LinkedIn message sent'
        when {{ event_type }} = 'sent' and {{ step_type }} = 'email' then 'Email sent'
        when {{ event_type }} = 'sent' and {{ step_type }} = 'call' then 'Call made'
        when {{ event_type }} = 'accepted' then 'Contact has accepted invitation'
        when {{ event_type }} = 'opened' then 'Email opened'
        when {{ event_type }} = 'clicked' then 'Email link clicked'
        when {{ event_type }} = 'replied' and {{ step_type }} = 'email' then 'Contact has replied to email'
        when {{ event_type }} = 'replied' then 'Contact has replied on LinkedIn'
    end
{%- endmacro %}

{#- "Yes (3rd Message)": one entry of the reply, open and click analyses. -#}
{% macro message_answer(message_number) -%}
    'Yes (' || {{ ordinal(message_number) }} || ' Message)'
{%- endmacro %}

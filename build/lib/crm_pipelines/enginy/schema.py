"""The Enginy data contract: the source tables the pipeline reads, declared once.

A customer's engineer maps their own export onto these tables (docs/enginy_data_contract.md
explains each column). Any SQLAlchemy database works; the pipeline only reads.
"""

from __future__ import annotations

from sqlalchemy import (
    Column, DateTime, ForeignKey, Integer, MetaData, String, Table, Text, CheckConstraint,
)

metadata = MetaData()

CHANNELS = ("email", "linkedin", "call")
STEP_TYPES = (
    "email",  # an email message
    "linkedin_profile_visit",
    "linkedin_connection_request",
    "linkedin_message",
    "call",
)
EVENT_TYPES = (
    "sent",  # the step was executed: email sent, LinkedIn message/invitation sent, profile visited, call made
    "opened",  # email only
    "clicked",  # email only
    "replied",  # email or LinkedIn message
    "accepted",  # LinkedIn connection request accepted
)
TAG_CATEGORIES = ("POSITIVE", "NEUTRAL", "NEGATIVE")

users = Table(
    "users", metadata,
    Column("id", String(36), primary_key=True),
    Column("first_name", String(100)),
    Column("last_name", String(100)),
    Column("email", String(320), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

identities = Table(
    "identities", metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320)),
    Column("linkedin_url", String(500)),
    Column("user_id", String(36), ForeignKey("users.id")),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

companies = Table(
    "companies", metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(300)),
    Column("domain", String(300)),
    Column("website", String(500)),
    Column("linkedin_url", String(500)),
    Column("industry", String(100)),
    Column("employees", Integer),
    Column("country", String(2)),
    Column("owner_user_id", String(36), ForeignKey("users.id")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, index=True),
)

contacts = Table(
    "contacts", metadata,
    Column("id", String(36), primary_key=True),
    Column("first_name", String(100)),
    Column("last_name", String(100)),
    Column("email", String(320)),
    Column("phone", String(50)),
    Column("job_title", String(200)),
    Column("linkedin_url", String(500)),
    Column("company_id", String(36), ForeignKey("companies.id")),
    Column("company_name", String(300)),
    Column("owner_user_id", String(36), ForeignKey("users.id")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, index=True),
)

campaigns = Table(
    "campaigns", metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("identity_id", String(36), ForeignKey("identities.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

campaign_steps = Table(
    "campaign_steps", metadata,
    Column("id", String(36), primary_key=True),
    Column("campaign_id", String(36), ForeignKey("campaigns.id"), nullable=False),
    Column("position", Integer, nullable=False),  # 1-based order within the campaign
    Column("step_type", String(40), nullable=False),
    Column("channel", String(20), nullable=False),
    CheckConstraint(f"step_type IN {STEP_TYPES}", name="step_type_known"),
    CheckConstraint(f"channel IN {CHANNELS}", name="step_channel_known"),
)

campaign_contacts = Table(
    "campaign_contacts", metadata,
    Column("campaign_id", String(36), ForeignKey("campaigns.id"), primary_key=True),
    Column("contact_id", String(36), ForeignKey("contacts.id"), primary_key=True),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

campaign_events = Table(
    "campaign_events", metadata,
    Column("id", String(36), primary_key=True),
    Column("campaign_id", String(36), ForeignKey("campaigns.id"), nullable=False),
    Column("step_id", String(36), ForeignKey("campaign_steps.id"), nullable=False),
    Column("contact_id", String(36), ForeignKey("contacts.id"), nullable=False, index=True),
    Column("identity_id", String(36), ForeignKey("identities.id"), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("event_type", String(20), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False, index=True),
    Column("subject", String(500)),  # email subject on sent emails
    Column("body", Text),  # message body on sent emails / LinkedIn messages
    CheckConstraint(f"event_type IN {EVENT_TYPES}", name="event_type_known"),
    CheckConstraint(f"channel IN {CHANNELS}", name="event_channel_known"),
)

conversation_tags = Table(
    "conversation_tags", metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("category", String(10), nullable=False),
    CheckConstraint(f"category IN {TAG_CATEGORIES}", name="tag_category_known"),
)

contact_conversation_tags = Table(
    "contact_conversation_tags", metadata,
    Column("contact_id", String(36), ForeignKey("contacts.id"), primary_key=True),
    Column("tag_id", String(36), ForeignKey("conversation_tags.id"), primary_key=True),
    Column("tagged_at", DateTime(timezone=True), nullable=False),
)

# Load order respects foreign keys.
TABLES = [users, identities, companies, contacts, campaigns, campaign_steps, campaign_contacts,
          campaign_events, conversation_tags, contact_conversation_tags]

"""The generator: deterministic, realistic, labelled, and causally consistent."""

import unicodedata

import pandas as pd
import pytest

from crm_pipelines.enginy.generator import generate_frames
from crm_pipelines.enginy.schema import TABLES


@pytest.fixture(scope="module")
def data():
    return generate_frames(3000, seed=7)


def fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def test_the_same_seed_gives_the_same_data_and_another_seed_does_not(data) -> None:
    again = generate_frames(3000, seed=7)
    for name, frame in data.enginy.items():
        pd.testing.assert_frame_equal(frame, again.enginy[name], obj=name)
    pd.testing.assert_frame_equal(data.crm.contacts, again.crm.contacts)
    pd.testing.assert_frame_equal(data.contact_labels, again.contact_labels)
    other = generate_frames(3000, seed=8)
    assert not other.enginy["contacts"]["first_name"].equals(data.enginy["contacts"]["first_name"])


def test_every_enginy_table_of_the_contract_is_generated_with_its_columns(data) -> None:
    for table in TABLES:
        assert list(data.enginy[table.name].columns) == [c.name for c in table.columns], table.name
        assert len(data.enginy[table.name]) > 0, table.name


def test_ids_are_unique_and_foreign_keys_resolve(data) -> None:
    e = data.enginy
    for name in ("users", "identities", "companies", "contacts", "campaigns", "campaign_steps", "campaign_events"):
        assert e[name]["id"].is_unique, name
    assert e["contacts"]["company_id"].dropna().isin(e["companies"]["id"]).all()
    assert e["contacts"]["owner_user_id"].isin(e["users"]["id"]).all()
    assert e["campaign_events"]["step_id"].isin(e["campaign_steps"]["id"]).all()
    assert e["campaign_events"]["contact_id"].isin(e["contacts"]["id"]).all()
    assert e["campaign_contacts"].duplicated(["campaign_id", "contact_id"]).sum() == 0
    assert e["contact_conversation_tags"]["tag_id"].isin(e["conversation_tags"]["id"]).all()
    crm = data.crm
    assert crm.contacts["company_seed_id"].dropna().isin(crm.companies["seed_id"]).all()
    assert crm.contacts["owner_seed_id"].isin(crm.users["seed_id"]).all()


def test_every_record_has_exactly_one_label_and_labels_never_reach_the_enginy_tables(data) -> None:
    labels = data.contact_labels
    enginy_ids = labels.loc[labels.side == "enginy", "record_id"]
    crm_ids = labels.loc[labels.side == "crm", "record_id"]
    assert sorted(enginy_ids) == sorted(data.enginy["contacts"]["id"])
    assert sorted(crm_ids) == sorted(data.crm.contacts["seed_id"])
    assert "entity_id" not in data.enginy["contacts"].columns
    companies = data.company_labels
    assert sorted(companies.loc[companies.side == "enginy", "record_id"]) == sorted(data.enginy["companies"]["id"])


def test_about_half_of_the_enginy_contacts_exist_in_the_crm(data) -> None:
    labels = data.contact_labels
    shared = set(labels.loc[labels.side == "enginy", "entity_id"]) & set(labels.loc[labels.side == "crm", "entity_id"])
    assert len(shared) == 1500


def _pairs(data, tag: str) -> pd.DataFrame:
    """Enginy ↔ CRM record pairs of the same person where one side carries ``tag``."""
    labels = data.contact_labels
    e = labels[labels.side == "enginy"].merge(data.enginy["contacts"], left_on="record_id", right_on="id")
    c = labels[labels.side == "crm"].merge(data.crm.contacts, left_on="record_id", right_on="seed_id")
    pairs = e.merge(c, on="entity_id", suffixes=("_e", "_c"))
    return pairs[pairs.variant_e.str.contains(tag, regex=False) | pairs.variant_c.str.contains(tag, regex=False)]


def canonical(text: str) -> str:
    """What every spelling variant of a value shares: letters, digits and @, folded."""
    return "".join(ch for ch in fold(text).casefold() if ch.isalnum() or ch == "@")


@pytest.mark.parametrize("tag, column", [
    ("email:case", "email"),
    ("first_name:case", "first_name"),
    ("last_name:accents", "last_name"),
    ("first_name:whitespace", "first_name"),
    ("last_name:punctuation", "last_name"),
    ("company_name:legal_suffix", "company_name"),
])
def test_a_labelled_variant_spells_the_same_value_differently(data, tag, column) -> None:
    pairs = _pairs(data, tag)
    # Where only one side carries the variant, the spellings differ.
    one_side = pairs[pairs.variant_e.str.contains(tag, regex=False) != pairs.variant_c.str.contains(tag, regex=False)]
    one_side = one_side.dropna(subset=[f"{column}_e", f"{column}_c"])
    assert len(one_side) > 0, f"no pair carries {tag}"
    assert (one_side[f"{column}_e"] != one_side[f"{column}_c"]).all()
    if tag != "company_name:legal_suffix":  # a dropped suffix is more than spelling
        for a, b in zip(one_side[f"{column}_e"], one_side[f"{column}_c"]):
            assert canonical(a) == canonical(b), (a, b)


def test_linkedin_url_variants_use_the_forms_people_paste(data) -> None:
    urls = pd.concat([data.enginy["contacts"]["linkedin_url"], data.crm.contacts["linkedin_url"]]).dropna()
    assert urls.str.startswith("https://es.linkedin.com/in/").any()
    assert urls.str.contains(r"\?originalSubdomain=", regex=True).any()
    assert urls.str.endswith("/").any()
    assert urls.str.startswith("http://").any()
    assert urls.str.startswith("https://m.linkedin.com/").any()
    assert urls.str.contains("%C3", regex=False).any(), "URL-encoded accented slugs"


def test_company_variants_cover_legal_suffixes_domains_and_extensions(data) -> None:
    tags = data.company_labels["variant"].str.split(";").explode()
    for tag in ("name:legal_suffix", "name:case", "domain:url_form", "domain:other_extension", "linkedin_url:form"):
        assert (tags == tag).any(), tag
    names = pd.concat([data.enginy["companies"]["name"], data.crm.companies["name"]])
    for suffix in ("GmbH", "S.L.", "Ltd", "B.V.", "SARL", "Inc"):
        assert names.str.contains(suffix, regex=False).any(), suffix
    domains = pd.concat([data.enginy["companies"]["domain"], data.crm.companies["domain"]])
    assert domains.str.startswith("www.").any() and domains.str.startswith("https://").any()
    for tld in (".com", ".es", ".co.uk", ".de"):
        assert domains.str.endswith(tld).any() or domains.str.endswith(tld + "/").any(), tld


def test_homonyms_are_different_people_who_share_a_name(data) -> None:
    labels = data.contact_labels.merge(
        pd.concat([data.enginy["contacts"].rename(columns={"id": "record_id"}),
                   data.crm.contacts.rename(columns={"seed_id": "record_id"})]), on="record_id")
    homonyms = labels[labels.variant.str.contains("homonym")]
    assert len(homonyms) > 0
    def plain(column: pd.Series) -> pd.Series:
        return column.str.casefold().map(fold).str.replace(r"[^a-z]", "", regex=True)

    names = labels.assign(name=plain(labels.first_name) + " " + plain(labels.last_name))
    entities_per_name = names.groupby("name")["entity_id"].nunique()
    assert (entities_per_name[names[names.record_id.isin(homonyms.record_id)]["name"]] > 1).all()


def test_the_crm_already_holds_labelled_duplicates_of_the_same_person(data) -> None:
    crm = data.contact_labels[data.contact_labels.side == "crm"]
    duplicates = crm[crm.variant.str.contains("crm_duplicate")]
    assert len(duplicates) == 3000 // 2 * 2 // 50  # 2% of the CRM's people
    assert duplicates.entity_id.isin(crm[~crm.variant.str.contains("crm_duplicate")].entity_id).all()


def test_campaign_events_are_causally_consistent(data) -> None:
    events = data.enginy["campaign_events"].merge(
        data.enginy["campaign_steps"][["id", "position", "step_type"]], left_on="step_id", right_on="id")
    key = ["contact_id", "campaign_id", "step_id"]
    sent = events[events.event_type == "sent"].set_index(key)["occurred_at"]
    later = events[events.event_type != "sent"].set_index(key)
    assert later.index.isin(sent.index).all(), "no open, click, reply or acceptance without a send"
    assert (later["occurred_at"] > sent.reindex(later.index)).all(), "nothing before its send"
    opened = events[events.event_type == "opened"].set_index(key)["occurred_at"]
    clicked = events[events.event_type == "clicked"].set_index(key)["occurred_at"]
    assert clicked.index.isin(opened.index).all()
    assert (clicked > opened.reindex(clicked.index)).all()
    assert set(events.loc[events.event_type.isin(["opened", "clicked"]), "step_type"]) == {"email"}
    assert set(events.loc[events.event_type == "accepted", "step_type"]) == {"linkedin_connection_request"}
    replies = events[events.event_type == "replied"]
    assert set(replies.step_type) <= {"email", "linkedin_message"}
    assert not replies.duplicated(["contact_id", "campaign_id"]).any(), "one reply ends a sequence"
    reply_pos = replies.set_index(["contact_id", "campaign_id"])["position"]
    sends = events[events.event_type == "sent"].set_index(["contact_id", "campaign_id"])
    after = sends[sends.index.isin(reply_pos.index)]
    assert (after["position"] <= reply_pos.reindex(after.index)).all(), "no step sent after a reply"
    members = data.enginy["campaign_contacts"].set_index(["contact_id", "campaign_id"])["added_at"]
    assert (sends["occurred_at"] > members.reindex(sends.index)).all(), "no send before the contact was added"


def test_sequences_include_linkedin_only_and_thirteen_step_campaigns(data) -> None:
    steps = data.enginy["campaign_steps"]
    per_campaign = steps.groupby("campaign_id")
    assert (per_campaign["channel"].agg(set) == {"linkedin"}).any()
    assert per_campaign.size().max() >= 13
    tags = data.enginy["contact_conversation_tags"].merge(
        data.enginy["conversation_tags"], left_on="tag_id", right_on="id")
    assert (tags.groupby("contact_id")["category"].nunique() > 1).any(), "contacts with mixed tag categories"


def test_too_few_contacts_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least 10"):
        generate_frames(3)

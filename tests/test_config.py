"""The integration config: every rule of the four setup steps, and errors that say where and how to fix."""

from pathlib import Path

import pytest
import yaml

from crm_pipelines.crms.registry import example_config
from crm_pipelines.config import (
    CAMPAIGN_PROPERTIES, DEFAULT_CONFIG, ConfigError, load_config, parse_config,
)


def salesforce() -> dict:
    return yaml.safe_load((example_config("salesforce")).read_text())


def hubspot() -> dict:
    return yaml.safe_load((example_config("hubspot")).read_text())


def problems(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "team.yaml")
    assert str(caught.value).startswith("team.yaml: "), "every message names the file"
    assert all(" — fix: " in p for p in caught.value.problems), caught.value.problems
    return caught.value.problems


@pytest.mark.parametrize("name, crm", [("salesforce", "salesforce"), ("hubspot", "hubspot"), ("dynamics", "dynamics")])
def test_each_shipped_example_loads_and_names_its_crm(name: str, crm: str) -> None:
    assert load_config(example_config(name)).active_crm == crm


def test_the_bundled_default_is_the_salesforce_example() -> None:
    assert load_config(None) == load_config(DEFAULT_CONFIG)
    assert load_config(None).active_crm == "salesforce"


def test_two_enabled_crms_are_refused_because_only_one_can_be_active() -> None:
    data = salesforce()
    data["crm"]["hubspot"] = {"enabled": True}
    [problem] = problems(data)
    assert problem.startswith("crm: salesforce and hubspot are both enabled")
    assert "set enabled: false" in problem


def test_a_config_with_no_enabled_crm_is_refused() -> None:
    data = salesforce()
    data["crm"]["salesforce"]["enabled"] = False
    [problem] = problems(data)
    assert problem.startswith("crm: no CRM is enabled")


def test_a_second_engagement_field_in_a_tab_is_refused() -> None:
    data = salesforce()
    data["field_mapping"]["contacts"].append({"type": "engagement", "crm_field": "Other__c", "value": "x"})
    [problem] = problems(data)
    assert problem.startswith("field_mapping.contacts: 2 engagement fields, at most 1 allowed")


def test_a_crm_field_mapped_twice_in_one_tab_is_refused_with_both_places() -> None:
    data = salesforce()
    data["field_mapping"]["companies"].append({"type": "fixed_value", "value": "x", "crm_field": "Website"})
    [problem] = problems(data)
    assert "field_mapping.companies[5].crm_field: 'Website' is mapped twice (also at field_mapping.companies[1])" in problem


def test_an_unknown_enginy_field_in_a_mapping_lists_the_known_ones() -> None:
    data = salesforce()
    data["field_mapping"]["contacts"][0]["enginy_field"] = "firstname"
    [problem] = problems(data)
    assert problem.startswith("field_mapping.contacts[0].enginy_field: unknown Enginy field 'firstname'")
    assert "first_name" in problem.split("fix:")[1]


def test_an_unknown_mapping_option_lists_the_five_options() -> None:
    data = salesforce()
    data["field_mapping"]["contacts"][2]["option"] = "always"
    [problem] = problems(data)
    assert problem.startswith("field_mapping.contacts[2].option: 'always' is not allowed")
    for option in ("bidirectional", "crm_overwrites_enginy", "enginy_overwrites_crm", "sync_if_empty", "deactivated"):
        assert option in problem


def test_an_unknown_field_type_lists_the_four_types() -> None:
    data = salesforce()
    data["field_mapping"]["contacts"][0]["type"] = "formula"
    [problem] = problems(data)
    assert problem.startswith("field_mapping.contacts[0]: type 'formula' is not a field type")
    for kind in ("enginy_field", "fixed_value", "manual_export", "engagement"):
        assert kind in problem


def test_a_field_mapping_without_a_type_is_refused() -> None:
    data = salesforce()
    del data["field_mapping"]["contacts"][0]["type"]
    [problem] = problems(data)
    assert problem.startswith("field_mapping.contacts[0]: a field mapping without a type")


def test_the_leads_tab_is_refused_for_a_crm_without_leads() -> None:
    data = hubspot()
    data["field_mapping"]["leads"] = [{"type": "enginy_field", "enginy_field": "email", "crm_field": "email"}]
    [problem] = problems(data)
    assert problem.startswith("field_mapping.leads: the Leads tab exists for Salesforce, Pipedrive and Zoho CRM only")


def test_pipedrive_maps_leads_too() -> None:
    """The seeds: setup "only varies slightly for Pipedrive: in step 2 you can also map Leads"."""
    data = hubspot()
    data["crm"] = {"pipedrive": {"enabled": True}}
    data["field_mapping"]["leads"] = [{"type": "enginy_field", "enginy_field": "email", "crm_field": "title"}]
    assert parse_config(data).field_mapping.leads[0].crm_field == "title"


def test_campaign_mapping_for_leads_is_refused_for_a_crm_without_leads() -> None:
    data = hubspot()
    data["campaign_mapping"]["leads"] = {"sequence_status": "x"}
    [problem] = problems(data)
    assert problem.startswith("campaign_mapping.leads: Leads exist for Salesforce, Pipedrive and Zoho CRM only")


def test_create_on_duplicate_warning_is_refused_outside_salesforce() -> None:
    data = hubspot()
    data["create_on_duplicate_warning"] = True
    [problem] = problems(data)
    assert problem.startswith("create_on_duplicate_warning: duplicate-rule warnings are a Salesforce feature")


def test_create_on_duplicate_warning_defaults_to_off() -> None:
    data = salesforce()
    del data["create_on_duplicate_warning"]
    assert parse_config(data).create_on_duplicate_warning is False


def test_an_unknown_campaign_property_lists_the_thirteen() -> None:
    data = salesforce()
    data["campaign_mapping"]["contacts"]["campaign_replies"] = "X__c"
    [problem] = problems(data)
    assert problem.startswith("campaign_mapping.contacts.campaign_replies: unknown campaign property")
    assert all(p in problem for p in CAMPAIGN_PROPERTIES)
    assert len(CAMPAIGN_PROPERTIES) == 13


def test_a_custom_contact_identifier_without_conditions_is_refused() -> None:
    data = salesforce()
    data["contact_identifier"] = {"rule": "custom"}
    [problem] = problems(data)
    assert problem.startswith("contact_identifier: rule custom needs at least one non-empty AND-group")


def test_custom_conditions_with_a_predefined_rule_are_refused() -> None:
    data = salesforce()
    data["contact_identifier"]["custom"] = [[{"enginy": "email", "crm": "email"}]]
    [problem] = problems(data)
    assert problem.startswith("contact_identifier: custom conditions are given but rule is 'linkedin_or_name_company'")


def test_a_custom_condition_on_an_unknown_enginy_field_names_its_position() -> None:
    data = salesforce()
    data["contact_identifier"] = {"rule": "custom", "custom": [[{"enginy": "email", "crm": "email"}],
                                                               [{"enginy": "mail", "crm": "email"}]]}
    [problem] = problems(data)
    assert problem.startswith("contact_identifier.custom[1][0].enginy: unknown Enginy field 'mail'")


def test_a_custom_condition_on_an_unknown_crm_field_suggests_raw_fields() -> None:
    data = salesforce()
    data["company_identifier"] = {"rule": "custom", "custom": [[{"enginy": "domain", "crm": "website"}]]}
    [problem] = problems(data)
    assert problem.startswith("company_identifier.custom[0][0].crm: unknown CRM field 'website'")
    assert "raw.<CRM field name>" in problem


def test_a_custom_condition_may_name_any_raw_crm_field() -> None:
    data = salesforce()
    data["company_identifier"] = {"rule": "custom", "custom": [
        [{"enginy": "domain", "crm": "raw.Website", "normalize": "domain"}],
        [{"enginy": "linkedin_url", "crm": "linkedin_url"}]]}
    config = parse_config(data)
    assert config.company_identifier.custom[0][0].crm == "raw.Website"
    assert len(config.company_identifier.custom) == 2


def test_any_domain_extension_is_refused_with_a_custom_company_rule() -> None:
    data = salesforce()
    data["company_identifier"] = {"rule": "custom", "include_any_domain_extension": True,
                                  "custom": [[{"enginy": "domain", "crm": "domain"}]]}
    [problem] = problems(data)
    assert problem.startswith("company_identifier: include_any_domain_extension applies to the domain rules only")


def test_an_unknown_association_type_is_refused() -> None:
    data = salesforce()
    data["default_association_type"] = "secondary"
    [problem] = problems(data)
    assert problem.startswith("default_association_type: 'secondary' is not allowed")
    assert "primary_remove_previous" in problem


def test_a_misspelled_key_is_refused_rather_than_ignored() -> None:
    data = salesforce()
    data["asociations"] = data.pop("associations")
    [problem] = problems(data)
    assert problem == "asociations: unknown key — fix: remove it or check its spelling"


def test_several_problems_are_reported_together() -> None:
    data = salesforce()
    data["default_association_type"] = "secondary"
    data["typo"] = 1
    assert len(problems(data)) == 2


def test_a_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("crm:\n  salesforce:\n    enabled: true\n  hubspot: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: line ")
    assert "not valid YAML" in str(caught.value)


def test_a_missing_file_points_at_the_examples(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert "no such file" in str(caught.value)
    assert str(example_config("salesforce")) in str(caught.value)


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- salesforce\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "must be a mapping" in str(caught.value)


def test_field_types_and_user_mapping_are_read_as_written() -> None:
    config = load_config(example_config("salesforce"))
    types = [m.type for m in config.field_mapping.contacts]
    assert types.count("engagement") == 1 and "manual_export" in types and "fixed_value" in types
    assert config.user_mapping.default_owner == "pat.default@enginy-customer.com"
    assert config.company_identifier.include_any_domain_extension is True
    assert config.crm.settings.environment == "sandbox"


def test_inbound_sync_rules_read_as_or_of_and_groups() -> None:
    rules = load_config(example_config("salesforce")).inbound_sync_rules.leads
    assert [[c.field for c in group] for group in rules] == [["Title"], ["AnnualRevenue"]]


def test_an_inbound_sync_rule_without_a_value_names_its_position() -> None:
    data = salesforce()
    data["inbound_sync_rules"]["contacts"] = [[{"field": "Title", "operator": "contains"}]]
    [problem] = problems(data)
    assert problem == "inbound_sync_rules.contacts[0][0]: operator contains needs a value — fix: add value: …"


def test_automation_settings_are_checked_where_they_are_written(tmp_path: Path, monkeypatch) -> None:
    data = {**salesforce(), "automation": {"timezone": "Europe/Nowhere"}}
    assert problems(data) == ["automation.timezone: 'Europe/Nowhere' is not a time zone — fix: use an IANA name "
                              "such as UTC, Europe/Madrid or America/New_York"]
    assert problems({**salesforce(), "automation": {"sync_interval_minutes": 0}})[0].startswith(
        "automation.sync_interval_minutes:")
    # The cron is Dagster's to read: a wrong one stops the code location with the path and the fix.
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump({**salesforce(), "automation": {"nightly_reconciliation": "0 25 * *"}}))
    monkeypatch.setenv("CRM_PIPELINES_CONFIG", str(path))
    from crm_pipelines.definitions import defs

    with pytest.raises(ConfigError) as refused:
        defs()
    assert str(refused.value).startswith(f"{path}: automation.nightly_reconciliation: '0 25 * *' is not a cron")


def test_a_config_saved_with_a_utf8_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "integration.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + example_config("hubspot").read_bytes())
    assert load_config(path).active_crm == "hubspot"


@pytest.mark.parametrize("encoding, says", [("utf-16", "saved as UTF-16"), ("utf-16-le", "saved as UTF-16"),
                                            ("cp1252", "is not UTF-8")])
def test_a_config_saved_in_another_encoding_names_the_file_and_the_fix(tmp_path: Path, encoding: str,
                                                                        says: str) -> None:
    """What a Windows editor may save: a bare UnicodeDecodeError told nobody which file, or what to do."""
    text = yaml.safe_dump(salesforce()) + "# the CRM of Société Générale\n"
    path = tmp_path / "integration.yaml"
    path.write_bytes(text.encode(encoding))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert str(caught.value).startswith(f"{path}: ") and says in problem and "fix: save it as UTF-8" in problem
    if encoding == "cp1252":  # where it stops reading, and why
        assert problem.startswith(f"line {text.count(chr(10))}: byte 0xe9 is not UTF-8")

"""`crm-pipelines review-mapping` against the schema the sandbox CRM describes."""

from pathlib import Path

import dagster as dg
import pytest
import yaml
from typer.testing import CliRunner

from crm_pipelines.crms.registry import example_config
from crm_pipelines.assets.crm import crm_schema
from crm_pipelines.cli import app
from crm_pipelines.resources.warehouse import Warehouse, WarehouseIOManager
from tests.connectors.test_snapshot_assets import CRMS


@pytest.fixture(params=sorted(CRMS))
def described(request, sandbox, tmp_path: Path):
    """A warehouse holding crm_schema as the CRM describes itself."""
    spec = CRMS[request.param]
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    warehouse = Warehouse(url=url)
    assert dg.materialize([crm_schema], resources={
        "crm": spec.resource(sandbox), "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse)}).success
    return spec.name, url


def review(url: str, config: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["review-mapping", "--config", str(config)],
                                env={"CRM_PIPELINES_WAREHOUSE_URL": url})
    return result.exit_code, result.output


def test_each_example_mapping_reviews_without_errors_against_its_crm(described) -> None:
    crm, url = described
    code, output = review(url, example_config(crm))
    assert code == 0, output
    assert " 0 errors" in output and "ok " in output


def test_mistakes_in_a_mapping_are_errors_and_warnings_that_say_what_to_do(described, tmp_path: Path) -> None:
    crm, url = described
    config = yaml.safe_load((example_config(crm)).read_text())
    read_only, company_field, picklist = {
        "salesforce": ("CreatedDate", "NumberOfEmployees", "LeadSource"),
        "hubspot": ("hs_object_id", "numberofemployees", "lifecyclestage"),
        "dynamics": ("createdon", "numberofemployees", "preferredcontactmethodcode"),
        "pipedrive": ("add_time", "Employees", "Sequence status"),
        "zoho": ("Modified_Time", "Employees", "Lead_Source"),
        "tribecrm": ("DateModified", "NumberOfEmployees", None),  # TribeCRM describes no picklists
    }[crm]
    config["field_mapping"]["contacts"] = [
        {"type": "fixed_value", "value": "2026-01-01", "crm_field": read_only},
        {"type": "enginy_field", "enginy_field": "company_name", "crm_field": company_field},
        {"type": "enginy_field", "enginy_field": "email", "crm_field": "no_such_field_anywhere"},
    ] + ([{"type": "enginy_field", "enginy_field": "job_title", "crm_field": picklist}] if picklist else [])
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(config))
    code, output = review(url, path)
    assert code == 1
    rows = [line for line in output.splitlines()
            if line.startswith(("ok", "WARNING", "ERROR")) and line.split()[1] == "contacts"]
    # CRM field names may hold spaces (Pipedrive's custom fields): the line starts with the name.
    lines = {field: next(line for line in rows if line.split(None, 2)[2].startswith(field + " "))
             for field in (read_only, company_field, picklist, "no_such_field_anywhere") if field}
    assert lines[read_only].startswith("ERROR") and ("read-only" in lines[read_only]
                                                     or "new record" in lines[read_only])
    assert lines[company_field].startswith("ERROR") and "companies" in lines[company_field]
    assert picklist is None or (lines[picklist].startswith("WARNING") and "internal values" in lines[picklist])
    assert lines["no_such_field_anywhere"].startswith("ERROR")


def test_without_a_schema_table_the_command_says_how_to_get_one(tmp_path: Path) -> None:
    code, output = review(f"duckdb:///{tmp_path / 'empty.duckdb'}", example_config("salesforce"))
    assert code == 2 and "materialize the crm_schema asset" in output

"""`crm-pipelines match` on CSV files, as an analyst runs it on exports."""

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from crm_pipelines.cli import app

RULES = """\
left_id: id
right_id: Id
custom:
  - [{enginy: linkedin_url, crm: LinkedIn, normalize: linkedin}]
  - [{enginy: first_name, crm: FirstName, normalize: person_name},
     {enginy: last_name, crm: LastName, normalize: person_name},
     {enginy: company_name, crm: Company, normalize: company_name}]
"""


@pytest.fixture
def files(tmp_path: Path, world) -> dict[str, Path]:
    left = tmp_path / "enginy.csv"
    world.enginy_contacts[["id", "first_name", "last_name", "company_name", "linkedin_url"]].to_csv(left, index=False)
    crm = world.crm_people.rename(columns={"crm_id": "Id", "first_name": "FirstName", "last_name": "LastName",
                                           "company_name": "Company", "linkedin_url": "LinkedIn"})
    right = tmp_path / "crm.csv"
    crm[["Id", "FirstName", "LastName", "Company", "LinkedIn"]].to_csv(right, index=False)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    return {"left": left, "right": right, "rules": rules, "out": tmp_path / "pairs.csv"}


def run(*args: str):
    return CliRunner().invoke(app, ["match", *args])


def test_linking_two_files_writes_every_pair_the_rules_find_with_its_group(files, world):
    result = run("--left", str(files["left"]), "--right", str(files["right"]), "--config", str(files["rules"]),
                 "--out", str(files["out"]))
    assert result.exit_code == 0, result.output
    pairs = pd.read_csv(files["out"], dtype=str)
    assert list(pairs.columns) == ["left_id", "right_id", "outcome", "matched_by", "score"]
    assert set(pairs["outcome"]) == {"matched", "ambiguous"}
    same = [world.entity[a] == world.entity[b] for a, b in zip(pairs["left_id"], pairs["right_id"])]
    shared = world.enginy_contacts["id"].map(world.entity).isin(set(world.crm_people["crm_id"].map(world.entity)))
    assert sum(same) >= shared.sum()  # every Enginy contact the CRM holds is paired with it
    assert sum(same) / len(pairs) > 0.99
    assert pairs["matched_by"].str.contains("FirstName").any()  # the files' own column names
    assert f"{len(pairs):,} pairs" in result.output


def test_near_misses_come_with_a_score(files, tmp_path):
    crm = pd.read_csv(files["right"], dtype=str).rename(columns={"FirstName": "first_name", "LastName": "last_name",
                                                                 "Company": "company_name"})
    crm.loc[0, "first_name"] = crm.loc[0, "first_name"][:-1]  # a record the rules now miss
    crm.loc[0, "LinkedIn"] = None
    crm.to_csv(files["right"], index=False)
    files["rules"].write_text(RULES.replace("FirstName", "first_name").replace("LastName", "last_name")
                              .replace("Company", "company_name"))
    result = run("--left", str(files["left"]), "--right", str(files["right"]), "--config", str(files["rules"]),
                 "--out", str(files["out"]), "--near-misses")
    assert result.exit_code == 0, result.output
    near = pd.read_csv(files["out"]).query("outcome == 'near_miss'")
    assert crm.loc[0, "Id"] in set(near["right_id"])
    assert near["score"].between(0.9, 1).all() and near["matched_by"].str.startswith("first_name ").all()


def test_one_file_alone_is_searched_for_duplicates(files, world):
    result = run("--left", str(files["right"]), "--config", str(files["rules"]), "--out", str(files["out"]))
    assert result.exit_code == 2  # the rules name Enginy columns the CRM file lacks…
    assert "crm.csv: no column 'company_name', which the rules file names — fix: use one of Id, FirstName" \
        in result.output
    files["rules"].write_text("left_id: Id\ncustom:\n  - [{enginy: LinkedIn, crm: LinkedIn, normalize: linkedin}]\n"
                              "  - [{enginy: FirstName, crm: FirstName, normalize: person_name}, "
                              "{enginy: LastName, crm: LastName, normalize: person_name}, "
                              "{enginy: Company, crm: Company, normalize: company_name}]\n")
    result = run("--left", str(files["right"]), "--config", str(files["rules"]), "--out", str(files["out"]))
    assert result.exit_code == 0, result.output
    pairs = pd.read_csv(files["out"], dtype=str)
    assert set(pairs["outcome"]) == {"duplicate"}
    known = {r for r in world.crm_people["crm_id"] if "crm_duplicate" in world.variants[r].split(";")}
    assert {world.entity[r] for r in known} <= {world.entity[r] for r in pd.concat([pairs["left_id"], pairs["right_id"]])}


def test_a_rules_file_mistake_names_the_file_the_path_and_the_fix(files):
    files["rules"].write_text("custom:\n  - [{enginy: first_name, crm: FirstName, normalize: fuzzy}]\n")
    result = run("--left", str(files["left"]), "--right", str(files["right"]), "--config", str(files["rules"]),
                 "--out", str(files["out"]))
    assert result.exit_code == 2
    assert f"{files['rules']}: custom[0][0].normalize: 'fuzzy' is not allowed — fix: use one of" in result.output
    assert not files["out"].exists()

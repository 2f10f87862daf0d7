"""The users mapping names CRM users by id or by email, as the seeds' Step 4 lets a person do."""

import pandas as pd

from crm_pipelines.assets.export import _owners
from crm_pipelines.config import load_config


def test_a_mapped_email_becomes_the_active_crm_users_id_and_an_unknown_one_owns_nothing() -> None:
    config = load_config().model_copy(update={"user_mapping": load_config().user_mapping.model_copy(update={
        "users": {"u1": "Ada@Acme.com", "u2": "gone@acme.com", "u3": "005XYZ"}, "default_owner": "nobody@acme.com"})})
    crm_users = pd.DataFrame({"crm_id": ["005ADA", "005OLD"], "email": ["ada@acme.com", "gone@acme.com"],
                              "is_active": [True, False]})
    owners = _owners(config, crm_users, pd.DataFrame(columns=["id", "email"]))
    assert owners.user_mapping == {"u1": "005ADA", "u2": None, "u3": "005XYZ"}
    assert owners.default_owner is None, "an inactive or unknown user is never sent as an owner"

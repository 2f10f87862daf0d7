"""A seeded sandbox org per CRM that logs activities."""

import pytest

from tests.activities.crms import CRMS, Org, seed_org


@pytest.fixture(params=sorted(CRMS))
def org(request, sandbox) -> Org:
    return seed_org(sandbox, CRMS[request.param])

"""The sandbox store's look-up by value: what an emulator upserts on (an email, an external id)
is found through an index the store keeps current, so the answer is the one a scan would give."""

from crm_pipelines.sandbox.store import Store


def email(record) -> str | None:
    value = record.fields.get("email")
    return value.lower() if value else None


def found(store: Store, wanted: str) -> list[str]:
    return [r.id for r in store.lookup("crm", "contacts", "email", email, wanted)]


def test_a_look_up_by_value_follows_every_write_and_a_reset() -> None:
    store = Store()
    store.create("crm", "contacts", "1", {"email": "Ada@Example.com"})
    assert found(store, "ada@example.com") == ["1"]  # the index is built here, from what is there
    store.create("crm", "contacts", "2", {"email": "bob@example.com"})
    assert found(store, "bob@example.com") == ["2"], "a record created after the index was built"
    store.update("crm", "contacts", "1", {"email": "ada@new.example"})
    assert found(store, "ada@example.com") == [] and found(store, "ada@new.example") == ["1"]
    store.delete("crm", "contacts", "2")
    assert found(store, "bob@example.com") == [], "a deleted record is not found"
    store.undelete("crm", "contacts", "2")
    assert found(store, "bob@example.com") == ["2"]
    store.create("crm", "contacts", "3", {"email": "BOB@example.com"})
    assert found(store, "bob@example.com") == ["2", "3"], "every holder, in the order they came to hold it"
    store.records("crm", "contacts")[0].fields["email"] = "changed@behind.the.back"
    assert found(store, "ada@new.example") == [], "a hit is checked against the record itself"
    store.reset()
    assert found(store, "bob@example.com") == []
    store.create("crm", "contacts", "9", {"email": "bob@example.com"})
    assert found(store, "bob@example.com") == ["9"]


def test_a_kept_answer_serves_until_its_table_sees_a_write() -> None:
    """A list endpoint's pages share one sorted answer (Store.answer): any create, update or delete
    of that table makes the next page build it again; writes elsewhere do not."""
    store = Store()
    builds: list[int] = []

    def emails() -> list[str]:
        builds.append(1)
        return sorted(r.fields["email"] for r in store.records("crm", "contacts"))

    def answer() -> list[str]:
        return store.answer("crm", "contacts", "by email", emails)

    store.create("crm", "contacts", "1", {"email": "b@example.com"})
    assert answer() == ["b@example.com"] and answer() == ["b@example.com"] and len(builds) == 1
    store.create("crm", "companies", "c1", {"email": "co@example.com"})
    assert answer() == ["b@example.com"] and len(builds) == 1, "another table's write"
    store.create("crm", "contacts", "2", {"email": "a@example.com"})
    assert answer() == ["a@example.com", "b@example.com"]
    store.update("crm", "contacts", "2", {"email": "c@example.com"})
    assert answer() == ["b@example.com", "c@example.com"]
    store.delete("crm", "contacts", "1")
    assert answer() == ["c@example.com"] and len(builds) == 4

"""A seeded, deterministic generator of realistic Enginy and CRM data with ground truth.

Both sides are drawn from one population of people and companies (entities). Part of the
population is on both sides (the overlap matching must find), part on one side only. Where an
entity is on both sides, one side may spell it differently — case, accents, whitespace,
punctuation, legal suffixes, domain and LinkedIn URL forms, email case — and every record
carries its entity id and the variants applied in a separate labels table, which the pipeline
never reads and tests and benchmarks use to score matching. Homonyms (different people who
share a name) and duplicates already inside the CRM are generated on purpose.

Everything is vectorised over numpy arrays or simple list comprehensions over the rows a
variant touches, so a million contacts take about a minute with the database writes.
"""

from __future__ import annotations

import functools
import unicodedata
import urllib.parse
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crm_pipelines.enginy import vocabulary as vocab
from crm_pipelines.enginy.crm_side import SeedData

EPOCH = np.datetime64("2026-01-05T09:00:00", "ms")
DAY_MS = 86_400_000


@dataclass
class GeneratedData:
    """In-memory output of the generator: Enginy tables, the CRM side and the labels."""

    enginy: dict[str, pd.DataFrame]
    crm: SeedData
    contact_labels: pd.DataFrame
    company_labels: pd.DataFrame
    summary: dict[str, int] = field(default_factory=dict)


@functools.lru_cache(maxsize=65536)
def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _ids(prefix: str, n: int, start: int = 0) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(np.arange(start, start + n).astype(str), 8))


def _pick(rng: np.random.Generator, options: list, n: int) -> np.ndarray:
    return np.asarray(options, dtype=object)[rng.integers(0, len(options), n)]


def _times(offsets_ms: np.ndarray) -> pd.DatetimeIndex:
    return pd.to_datetime(EPOCH + offsets_ms.astype("timedelta64[ms]")).tz_localize("UTC")


class _Variants:
    """Applies spelling variants to string columns and records which were applied."""

    def __init__(self, n: int) -> None:
        self.tags: list[list[str]] = [[] for _ in range(n)]

    def apply(self, column: np.ndarray, rows: np.ndarray, fn, tag: str) -> None:
        for i in rows:
            value = column[i]
            if value is None or value != value:
                continue
            changed = fn(value, i)
            if changed != value:
                column[i] = changed
                self.tags[i].append(tag)

    def labels(self) -> list[str]:
        return [";".join(t) for t in self.tags]


def _company_variant_fns(rng: np.random.Generator, suffixes: np.ndarray):
    def legal_suffix(name: str, i: int) -> str:
        suffix = suffixes[i]
        if not suffix or not name.endswith(suffix):
            return name
        base = name[: -len(suffix)].rstrip()
        choice = rng.integers(0, 3)
        if choice == 0:
            return base  # suffix dropped
        if choice == 1:
            return f"{base}, {suffix}"
        spellings = vocab.SUFFIX_SPELLINGS.get(suffix, [suffix])
        return f"{base} {spellings[rng.integers(0, len(spellings))]}"

    return legal_suffix


def _case(value: str, i: int) -> str:
    return value.upper() if i % 2 else value.lower()


def _accents(value: str, i: int) -> str:
    return _fold(value)


def _whitespace(value: str, i: int) -> str:
    return f"  {value.replace(' ', '   ')} " if i % 2 else f"{value}  "


def _punctuation(value: str, i: int) -> str:
    swapped = value.replace("-", " ").replace("'", "").replace(".", "")
    if swapped != value:
        return swapped
    return f"{value}." if i % 3 == 0 else value


def _linkedin_form(url: str, i: int) -> str:
    # url is the canonical https://www.linkedin.com/<kind>/<slug>
    path = url.split("linkedin.com", 1)[1]
    kind, slug = path.strip("/").split("/", 1)
    form = i % 7
    if form == 0:
        return f"https://es.linkedin.com{path}"
    if form == 1:
        return f"{url}/"
    if form == 2:
        return f"{url}?originalSubdomain=uk&trk=public_profile"
    if form == 3:
        return f"http://www.linkedin.com{path}"
    if form == 4:
        return f"https://m.linkedin.com{path}"
    if form == 5:
        return f"https://www.linkedin.com/{kind}/{urllib.parse.quote(slug)}/"
    return f"linkedin.com{path}"


def _email_case(email: str, i: int) -> str:
    local, _, domain = email.partition("@")
    return f"{local.title()}@{domain.capitalize()}"


def _domain_form(domain: str, i: int) -> str:
    return f"www.{domain}" if i % 2 else f"https://www.{domain}/"


def generate_frames(contacts: int, seed: int = 42, overlap: float = 0.5) -> GeneratedData:
    """Generate ``contacts`` Enginy contacts and a CRM of about the same size.

    ``overlap`` is the share of Enginy contacts whose person also exists in the CRM.
    The same arguments always give the same data.
    """
    if contacts < 10:
        raise ValueError("--contacts must be at least 10")
    rng = np.random.default_rng(seed)
    n_shared = int(contacts * overlap)
    n_enginy_only = contacts - n_shared
    n_crm_only = n_enginy_only
    n_people = contacts + n_crm_only
    n_companies = max(6, contacts // 5)

    companies = _company_entities(rng, n_companies)
    people = _person_entities(rng, n_people, n_enginy_only, n_shared, n_companies, companies)

    # Which entities each side holds: Enginy [0, contacts), CRM [n_enginy_only, n_people);
    # companies: Enginy [0, 0.8C), CRM [0.3C, C); people were assigned companies so that
    # each side's contacts point at that side's companies.
    enginy_people = np.arange(0, contacts)
    crm_people = np.arange(n_enginy_only, n_people)
    # Duplicates already inside the CRM: 2% of CRM people get a second record.
    crm_dupes = rng.choice(crm_people, size=max(1, len(crm_people) // 50), replace=False)
    crm_people = np.concatenate([crm_people, np.sort(crm_dupes)])

    lo, hi = int(0.3 * n_companies), int(0.8 * n_companies)
    enginy_company_entities = np.arange(0, hi)
    crm_company_entities = np.arange(lo, n_companies)
    crm_company_dupes = rng.choice(crm_company_entities, size=max(1, len(crm_company_entities) // 50), replace=False)
    crm_company_entities = np.concatenate([crm_company_entities, np.sort(crm_company_dupes)])

    # One side of each shared entity gets the variants; records on one side only get them
    # too, at the same rate, so variants are not a tell of overlap.
    vary_enginy_people = rng.random(n_people) < 0.5
    vary_enginy_companies = rng.random(n_companies) < 0.5

    e_companies, e_company_tags = _company_records(
        rng, companies, enginy_company_entities, vary_enginy_companies[enginy_company_entities],
        first_of_dupes=None)
    c_companies, c_company_tags = _company_records(
        rng, companies, crm_company_entities, ~vary_enginy_companies[crm_company_entities],
        first_of_dupes=len(crm_company_entities) - len(crm_company_dupes))

    e_contacts, e_contact_tags = _contact_records(
        rng, people, companies, enginy_people, vary_enginy_people[enginy_people], first_of_dupes=None)
    c_contacts, c_contact_tags = _contact_records(
        rng, people, companies, crm_people, ~vary_enginy_people[crm_people],
        first_of_dupes=len(crm_people) - len(crm_dupes))

    users, identities, crm_users = _users(rng)
    enginy_company_ids = _ids("co", len(enginy_company_entities))
    crm_company_ids = _ids("acct", len(crm_company_entities))
    enginy_contact_ids = _ids("ct", len(enginy_people))
    crm_contact_ids = _ids("crm", len(crm_people))

    # Each side's contact links to that side's (first) record of its company entity.
    e_company_of_entity = pd.Series(enginy_company_ids, index=enginy_company_entities)
    e_company_of_entity = e_company_of_entity[~e_company_of_entity.index.duplicated()]
    c_company_of_entity = pd.Series(crm_company_ids, index=crm_company_entities)
    c_company_of_entity = c_company_of_entity[~c_company_of_entity.index.duplicated()]

    user_ids = users["id"].to_numpy()
    crm_user_ids = crm_users["seed_id"].to_numpy()
    e_company_entity_of_contact = people["company"][enginy_people]
    c_company_entity_of_contact = people["company"][crm_people]

    e_created = rng.integers(0, 200 * DAY_MS, len(enginy_people))
    enginy_contacts = pd.DataFrame({
        "id": enginy_contact_ids,
        "first_name": e_contacts["first_name"],
        "last_name": e_contacts["last_name"],
        "email": e_contacts["email"],
        "phone": e_contacts["phone"],
        "job_title": e_contacts["job_title"],
        "linkedin_url": e_contacts["linkedin_url"],
        "company_id": e_company_of_entity.reindex(e_company_entity_of_contact).to_numpy(),
        "company_name": e_contacts["company_name"],
        "owner_user_id": user_ids[rng.integers(0, len(user_ids), len(enginy_people))],
        "created_at": _times(e_created),
        "updated_at": _times(e_created + rng.integers(0, 60 * DAY_MS, len(enginy_people))),
    })
    ec_created = rng.integers(0, 200 * DAY_MS, len(enginy_company_entities))
    enginy_companies = pd.DataFrame({
        "id": enginy_company_ids,
        "name": e_companies["name"],
        "domain": e_companies["domain"],
        "website": e_companies["website"],
        "linkedin_url": e_companies["linkedin_url"],
        "industry": companies["industry"][enginy_company_entities],
        "employees": companies["employees"][enginy_company_entities],
        "country": companies["country"][enginy_company_entities],
        "owner_user_id": user_ids[rng.integers(0, len(user_ids), len(enginy_company_entities))],
        "created_at": _times(ec_created),
        "updated_at": _times(ec_created + rng.integers(0, 60 * DAY_MS, len(enginy_company_entities))),
    })

    c_created = rng.integers(-400 * DAY_MS, 0, len(crm_people))
    crm_contacts = pd.DataFrame({
        "seed_id": crm_contact_ids,
        "first_name": c_contacts["first_name"],
        "last_name": c_contacts["last_name"],
        "email": c_contacts["email"],
        "phone": c_contacts["phone"],
        "job_title": c_contacts["job_title"],
        "linkedin_url": c_contacts["linkedin_url"],
        "company_seed_id": c_company_of_entity.reindex(c_company_entity_of_contact).to_numpy(),
        "company_name": c_contacts["company_name"],
        "owner_seed_id": crm_user_ids[rng.integers(0, len(crm_user_ids), len(crm_people))],
        "lead_status": _pick(rng, ["Open - Not Contacted", "Working - Contacted", "Qualified"], len(crm_people)),
        "created_at": _times(c_created),
        "modified_at": _times(c_created + rng.integers(0, 100 * DAY_MS, len(crm_people))),
        "is_lead": rng.random(len(crm_people)) < 0.15,
    })
    cc_created = rng.integers(-400 * DAY_MS, 0, len(crm_company_entities))
    crm_companies = pd.DataFrame({
        "seed_id": crm_company_ids,
        "name": c_companies["name"],
        "domain": c_companies["domain"],
        "website": c_companies["website"],
        "linkedin_url": c_companies["linkedin_url"],
        "phone": companies["phone"][crm_company_entities],
        "industry": companies["industry"][crm_company_entities],
        "employees": companies["employees"][crm_company_entities],
        "owner_seed_id": crm_user_ids[rng.integers(0, len(crm_user_ids), len(crm_company_entities))],
        "created_at": _times(cc_created),
        "modified_at": _times(cc_created + rng.integers(0, 100 * DAY_MS, len(crm_company_entities))),
    })

    contact_labels = pd.DataFrame({
        "side": np.concatenate([np.full(len(enginy_people), "enginy", dtype=object),
                                np.full(len(crm_people), "crm", dtype=object)]),
        "record_id": np.concatenate([enginy_contact_ids, crm_contact_ids]).astype(object),
        "entity_id": np.concatenate([_entity_ids("person", enginy_people), _entity_ids("person", crm_people)]),
        "variant": e_contact_tags + c_contact_tags,
    })
    company_labels = pd.DataFrame({
        "side": np.concatenate([np.full(len(enginy_company_entities), "enginy", dtype=object),
                                np.full(len(crm_company_entities), "crm", dtype=object)]),
        "record_id": np.concatenate([enginy_company_ids, crm_company_ids]).astype(object),
        "entity_id": np.concatenate([_entity_ids("company", enginy_company_entities),
                                     _entity_ids("company", crm_company_entities)]),
        "variant": e_company_tags + c_company_tags,
    })

    campaign_tables = _campaigns(rng, enginy_contacts, identities)
    enginy = {
        "users": users,
        "identities": identities,
        "companies": enginy_companies,
        "contacts": enginy_contacts,
        **campaign_tables,
    }
    crm = SeedData(users=crm_users, companies=crm_companies, contacts=crm_contacts)
    summary = {
        "enginy_contacts": len(enginy_contacts), "enginy_companies": len(enginy_companies),
        "crm_contacts": len(crm_contacts), "crm_companies": len(crm_companies),
        "shared_people": n_shared, "crm_duplicate_contacts": len(crm_dupes),
        "campaign_events": len(campaign_tables["campaign_events"]),
    }
    return GeneratedData(enginy, crm, contact_labels, company_labels, summary)


def _entity_ids(prefix: str, entities: np.ndarray) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(entities.astype(str), 8)).astype(object)


def _company_entities(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    # Unique brand names: a permutation of indexes written in base len(SYLLABLES).
    base = len(vocab.SYLLABLES)
    order = rng.permutation(n) + base  # at least two syllables
    syllables = np.asarray(vocab.SYLLABLES, dtype=object)
    brands = []
    for k in order:
        parts = []
        while k:
            k, r = divmod(int(k), base)
            parts.append(syllables[r])
        brands.append("".join(parts).capitalize())
    brands = np.asarray(brands, dtype=object)
    countries = np.asarray(list(vocab.COUNTRIES), dtype=object)[rng.integers(0, len(vocab.COUNTRIES), n)]
    words = _pick(rng, vocab.BUSINESS_WORDS, n)
    suffixes = np.asarray(
        [vocab.COUNTRIES[c][2][rng.integers(0, len(vocab.COUNTRIES[c][2]))] for c in countries], dtype=object)
    no_suffix = rng.random(n) < 0.15
    suffixes[no_suffix] = ""
    names = np.asarray([" ".join(p for p in (b, w, s) if p) for b, w, s in zip(brands, words, suffixes)],
                       dtype=object)
    slugs = np.asarray([_fold(b).lower() for b in brands], dtype=object)
    domains = np.asarray([s + vocab.COUNTRIES[c][0] for s, c in zip(slugs, countries)], dtype=object)
    return {
        "name": names, "brand": brands, "suffix": suffixes, "country": countries,
        "domain": domains, "slug": slugs,
        "linkedin_url": np.asarray([f"https://www.linkedin.com/company/{s}" for s in slugs], dtype=object),
        "industry": _pick(rng, vocab.INDUSTRIES, n),
        "employees": rng.integers(2, 20_000, n),
        "phone": np.asarray([f"+34 9{x:08d}" for x in rng.integers(0, 10**8, n)], dtype=object),
    }


def _person_entities(rng: np.random.Generator, n: int, n_enginy_only: int, n_shared: int,
                     n_companies: int, companies: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    first = _pick(rng, vocab.FIRST_NAMES, n)
    last = _pick(rng, vocab.LAST_NAMES, n)
    lo, hi = int(0.3 * n_companies), int(0.8 * n_companies)
    company = np.empty(n, dtype=np.int64)
    company[:n_enginy_only] = rng.integers(0, hi, n_enginy_only)
    company[n_enginy_only:n_enginy_only + n_shared] = rng.integers(lo, hi, n_shared)
    company[n_enginy_only + n_shared:] = rng.integers(lo, n_companies, n - n_enginy_only - n_shared)
    # Homonyms: 1% of people take the name of another person at another company; 0.1% take
    # name and company, which a name + company identifier cannot tell apart (and says so).
    homonym = np.zeros(n, dtype=object)
    homonym[:] = ""
    # Copiers and sources are disjoint, so a copied name is never overwritten again.
    drawn = rng.choice(n, size=2 * max(1, n // 100), replace=False)
    copiers, sources = drawn[: len(drawn) // 2], drawn[len(drawn) // 2:]
    first[copiers], last[copiers] = first[sources], last[sources]
    homonym[copiers] = "homonym"
    same_company = copiers[: max(1, len(copiers) // 10)]
    company[same_company] = company[sources[: len(same_company)]]
    homonym[same_company] = "homonym_same_company"
    hexes = rng.integers(0, 16**6, n)
    keep_accents = rng.random(n) < 0.3
    slug_part = functools.lru_cache(maxsize=None)(
        lambda name, accents: (name if accents else _fold(name)).lower().replace(" ", "-").replace("'", ""))
    slugs = np.asarray([f"{slug_part(f, a)}-{slug_part(l, a)}-{h:06x}"
                        for f, l, h, a in zip(first, last, hexes, keep_accents)], dtype=object)
    local_part = functools.lru_cache(maxsize=None)(
        lambda name: _fold(name).lower().replace(" ", "").replace("'", ""))
    local = [f"{local_part(f)}.{local_part(l)}" for f, l in zip(first, last)]
    # A number in some addresses, and always in a homonym's, as real mailboxes do.
    numbered = (np.arange(n) % 5 == 0) | (homonym != "")
    emails = np.asarray([f"{lp}{k % 97 if num else ''}@{companies['domain'][c]}"
                         for lp, c, k, num in zip(local, company, range(n), numbered)], dtype=object)
    return {
        "first_name": first, "last_name": last, "company": company, "homonym": homonym,
        "linkedin_url": np.asarray([f"https://www.linkedin.com/in/{s}" for s in slugs], dtype=object),
        "email": emails,
        "job_title": _pick(rng, vocab.JOB_TITLES, n),
        "phone": np.asarray([f"+1 415 {x // 10000:03d} {x % 10000:04d}" for x in rng.integers(0, 10**7, n)],
                            dtype=object),
    }


def _company_records(rng: np.random.Generator, companies: dict[str, np.ndarray], entities: np.ndarray,
                     vary: np.ndarray, first_of_dupes: int | None) -> tuple[dict[str, np.ndarray], list[str]]:
    n = len(entities)
    name = companies["name"][entities].copy()
    domain = companies["domain"][entities].copy()
    linkedin = companies["linkedin_url"][entities].copy()
    suffix = companies["suffix"][entities]
    v = _Variants(n)
    if first_of_dupes is not None:
        vary = vary.copy()
        vary[first_of_dupes:] = True  # a duplicate record is never spelled exactly the same
        for i in range(first_of_dupes, n):
            v.tags[i].append("crm_duplicate")
    rows = lambda p: np.flatnonzero(vary & (rng.random(n) < p))  # noqa: E731
    v.apply(name, rows(0.35), _company_variant_fns(rng, suffix), "name:legal_suffix")
    v.apply(name, rows(0.15), _case, "name:case")
    v.apply(name, rows(0.15), _accents, "name:accents")
    v.apply(name, rows(0.1), _whitespace, "name:whitespace")
    v.apply(domain, rows(0.2), _domain_form, "domain:url_form")
    ext = rows(0.05)
    other_tld = {".com": ".es", ".es": ".com", ".co.uk": ".com", ".de": ".com", ".fr": ".com",
                 ".nl": ".com", ".it": ".com", ".com.au": ".com"}
    countries = companies["country"][entities]

    def other_extension(d: str, i: int) -> str:
        tld = vocab.COUNTRIES[countries[i]][0]
        return d[: -len(tld)] + other_tld[tld] if d.endswith(tld) else d

    v.apply(domain, ext, other_extension, "domain:other_extension")
    v.apply(linkedin, rows(0.3), _linkedin_form, "linkedin_url:form")
    website = np.asarray([f"https://www.{d}" if not d.startswith(("http", "www.")) else d for d in domain],
                         dtype=object)
    missing_linkedin = rng.random(n) < 0.3
    linkedin[missing_linkedin] = None
    for i in np.flatnonzero(missing_linkedin):
        v.tags[i].append("linkedin_url:missing")
    return {"name": name, "domain": domain, "website": website, "linkedin_url": linkedin}, v.labels()


def _contact_records(rng: np.random.Generator, people: dict[str, np.ndarray], companies: dict[str, np.ndarray],
                     entities: np.ndarray, vary: np.ndarray,
                     first_of_dupes: int | None) -> tuple[dict[str, np.ndarray], list[str]]:
    n = len(entities)
    first = people["first_name"][entities].copy()
    last = people["last_name"][entities].copy()
    email = people["email"][entities].copy()
    linkedin = people["linkedin_url"][entities].copy()
    company_entities = people["company"][entities]
    company_name = companies["name"][company_entities].copy()
    suffix = companies["suffix"][company_entities]
    v = _Variants(n)
    for i, tag in enumerate(people["homonym"][entities]):
        if tag:
            v.tags[i].append(tag)
    if first_of_dupes is not None:
        vary = vary.copy()
        vary[first_of_dupes:] = True
        for i in range(first_of_dupes, n):
            v.tags[i].append("crm_duplicate")
    rows = lambda p: np.flatnonzero(vary & (rng.random(n) < p))  # noqa: E731
    v.apply(first, rows(0.1), _case, "first_name:case")
    v.apply(last, rows(0.1), _case, "last_name:case")
    v.apply(first, rows(0.2), _accents, "first_name:accents")
    v.apply(last, rows(0.2), _accents, "last_name:accents")
    v.apply(first, rows(0.05), _whitespace, "first_name:whitespace")
    v.apply(last, rows(0.05), _whitespace, "last_name:whitespace")
    v.apply(last, rows(0.1), _punctuation, "last_name:punctuation")
    v.apply(company_name, rows(0.3), _company_variant_fns(rng, suffix), "company_name:legal_suffix")
    v.apply(company_name, rows(0.1), _case, "company_name:case")
    v.apply(linkedin, rows(0.35), _linkedin_form, "linkedin_url:form")
    v.apply(email, rows(0.2), _email_case, "email:case")
    missing_linkedin = rng.random(n) < 0.2
    linkedin[missing_linkedin] = None
    missing_email = rng.random(n) < 0.1
    email[missing_email] = None
    for i in np.flatnonzero(missing_linkedin):
        v.tags[i].append("linkedin_url:missing")
    for i in np.flatnonzero(missing_email):
        v.tags[i].append("email:missing")
    records = {
        "first_name": first, "last_name": last, "email": email, "linkedin_url": linkedin,
        "company_name": company_name, "job_title": people["job_title"][entities],
        "phone": people["phone"][entities],
    }
    return records, v.labels()


def _users(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Enginy users (one identity each, some two) and the CRM users, mostly the same people."""
    people = [("Adham", "Elman"), ("Giulio", "Gargano"), ("Jordi", "Casas"), ("Núria", "Puig"),
              ("Sarah", "Connor"), ("Lukas", "Weber"), ("Chloé", "Martin"), ("Ava", "Patel")]
    n = len(people)
    created = _times(np.arange(n) * DAY_MS)
    emails = [f"{_fold(f).lower()}.{_fold(l).lower()}@enginy-customer.com" for f, l in people]
    users = pd.DataFrame({
        "id": _ids("usr", n), "first_name": [p[0] for p in people], "last_name": [p[1] for p in people],
        "email": emails, "created_at": created,
    })
    identities = pd.DataFrame({
        "id": _ids("idn", n + 2),
        "name": [f"{f} {l}" for f, l in people] + ["Sales Team", "Jordi Casas (LinkedIn)"],
        "email": emails + ["sales@enginy-customer.com", None],
        "linkedin_url": [f"https://www.linkedin.com/in/{_fold(f).lower()}-{_fold(l).lower()}" for f, l in people]
        + [None, "https://www.linkedin.com/in/jordi-casas"],
        "user_id": list(users["id"]) + [users["id"][0], users["id"][2]],
        "created_at": _times(np.arange(n + 2) * DAY_MS),
    })
    # The CRM knows six of them (one with different email case) plus two CRM-only users.
    crm_people = people[:6] + [("Integration", "User"), ("Pat", "Default")]
    crm_emails = emails[:6] + ["integration@enginy-customer.com", "pat.default@enginy-customer.com"]
    crm_emails[3] = crm_emails[3].upper()
    crm_users = pd.DataFrame({
        "seed_id": _ids("user", len(crm_people)),
        "first_name": [p[0] for p in crm_people], "last_name": [p[1] for p in crm_people],
        "email": crm_emails,
    })
    return users, identities, crm_users


_STEP_CHANNEL = {"email": "email", "linkedin_profile_visit": "linkedin", "linkedin_connection_request": "linkedin",
                 "linkedin_message": "linkedin", "call": "call"}
_SEQUENCES = [
    ["email", "email", "linkedin_connection_request", "linkedin_message"],
    ["linkedin_profile_visit", "linkedin_connection_request", "linkedin_message", "linkedin_message"],
    ["email", "email", "email"],
    ["email", "linkedin_profile_visit", "linkedin_connection_request", "email", "linkedin_message", "call"],
    ["linkedin_connection_request", "linkedin_message"],
    ["email"] * 13,  # long sequences exercise 11th, 12th and 13th ordinals
    ["email", "call", "email", "linkedin_message", "email"],
]


def _campaigns(rng: np.random.Generator, contacts: pd.DataFrame, identities: pd.DataFrame) -> dict[str, pd.DataFrame]:
    n_contacts = len(contacts)
    n_campaigns = max(len(_SEQUENCES), n_contacts // 2000)
    identity_ids = identities["id"].to_numpy()
    campaign_ids = _ids("cmp", n_campaigns)
    campaigns = pd.DataFrame({
        "id": campaign_ids,
        "name": [f"{vocab.CAMPAIGN_THEMES[i % len(vocab.CAMPAIGN_THEMES)]} Campaign"
                 + ("" if i < len(vocab.CAMPAIGN_THEMES) else f" #{i // len(vocab.CAMPAIGN_THEMES) + 1}")
                 for i in range(n_campaigns)],
        "identity_id": identity_ids[np.arange(n_campaigns) % len(identity_ids)],
        "created_at": _times(np.arange(n_campaigns) * (DAY_MS // 4)),
    })
    seq_of_campaign = np.arange(n_campaigns) % len(_SEQUENCES)
    step_campaign, step_position, step_type = [], [], []
    for c in range(n_campaigns):
        for pos, st in enumerate(_SEQUENCES[seq_of_campaign[c]], start=1):
            step_campaign.append(c)
            step_position.append(pos)
            step_type.append(st)
    step_campaign = np.asarray(step_campaign)
    steps = pd.DataFrame({
        "id": _ids("stp", len(step_campaign)),
        "campaign_id": campaign_ids[step_campaign],
        "position": np.asarray(step_position),
        "step_type": np.asarray(step_type, dtype=object),
        "channel": np.asarray([_STEP_CHANNEL[s] for s in step_type], dtype=object),
    })
    first_step_of = np.searchsorted(step_campaign, np.arange(n_campaigns))
    n_steps_of = np.bincount(step_campaign, minlength=n_campaigns)

    # Memberships: 45% of contacts in one campaign, 10% of those in a second one too.
    members = rng.choice(n_contacts, size=int(n_contacts * 0.45), replace=False)
    seconds = members[: len(members) // 10]
    m_contact = np.concatenate([members, seconds])
    m_campaign = rng.integers(0, n_campaigns, len(m_contact))
    clash = np.zeros(len(m_contact), dtype=bool)
    clash[len(members):] = m_campaign[len(members):] == m_campaign[: len(seconds)]
    m_campaign[clash] = (m_campaign[clash] + 1) % n_campaigns
    campaign_created_ms = np.arange(n_campaigns) * (DAY_MS // 4)
    m_added = campaign_created_ms[m_campaign] + rng.integers(DAY_MS, 30 * DAY_MS, len(m_contact))
    m_added[len(members):] += 40 * DAY_MS  # second campaigns come later
    memberships = pd.DataFrame({
        "campaign_id": campaign_ids[m_campaign],
        "contact_id": contacts["id"].to_numpy()[m_contact],
        "added_at": _times(m_added),
    })

    # Progress through the sequence: executed steps 0..n; a reply stops the sequence.
    n_steps = n_steps_of[m_campaign]
    executed = np.floor(rng.random(len(m_contact)) * (n_steps + 1)).astype(np.int64)
    reps = executed
    ev_member = np.repeat(np.arange(len(m_contact)), reps)
    offsets = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)  # 0-based step index
    ev_step = first_step_of[m_campaign[ev_member]] + offsets
    ev_type = steps["step_type"].to_numpy()[ev_step]
    sent_at = m_added[ev_member] + offsets * 2 * DAY_MS + rng.integers(0, DAY_MS // 2, len(ev_member))
    is_message = (ev_type == "email") | (ev_type == "linkedin_message")
    replied = is_message & (rng.random(len(ev_member)) < 0.08)
    # Keep only the first reply per membership and drop steps after it.
    reply_pos = np.where(replied, offsets, np.iinfo(np.int64).max)
    first_reply = np.full(len(m_contact), np.iinfo(np.int64).max)
    np.minimum.at(first_reply, ev_member, reply_pos)
    keep = offsets <= first_reply[ev_member]
    ev_member, ev_step, ev_type, sent_at, offsets = (a[keep] for a in (ev_member, ev_step, ev_type, sent_at, offsets))
    replied = offsets == first_reply[ev_member]

    is_email = ev_type == "email"
    opened = is_email & (rng.random(len(ev_member)) < 0.5)
    clicked = opened & (rng.random(len(ev_member)) < 0.3)
    accepted = (ev_type == "linkedin_connection_request") & (rng.random(len(ev_member)) < 0.4)
    open_at = sent_at + rng.integers(60_000, DAY_MS, len(ev_member))
    click_at = open_at + rng.integers(1_000, 3_600_000, len(ev_member))
    reply_at = sent_at + rng.integers(3_600_000, DAY_MS, len(ev_member))
    accept_at = sent_at + rng.integers(3_600_000, DAY_MS, len(ev_member))

    parts = [(np.ones(len(ev_member), bool), "sent", sent_at), (opened, "opened", open_at),
             (clicked, "clicked", click_at), (replied, "replied", reply_at), (accepted, "accepted", accept_at)]
    member_of = np.concatenate([ev_member[m] for m, _, _ in parts])
    step_of = np.concatenate([ev_step[m] for m, _, _ in parts])
    etype = np.concatenate([np.full(int(m.sum()), t, dtype=object) for m, t, _ in parts])
    at = np.concatenate([ts[m] for m, _, ts in parts])
    order = np.lexsort((at, member_of))
    member_of, step_of, etype, at = member_of[order], step_of[order], etype[order], at[order]
    campaign_of_event = m_campaign[member_of]
    contact_ids = contacts["id"].to_numpy()[m_contact[member_of]]
    channel = steps["channel"].to_numpy()[step_of]
    sent_emails = (etype == "sent") & (channel == "email")
    subject = np.full(len(etype), None, dtype=object)
    body = np.full(len(etype), None, dtype=object)
    templates = np.asarray(vocab.EMAIL_SUBJECTS, dtype=object)
    subject[sent_emails] = templates[step_of[sent_emails] % len(templates)]
    messages = (etype == "sent") & np.isin(steps["step_type"].to_numpy()[step_of], ["email", "linkedin_message"])
    body[messages] = "Hi there, reaching out about your team's outbound plans."
    events = pd.DataFrame({
        "id": _ids("evt", len(etype)),
        "campaign_id": campaign_ids[campaign_of_event],
        "step_id": steps["id"].to_numpy()[step_of],
        "contact_id": contact_ids,
        "identity_id": campaigns["identity_id"].to_numpy()[campaign_of_event],
        "channel": channel,
        "event_type": etype,
        "occurred_at": _times(at),
        "subject": subject,
        "body": body,
    })

    tags = pd.DataFrame({
        "id": _ids("tag", len(vocab.CONVERSATION_TAGS)),
        "name": [t for t, _ in vocab.CONVERSATION_TAGS],
        "category": [c for _, c in vocab.CONVERSATION_TAGS],
    })
    tagged = rng.choice(n_contacts, size=n_contacts // 5, replace=False)
    n_tags = rng.integers(1, 4, len(tagged))
    t_contact = np.repeat(tagged, n_tags)
    t_offset = np.arange(n_tags.sum()) - np.repeat(np.cumsum(n_tags) - n_tags, n_tags)
    # Steps of 3 over 9 tags give distinct tags per contact, mixing categories.
    t_tag = (np.repeat(rng.integers(0, len(tags), len(tagged)), n_tags) + t_offset * 3) % len(tags)
    contact_tags = pd.DataFrame({
        "contact_id": contacts["id"].to_numpy()[t_contact],
        "tag_id": tags["id"].to_numpy()[t_tag],
        "tagged_at": _times(60 * DAY_MS + t_offset * DAY_MS + rng.integers(0, DAY_MS, len(t_contact))),
    }).drop_duplicates(["contact_id", "tag_id"])

    return {
        "campaigns": campaigns, "campaign_steps": steps, "campaign_contacts": memberships,
        "campaign_events": events, "conversation_tags": tags, "contact_conversation_tags": contact_tags,
    }


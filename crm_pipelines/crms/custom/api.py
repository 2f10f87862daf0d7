"""The Custom CRM (beta): a customer's own REST API, described in a small YAML file instead of code.

The file says where the API is, which header (or query parameter) carries the API key and which
environment variable holds it, how lists are paged, and per object (contacts, companies, leads)
its path, id and modification fields, how deletions show, the field names, and how records are
created and updated. Field names are ours on the left, the API's on the right, so one
integration config (crm_pipelines/crms/custom/example.yaml) maps fields for any such API::

    fields:
      first_name: firstName                       # a canonical field
      sequence_status: {api: seqStatus, type: picklist, options: [Not Started, Ongoing, Replied, Finished]}

Mistakes are reported like those of the integration config: the file, the path in it, the fix.
"""

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from crm_pipelines.config import ConfigError, StrictModel, parse_config, read_yaml
from crm_pipelines.sync_rules import config_problem
from crm_pipelines.crms.wire.rest import (
    ApiKey, CursorPaging, NextLinkPaging, OffsetPaging, PageNumberPaging, Paging, RateLimitHeaders,
)

API_FILE_ENV = "CUSTOM_CRM_API_FILE"
# Two example API descriptions of different styles (the sandbox serves both in-house CRMs).
EXAMPLE_APIS = Path(__file__).parent / "examples"
# Our names with a meaning of their own: canonical fields (crm_pipelines/canonical.py), the
# contact's company link, and the field the push upserts on.
CONTACT_NAMES = ("first_name", "last_name", "company_name", "email", "linkedin_url", "phone", "job_title",
                 "owner_id", "company_id")
COMPANY_NAMES = ("name", "domain", "linkedin_url", "owner_id")
ENGINY_ID = "enginy_id"


class ApiKeyAuth(StrictModel):
    header: str | None = Field(None, description="the header carrying the key, e.g. X-Api-Key")
    query: str | None = Field(None, description="or the query parameter carrying it, e.g. api_key")
    prefix: str = Field("", description='written before the key, e.g. "Token " or "Bearer "')
    env: str = Field(description="the environment variable holding the key (never the key itself)")

    @model_validator(mode="after")
    def _one_place(self) -> "ApiKeyAuth":
        if (self.header is None) == (self.query is None):
            raise config_problem("give the key's header or its query parameter, not both or neither",
                                 "keep one of header: X-Api-Key or query: api_key")
        if not self.env.replace("_", "").isalnum() or not self.env.upper() == self.env:
            raise config_problem(f"env {self.env!r} is not an environment variable name",
                                 "name the variable holding the key, e.g. ACME_CRM_API_KEY "
                                 "(the key stays in the environment)")
        return self

    def auth(self, key: str) -> ApiKey:
        return ApiKey(self.header or self.query or "", key, "header" if self.header else "query", self.prefix)


class RateLimit(StrictModel):
    limit: str = "X-RateLimit-Limit"
    remaining: str = "X-RateLimit-Remaining"
    reset: str = "X-RateLimit-Reset"
    reset_unit: Literal["seconds", "epoch_seconds", "epoch_ms"] = "seconds"

    def headers(self) -> RateLimitHeaders:
        return RateLimitHeaders(self.limit, self.remaining, self.reset, self.reset_unit)


class PagingStyle(StrictModel):
    """How a list is paged; the keys that apply depend on the style."""

    style: Literal["cursor", "page_number", "offset", "next_link"]
    records: str = Field("data", description="where the records sit in an answer (a dotted path)")
    limit: int = Field(100, ge=1, description="records a page")
    limit_param: str = "limit"
    next_cursor: str | None = Field(None, description="cursor: where the next page's cursor sits in an answer")
    cursor_param: str = "cursor"
    page_param: str = "page"
    size_param: str = "per_page"
    first_page: int = 1
    total_pages: str | None = Field(None, description="page_number: where the number of pages sits")
    has_more: str | None = Field(None, description="page_number or offset: where a 'more pages follow' flag sits")
    offset_param: str = "offset"
    next_link: str | None = Field(None, description="next_link: where the next page's URL sits")

    @model_validator(mode="after")
    def _complete(self) -> "PagingStyle":
        if self.style == "cursor" and not self.next_cursor:
            raise config_problem("cursor paging needs next_cursor",
                                 "add next_cursor: <path of the next cursor in an answer>, e.g. meta.next_cursor")
        if self.style == "next_link" and not self.next_link:
            raise config_problem("next_link paging needs next_link", "add next_link: <path of the next page's URL>, "
                                                                     "e.g. links.next")
        return self

    def paging(self) -> Paging:
        if self.style == "cursor":
            return CursorPaging(self.records, self.next_cursor or "", self.cursor_param, self.limit_param, self.limit)
        if self.style == "page_number":
            return PageNumberPaging(self.records, self.page_param, self.size_param, self.limit, self.first_page,
                                    self.total_pages, self.has_more)
        if self.style == "offset":
            return OffsetPaging(self.records, self.offset_param, self.limit_param, self.limit, self.has_more, None)
        return NextLinkPaging(self.records, self.next_link or "")


class FieldSpec(StrictModel):
    api: str = Field(description="the field's name in the API")
    type: str = Field("string", description="string, email, phone, url, number, integer, boolean, date, picklist, …")
    options: list[str] = Field(default_factory=list, description="a picklist's values")
    read_only: bool = False


class Write(StrictModel):
    method: Literal["POST", "PUT", "PATCH"]
    path: str = Field(description="relative to base_url; {id} is the record's id, {enginy_id} the Enginy id")
    body_key: str = Field("", description="the key the fields are wrapped in (empty: the body is the fields)")
    record: str = Field("", description="where the written record sits in the answer (empty: the answer)")


class Deleted(StrictModel):
    """How a deleted (archived) record shows in a list."""

    field: str
    value: Any = True
    include_param: str | None = Field(None, description="a query parameter that lists deleted records too")
    include_value: str = "true"


class ObjectApi(StrictModel):
    path: str
    id_field: str = "id"
    modified_field: str = Field(description="the record's last-modified time, the cursor of incremental pulls")
    modified_format: Literal["iso", "epoch_seconds", "epoch_ms"] = "iso"
    modified_since_param: str | None = Field(None, description="a query parameter keeping records modified at or "
                                                               "after a time (else lists are filtered here)")
    newest_first: dict[str, str] | None = Field(None, description="query parameters listing the newest change "
                                                                  "first, e.g. {sort: -updatedAt}")
    deleted: Deleted | None = None
    fields: dict[str, str | FieldSpec]
    find_by_enginy_id: str | None = Field(None, description="a query parameter finding records by their Enginy id")
    create: Write
    update: Write

    @model_validator(mode="after")
    def _writes_are_safe(self) -> "ObjectApi":
        if ENGINY_ID not in self.fields:
            raise config_problem("fields has no enginy_id",
                                 "add enginy_id: <the API field holding Enginy's id>; creates are found again "
                                 "by it, so none is made twice")
        if "{enginy_id}" not in self.create.path and not self.find_by_enginy_id:
            raise config_problem("creates could be made twice: the create path has no {enginy_id} and there is "
                                 "no find_by_enginy_id",
                                 "add find_by_enginy_id: <query parameter>, or create with PUT to a path holding "
                                 "{enginy_id} if the API upserts there")
        if "{id}" not in self.update.path:
            raise config_problem(f"update path {self.update.path!r} has no {{id}}",
                                 "write the record's place in the path, e.g. /contacts/{id}")
        return self

    def spec(self, name: str) -> FieldSpec:
        given = self.fields[name]
        return given if isinstance(given, FieldSpec) else FieldSpec(api=given)

    def api_name(self, name: str) -> str:
        return self.spec(name).api

    @property
    def upserts(self) -> bool:
        """Whether the create is an upsert on the Enginy id (sending it twice cannot create twice)."""
        return "{enginy_id}" in self.create.path and self.create.method == "PUT"


class UsersApi(StrictModel):
    path: str
    id_field: str = "id"
    email_field: str = "email"
    first_name_field: str = "first_name"
    last_name_field: str = "last_name"
    active_field: str | None = None


class CustomCrmApi(StrictModel):
    name: str = Field(description="what people call this CRM; it appears in logs and errors")
    base_url: str
    auth: ApiKeyAuth
    paging: PagingStyle
    rate_limit: RateLimit | None = None
    parallel_writes: int = Field(1, ge=1, le=16, description="write calls the API takes at once during a push; "
                                                           "1 (the default): one after another")
    contacts: ObjectApi
    companies: ObjectApi
    leads: ObjectApi | None = None
    users: UsersApi | None = None

    @model_validator(mode="after")
    def _known_names(self) -> "CustomCrmApi":
        if not self.base_url.startswith(("https://", "http://")):
            raise config_problem(f"base_url {self.base_url!r} is not a URL",
                                 "write it whole, e.g. https://crm.example.com/api")
        return self

    def objects(self) -> dict[str, ObjectApi]:
        found = {"contacts": self.contacts, "companies": self.companies, "leads": self.leads}
        return {name: api for name, api in found.items() if api is not None}


def load_api(path: str | Path) -> CustomCrmApi:
    """Read and check an API description; a mistake raises ConfigError naming the file, the path
    inside it and the fix."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, [f"no such file — fix: point {API_FILE_ENV} at the YAML describing your CRM's API, "
                                 "e.g. crm_pipelines/crms/custom/examples/northwind.yaml"])
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(path, ["the file must be a mapping (name:, base_url:, auth:, paging:, contacts:, …) — "
                                 "fix: start from crm_pipelines/crms/custom/examples/northwind.yaml"])
    return parse_config(data, path, model=CustomCrmApi)

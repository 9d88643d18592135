"""Transport of the FHIR R4 facade: content negotiation, search syntax, Bundle, OperationOutcome.

No domain knowledge here: what a Patient or an Encounter looks like is each domain's `fhir.py`;
this module only speaks FHIR's REST conventions (http.html, search.html of FHIR R4). Errors are
OperationOutcomes with the HTTP status they belong to (canvas-medical/fhirstarter
`fhirstarter/exceptions.py`): app.py renders every error under `/fhir/` with `outcome_response`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import JSONResponse
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.resource import Resource
from starlette.responses import Response

from naho.platform.deps import get_container
from naho.platform.errors import DomainError

BASE_PATH = "/fhir/R4"
MEDIA_TYPE = "application/fhir+json"
#: The facade speaks R4 (the version FR Core profiles); resources are built and validated with
#: fhir.resources' R4B models, identical to R4 for the resources served here (STYLE.md R13).
FHIR_VERSION = "4.0.1"
DEFAULT_COUNT = 20
MAX_COUNT = 100
#: Deepest result reachable by paging (`_offset` + `_count`): past it, refine the search.
MAX_WINDOW = 1000

#: `Accept` / `_format` values answered with JSON; anything else is 406.
_JSON_MEDIA = frozenset({MEDIA_TYPE, "application/json", "application/json+fhir", "application/*", "*/*"})
_JSON_FORMATS = frozenset({"json", MEDIA_TYPE, "application/json", "application/json+fhir"})
#: Parameters every interaction accepts; the result parameters of a search.
_ALWAYS = frozenset({"_format", "_pretty"})
_PAGING = frozenset({"_count", "_offset"})
_INCLUDE = "_include"

#: OperationOutcome.issue.code (FHIR IssueType) for an HTTP status.
_ISSUE_BY_STATUS = {
    400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
    406: "not-supported", 409: "conflict", 410: "deleted", 422: "processing", 429: "throttled",
}
_NO_STORE = {"Cache-Control": "no-store"}  # patient data: never kept by a browser or a proxy


# --- errors ------------------------------------------------------------------------------------------

class FhirError(DomainError):
    """A request the facade refuses; app.py answers it as an OperationOutcome."""

    status = 400
    issue = "invalid"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, issue=self.issue)


class InvalidRequest(FhirError):
    """An unknown or malformed parameter, or a search the server cannot run."""


class UnsupportedResourceType(FhirError):
    issue = "not-supported"


class ResourceNotFound(FhirError):
    """Absent or not the caller's to see: one answer for both (STYLE.md R7)."""

    status = 404
    issue = "not-found"


class NotAcceptable(FhirError):
    status = 406
    issue = "not-supported"


def is_fhir_path(path: str) -> bool:
    return path == "/fhir" or path.startswith("/fhir/")


# --- responses ---------------------------------------------------------------------------------------

class FhirResponse(JSONResponse):
    media_type = MEDIA_TYPE

    def __init__(self, content: Any, status_code: int = 200, headers: dict[str, str] | None = None, *,
                 pretty: bool = False) -> None:
        self.pretty = pretty
        super().__init__(content, status_code=status_code, headers={**_NO_STORE, **(headers or {})})

    def render(self, content: Any) -> bytes:
        if getattr(self, "pretty", False):
            return json.dumps(content, ensure_ascii=False, indent=2).encode("utf-8")
        return super().render(content)


def dump(resource: Resource) -> dict[str, Any]:
    """The JSON form of a resource built (hence validated) with fhir.resources."""
    return resource.model_dump(mode="json", exclude_none=True)


def resource_response(resource: Resource, *, pretty: bool = False) -> Response:
    return FhirResponse(dump(resource), pretty=pretty)


def operation_outcome(status: int, diagnostics: str | None, *, issue: str | None = None,
                      errors: Iterable[dict[str, Any]] = ()) -> OperationOutcome:
    code = issue or _ISSUE_BY_STATUS.get(status, "exception")
    issues: list[dict[str, Any]] = [{
        "severity": "fatal" if status >= 500 else "error", "code": code,
        "diagnostics": diagnostics or ("The server could not process the request." if status >= 500
                                       else f"HTTP {status}"),
    }]
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", []))
        issues.append({"severity": "error", "code": "invalid", "diagnostics": f"{where}: {error.get('msg', '')}"})
    return OperationOutcome(issue=issues)


def outcome_response(status: int, detail: str | None, headers: dict[str, str] | None = None,
                     **extra: Any) -> Response:
    """Any error under /fhir/, as app.py's handlers report it: same status, an OperationOutcome."""
    outcome = operation_outcome(status, detail, issue=extra.get("issue"), errors=extra.get("errors") or ())
    return FhirResponse(dump(outcome), status_code=status, headers=headers)


# --- content negotiation -------------------------------------------------------------------------------

def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def negotiate(request: Request) -> None:
    """Router dependency: JSON only (`_format` wins over `Accept`, as FHIR http.html says)."""
    wanted = request.query_params.get("_format")
    if wanted is not None:
        if wanted.split(";")[0].strip().lower() not in _JSON_FORMATS:
            raise NotAcceptable(f"_format={wanted} is not served: this server speaks {MEDIA_TYPE} only")
        return
    accept = request.headers.get("accept", "").strip()
    if not accept:
        return
    for part in accept.split(","):
        media, *params = part.split(";")
        if media.strip().lower() in _JSON_MEDIA and _quality(params) > 0:
            return
    raise NotAcceptable(f"cannot answer in {accept!r}: this server speaks {MEDIA_TYPE} only")


def base_url(request: Request) -> str:
    """Absolute base of the facade, for Bundle links and fullUrl (the public URL when configured)."""
    public = get_container(request).settings.public_url.rstrip("/")
    return (public or str(request.base_url).rstrip("/")) + BASE_PATH


def local_zone(request: Request) -> tzinfo:
    return ZoneInfo(get_container(request).settings.timezone)


# --- search syntax ---------------------------------------------------------------------------------------

ParamType = Literal["string", "token", "date", "reference"]


@dataclass(frozen=True)
class SearchParam:
    name: str
    type: ParamType
    documentation: str
    #: May be given more than once, each occurrence restricting further (AND), as a date range
    #: `date=ge2026-11-01&date=lt2026-12-01`; the others are refused when repeated.
    repeatable: bool = False


@dataclass(frozen=True)
class Operation:
    """An operation on instances of a resource type (`GET [type]/[id]/$name`)."""

    name: str
    definition: str
    documentation: str


@dataclass(frozen=True)
class ResourceSupport:
    """What the facade serves for one resource type: read, and search with these parameters."""

    type: str
    documentation: str
    search: tuple[SearchParam, ...]
    #: `_include` values a search accepts ("Encounter:patient"); any other is refused (400).
    includes: tuple[str, ...] = ()
    interactions: tuple[str, ...] = ("read", "search-type")
    operations: tuple[Operation, ...] = ()

    def param(self, name: str) -> SearchParam | None:
        return next((p for p in self.search if p.name == name), None)


@dataclass(frozen=True)
class Search:
    """A parsed search: one value per parameter (commas inside mean OR), and the page asked for."""

    resource: ResourceSupport
    values: dict[str, str]
    offset: int
    count: int
    pretty: bool
    includes: frozenset[str] = frozenset()
    #: Every occurrence of a repeatable parameter, in the order given (`values` holds the first).
    repeated: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def all(self, name: str) -> tuple[str, ...]:
        """Every value of a parameter (AND): several only for a repeatable one."""
        return self.repeated.get(name) or ((self.values[name],) if name in self.values else ())


def _integer(name: str, values: list[str]) -> int | None:
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest(f"{name} is given more than once")
    try:
        return int(values[0])
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer, not {values[0]!r}") from None


def _pretty(request: Request) -> bool:
    return request.query_params.get("_pretty", "false").lower() == "true"


def read_options(request: Request) -> bool:
    """A read takes no parameter but `_format` and `_pretty`; answers whether to pretty-print."""
    unknown = sorted({name for name in request.query_params if name not in _ALWAYS})
    if unknown:
        raise InvalidRequest(f"unknown parameter {unknown[0]!r}: a read accepts only _format and _pretty")
    return _pretty(request)


def _includes(resource: ResourceSupport, wanted: list[str]) -> frozenset[str]:
    """`_include` values, each one the resource offers; an unknown one is refused like an unknown
    parameter, for the same reason (a client must not believe it got what it asked)."""
    for value in wanted:
        if value not in resource.includes:
            offered = ", ".join(resource.includes) or "none"
            raise InvalidRequest(f"_include={value!r} is not supported for {resource.type} (supported: {offered})")
    return frozenset(wanted)


def parse_search(request: Request, resource: ResourceSupport, *, default_count: int = DEFAULT_COUNT,
                 window: int = MAX_WINDOW) -> Search:
    """Check every parameter against what the resource supports: unknown ones are refused (400)
    rather than silently ignored, so a client never mistakes a broader answer for the one it asked."""
    values: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    includes: list[str] = []
    paging: dict[str, list[str]] = {"_count": [], "_offset": []}
    for name, value in request.query_params.multi_items():
        if name in _ALWAYS:
            continue
        if name in _PAGING:
            paging[name].append(value)
            continue
        base, _, modifier = name.partition(":")
        if base == _INCLUDE and resource.includes:
            if modifier:
                raise InvalidRequest(f"the modifier :{modifier} of _include is not supported")
            includes.extend(v.strip() for v in value.split(",") if v.strip())
            continue
        param = resource.param(base)
        if param is None:
            supported = ", ".join([p.name for p in resource.search] + (["_include"] if resource.includes else []))
            raise InvalidRequest(f"unknown search parameter {base!r} for {resource.type} "
                                 f"(supported: {supported}, _count, _offset)")
        if modifier:
            raise InvalidRequest(f"the modifier :{modifier} of {base} is not supported")
        if base in values and not param.repeatable:
            raise InvalidRequest(f"{base} is given more than once (AND is not supported; separate OR values "
                                 "with a comma)")
        if value.strip():  # FHIR: a parameter without a value is ignored
            values.setdefault(base, value.strip())
            repeated.setdefault(base, []).append(value.strip())
    count = _integer("_count", paging["_count"])
    offset = _integer("_offset", paging["_offset"]) or 0
    count = default_count if count is None else min(count, MAX_COUNT)
    if count < 1:
        raise InvalidRequest("_count must be at least 1")
    if offset < 0:
        raise InvalidRequest("_offset must not be negative")
    if offset + count > window:
        raise InvalidRequest(f"paging stops at {window} results: refine the search")
    return Search(resource, values, offset, count, _pretty(request), _includes(resource, includes),
                  {name: tuple(all_values) for name, all_values in repeated.items() if len(all_values) > 1})


def split_or(value: str) -> list[str]:
    """Values separated by unescaped commas (search.html "Composite OR"), unescaped."""
    return [part.replace("\\,", ",") for part in re.split(r"(?<!\\),", value) if part]


@dataclass(frozen=True)
class Token:
    """`system|code`: system None means any system, "" means no system; code "" means any code."""

    system: str | None
    code: str


def parse_token(value: str) -> Token:
    if "|" not in value:
        return Token(None, value)
    system, _, code = value.partition("|")
    return Token(system, code)


def parse_reference(value: str, resource_type: str, param: str) -> str:
    """The id in `Type/id` or a bare id; another type, or a URL elsewhere, is refused."""
    tail = value.rstrip("/")
    if "/" not in tail:
        return tail
    kind, _, rest = tail.rpartition("/")
    kind = kind.rsplit("/", 1)[-1]
    if kind != resource_type:
        raise InvalidRequest(f"{param} must reference a {resource_type} ({resource_type}/id), not {value!r}")
    return rest


_DATE = re.compile(
    r"(?P<prefix>eq|ne|gt|lt|ge|le|sa|eb|ap)?"
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_SUPPORTED_PREFIXES = ("eq", "gt", "lt", "ge", "le")


def _add_month(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class DateRange:
    """A date search value: a prefix and the interval [start, end) its precision implies."""

    prefix: str
    start: datetime
    end: datetime

    def matches(self, start: datetime, end: datetime | None) -> bool:
        """Does a target interval [start, end) (end None: still open) satisfy the search?

        FHIR R4 search.html, "date": eq = the target lies within the searched interval; ge and gt
        = the target reaches past its start / its end; le and lt = it begins before its end / its start.
        """
        if self.prefix == "eq":
            return end is not None and self.start <= start and end <= self.end
        if self.prefix == "ge":
            return end is None or end > self.start
        if self.prefix == "gt":
            return end is None or end > self.end
        if self.prefix == "le":
            return start < self.end
        return start < self.start  # lt

    def instant_bounds(self) -> tuple[datetime | None, datetime | None]:
        """[lower, upper) an instant (a target with no duration: effectiveDateTime, recorded)
        must lie in to match; None is unbounded. `matches` with start == end, as a query can use."""
        return {"eq": (self.start, self.end), "ge": (self.start, None), "gt": (self.end, None),
                "le": (None, self.end), "lt": (None, self.start)}[self.prefix]

    def matches_day(self, day: date, zone: tzinfo) -> bool:
        start = datetime(day.year, day.month, day.day, tzinfo=zone)
        return self.matches(start, start + timedelta(days=1))

    def exact_day(self, zone: tzinfo) -> date | None:
        """The one calendar day an `eq` search designates, if that is what it is."""
        local = self.start.astimezone(zone)
        if self.prefix != "eq" or (local.hour, local.minute, local.second, local.microsecond) != (0, 0, 0, 0):
            return None
        return local.date() if self.end.astimezone(zone) == local + timedelta(days=1) else None


def parse_date(value: str, zone: tzinfo, param: str) -> DateRange:
    """A FHIR date search value; without a zone, the hospital's local time is meant."""
    found = _DATE.fullmatch(value)
    if found is None:
        raise InvalidRequest(f"{param}={value!r} is not a FHIR date (e.g. 1951-07-02, ge2026-11-01)")
    prefix = found["prefix"] or "eq"
    if prefix not in _SUPPORTED_PREFIXES:
        raise InvalidRequest(f"the prefix {prefix!r} of {param} is not supported (use eq, ge, gt, le or lt)")
    try:
        year, month, day = int(found["year"]), int(found["month"] or 1), int(found["day"] or 1)
        first = date(year, month, day)
        if found["time"]:
            if found["zone"] is None:
                raise InvalidRequest(f"{param}={value!r}: a time needs a zone (Z or ±hh:mm)")
            aware = datetime.fromisoformat(value[len(found["prefix"] or ""):]).astimezone(UTC)
            unit = timedelta(seconds=1) if found["time"].count(":") == 2 else timedelta(minutes=1)
            return DateRange(prefix, aware, aware + unit)
    except ValueError:
        raise InvalidRequest(f"{param}={value!r} is not a valid date") from None
    if found["day"]:
        last = first + timedelta(days=1)
    elif found["month"]:
        last = _add_month(first, 1)
    else:
        last = date(year + 1, 1, 1)
    start = datetime(first.year, first.month, first.day, tzinfo=zone)
    return DateRange(prefix, start, datetime(last.year, last.month, last.day, tzinfo=zone))


# --- Bundle and CapabilityStatement ------------------------------------------------------------------------

def _page_url(request: Request, base: str, path: str, count: int, offset: int) -> str:
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in _PAGING]
    return f"{base}/{path}?" + urlencode([*kept, ("_count", str(count)), ("_offset", str(offset))])


def searchset(request: Request, search: Search, resources: Sequence[Resource], *, has_next: bool,
              total: int | None = None, included: Sequence[Resource] = (), path: str | None = None) -> Bundle:
    """A searchset Bundle with `self`, and `next` / `previous` links when there are such pages.

    `included` resources (from `_include`) follow the matches with search.mode "include", once
    each; `path` is what the links page through when it is not the type (an operation).
    """
    base = base_url(request)
    kind = path or search.resource.type
    links = [{"relation": "self", "url": _page_url(request, base, kind, search.count, search.offset)}]
    if has_next:
        links.append({"relation": "next",
                      "url": _page_url(request, base, kind, search.count, search.offset + search.count)})
    if search.offset > 0:
        links.append({"relation": "previous",
                      "url": _page_url(request, base, kind, search.count, max(0, search.offset - search.count))})
    entries = [{"fullUrl": f"{base}/{r.get_resource_type()}/{r.id}", "resource": r, "search": {"mode": "match"}}
               for r in resources]
    seen = {(r.get_resource_type(), r.id) for r in resources}
    for r in included:
        if (r.get_resource_type(), r.id) not in seen:
            seen.add((r.get_resource_type(), r.id))
            entries.append({"fullUrl": f"{base}/{r.get_resource_type()}/{r.id}", "resource": r,
                            "search": {"mode": "include"}})
    return Bundle(type="searchset", total=total, link=links, entry=entries)


def searchset_response(request: Request, search: Search, resources: Sequence[Resource], *, has_next: bool,
                       total: int | None = None, included: Sequence[Resource] = (),
                       path: str | None = None) -> Response:
    bundle = searchset(request, search, resources, has_next=has_next, total=total, included=included, path=path)
    return FhirResponse(dump(bundle), pretty=search.pretty)


def page(items: Sequence[Any], search: Search) -> tuple[list[Any], bool]:
    """The page of an already complete, ordered result list, and whether more follow."""
    return list(items[search.offset:search.offset + search.count]), len(items) > search.offset + search.count


@dataclass(frozen=True)
class WriteSupport:
    """What the write routes (interop.fhir_write) accept for one resource type."""

    interactions: tuple[str, ...]
    documentation: str
    conditional_create: bool = False


#: Declared by interop.fhir_write when it is imported: writes per resource type, and the
#: whole-system interactions ("transaction", "batch") with their documentation.
WRITES: dict[str, WriteSupport] = {}
SYSTEM_WRITES: dict[str, str] = {}
_NO_WRITE = WriteSupport((), "")


def capability_statement(base: str, resources: Iterable[ResourceSupport], *, software: str, version: str,
                         now: datetime) -> CapabilityStatement:
    """What this server does (FHIR R4 capabilitystatement.html), generated from the same table
    the routes check parameters against, so the two cannot disagree."""
    return CapabilityStatement(
        status="active", date=now, kind="instance", fhirVersion=FHIR_VERSION, format=[MEDIA_TYPE, "json"],
        publisher=software, software={"name": software, "version": version},
        implementation={"description": f"{software}: FHIR R4 facade (read and search)", "url": base},
        rest=[{
            "mode": "server",
            "documentation": f"Results are paged with _count (default {DEFAULT_COUNT}, at most {MAX_COUNT}) "
                             f"and _offset, up to {MAX_WINDOW} results. Unknown parameters and _include "
                             "values are refused (400), as are repeated ones except dates (a range).",
            "security": {"description": "A bearer token (Authorization: Bearer, issued by `naho token create`) "
                                        "or a staff session; patient data is shown only to its care team or "
                                        "to the roles allowed for a stated purpose, and every access is audited."},
            "resource": [{
                "type": r.type,
                "documentation": f"{r.documentation} {WRITES.get(r.type, _NO_WRITE).documentation}".strip(),
                "interaction": [{"code": code}
                                for code in (*r.interactions, *WRITES.get(r.type, _NO_WRITE).interactions)],
                "conditionalCreate": WRITES.get(r.type, _NO_WRITE).conditional_create or None,
                "searchInclude": list(r.includes) or None,
                "searchParam": [{"name": p.name, "type": p.type, "documentation": p.documentation}
                                for p in r.search] or None,
                "operation": [{"name": o.name, "definition": o.definition, "documentation": o.documentation}
                              for o in r.operations] or None,
            } for r in resources],
            "interaction": [{"code": code, "documentation": doc} for code, doc in SYSTEM_WRITES.items()] or None,
        }],
    )

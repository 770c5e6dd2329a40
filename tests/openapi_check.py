"""Validate what passes between the Ankorstore adapter and its emulator against Ankorstore's own
OpenAPI file."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import yaml
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.responses.exceptions import ResponseNotFound
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from sync.emulation.platform import EmulatedPlatform
from sync.emulation.wire import EmuRequest, EmuResponse

# A copy of ../shared/platform-docs/ankorstore-openapi.yaml, so a clone alone can run the tests.
SPEC = Path(__file__).resolve().parent / "data" / "ankorstore-openapi.yaml"
HOST = "https://www.ankorstore.com"


@cache
def ankorstore_openapi() -> OpenAPI:
    """The parsed specification (about a second; loaded once)."""
    return OpenAPI.from_dict(yaml.safe_load(SPEC.read_text()), config=Config(spec_validator_cls=None))


class Checked:
    """Counts what was validated, so a test can prove the check ran."""

    def __init__(self) -> None:
        self.requests = 0
        self.responses = 0


def validate_traffic(emulator: EmulatedPlatform) -> Checked:
    """Wrap the emulator so every API request and its answer are validated against the spec; a
    violation raises in the server and fails the calling test."""
    api = ankorstore_openapi()
    checked = Checked()
    inner = emulator.handle

    def handle(request: EmuRequest) -> EmuResponse:
        if not request.path.startswith("/api/"):
            return inner(request)  # /oauth/token is documented in prose, not in the OpenAPI paths
        openapi_request = WerkzeugOpenAPIRequest(_werkzeug_request(request))
        api.validate_request(openapi_request)
        checked.requests += 1
        response = inner(request)
        payload, content_type = response.encoded()
        openapi_response = WerkzeugOpenAPIResponse(
            Response(payload, response.status, headers={**response.headers, "Content-Type": content_type})
        )
        try:
            api.validate_response(openapi_request, openapi_response)
            checked.responses += 1
        except ResponseNotFound:
            if response.status < 300:
                raise  # every success must be documented; undocumented error statuses are faults we inject
        return response

    emulator.handle = handle  # type: ignore[method-assign]
    return checked


def _werkzeug_request(request: EmuRequest):  # type: ignore[no-untyped-def]
    query = "&".join(f"{k}={v}" for k, values in request.query.items() for v in values)
    return EnvironBuilder(
        method=request.method,
        path=request.path,
        base_url=HOST,
        query_string=query,
        headers={k: v for k, v in request.headers.items() if k != "host"},  # the spec's host, not loopback
        data=request.body or None,
    ).get_request()


def as_json(response: EmuResponse) -> object:
    """An emulator answer's body as JSON."""
    return json.loads(response.encoded()[0])

"""The ONE module that builds and reads envoy-data-plane ext_proc messages.

It translates the processor's plain actions (Forward, Reply) into ProcessingResponse messages and
Envoy's header maps into plain dicts, so the rest of Switchyard never touches Envoy types.
"""

from __future__ import annotations

from collections.abc import Mapping

from envoy_data_plane.envoy.config.core.v3 import (
    HeaderMap,
    HeaderValue,
    HeaderValueOption,
    HeaderValueOptionHeaderAppendAction,
)
from envoy_data_plane.envoy.extensions.filters.http.ext_proc.v3 import (
    ProcessingMode,
    ProcessingModeBodySendMode,
)
from envoy_data_plane.envoy.service.ext_proc.v3 import (
    BodyMutation,
    BodyResponse,
    CommonResponse,
    HeaderMutation,
    HeadersResponse,
    ImmediateResponse,
    ProcessingResponse,
    TrailersResponse,
)
from envoy_data_plane.envoy.type.v3 import HttpStatus, StatusCode
from envoy_data_plane.google.protobuf import Struct, Value

from control_plane.processor import Action, Forward, Reply

METADATA_NAMESPACE = "switchyard"  # must match metadata_options in envoy/bootstrap.yaml
_OVERWRITE = HeaderValueOptionHeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD
_BUFFER_BODY = ProcessingMode(request_body_mode=ProcessingModeBodySendMode.BUFFERED)


def header_dict(headers: HeaderMap | None) -> dict[str, str]:
    """Envoy sends values in raw_value (bytes); header names arrive lower-cased."""
    if headers is None:
        return {}
    return {
        h.key: h.raw_value.decode("latin-1") if h.raw_value else h.value for h in headers.headers
    }


def _header_mutation(
    set_headers: tuple[tuple[str, str], ...], remove: tuple[str, ...]
) -> HeaderMutation | None:
    if not set_headers and not remove:
        return None
    return HeaderMutation(
        set_headers=[
            HeaderValueOption(
                header=HeaderValue(key=k, raw_value=v.encode("latin-1")), append_action=_OVERWRITE
            )
            for k, v in set_headers
        ],
        remove_headers=list(remove),
    )


def _metadata(fields: Mapping[str, str]) -> Struct | None:
    if not fields:
        return None
    inner = Struct(fields={k: Value(string_value=v) for k, v in fields.items()})
    return Struct(fields={METADATA_NAMESPACE: Value(struct_value=inner)})


def _common(action: Forward) -> CommonResponse:
    return CommonResponse(
        header_mutation=_header_mutation(action.set_headers, action.remove_headers),
        body_mutation=BodyMutation(body=action.body) if action.body is not None else None,
        clear_route_cache=action.clear_route_cache,
    )


def _immediate(reply: Reply) -> ProcessingResponse:
    return ProcessingResponse(
        immediate_response=ImmediateResponse(
            status=HttpStatus(code=StatusCode(reply.status)),
            headers=_header_mutation(reply.headers, ()),
            body=reply.body,
            details="switchyard",
        )
    )


def request_headers_response(action: Action) -> ProcessingResponse:
    if isinstance(action, Reply):
        return _immediate(action)
    return ProcessingResponse(
        request_headers=HeadersResponse(response=_common(action)),
        mode_override=_BUFFER_BODY if action.want_body else None,
        dynamic_metadata=_metadata(action.metadata),
    )


def request_body_response(action: Action) -> ProcessingResponse:
    if isinstance(action, Reply):
        return _immediate(action)
    return ProcessingResponse(
        request_body=BodyResponse(response=_common(action)),
        dynamic_metadata=_metadata(action.metadata),
    )


def pass_through(phase: str) -> ProcessingResponse:
    """Continue unchanged in a phase Switchyard does not act on (`phase` is the request's
    oneof field name, e.g. "response_headers")."""
    if phase.endswith("_trailers"):
        return ProcessingResponse(**{phase: TrailersResponse()})
    if phase.endswith("_body"):
        return ProcessingResponse(**{phase: BodyResponse(response=CommonResponse())})
    return ProcessingResponse(**{phase: HeadersResponse(response=CommonResponse())})

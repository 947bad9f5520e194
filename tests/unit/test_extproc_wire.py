"""The hand-written ext_proc codec agrees with envoy-data-plane's generated types, both ways."""

from __future__ import annotations

import betterproto2
from envoy_data_plane.envoy.config.core.v3 import HeaderMap, HeaderValue
from envoy_data_plane.envoy.extensions.filters.http.ext_proc.v3 import ProcessingModeBodySendMode
from envoy_data_plane.envoy.service.ext_proc.v3 import (
    HttpBody,
    HttpHeaders,
    HttpTrailers,
    ProcessingRequest,
    ProcessingResponse,
)
from hypothesis import given
from hypothesis import strategies as st

from control_plane.extproc import wire
from control_plane.extproc.processor import Forward, Reply

header_names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)


@given(st.dictionaries(header_names, header_values, max_size=12), st.booleans())
def test_reads_request_headers_written_by_envoy_data_plane(headers: dict[str, str], eos: bool) -> None:
    message = ProcessingRequest(
        request_headers=HttpHeaders(
            headers=HeaderMap(headers=[HeaderValue(key=k, raw_value=v.encode("latin-1")) for k, v in headers.items()]),
            end_of_stream=eos,
        )
    )
    decoded = wire.decode_request(bytes(message))
    assert decoded.phase == "request_headers"
    assert decoded.headers == headers
    assert decoded.end_of_stream == eos


@given(st.binary(max_size=4096), st.booleans())
def test_reads_request_body(body: bytes, eos: bool) -> None:
    decoded = wire.decode_request(bytes(ProcessingRequest(request_body=HttpBody(body=body, end_of_stream=eos))))
    assert (decoded.phase, decoded.body, decoded.end_of_stream) == ("request_body", body, eos)


def test_reads_other_phases() -> None:
    decoded = wire.decode_request(bytes(ProcessingRequest(response_trailers=HttpTrailers())))
    assert decoded.phase == "response_trailers"


@given(st.binary(max_size=256))
def test_garbage_never_escapes_as_anything_but_wire_error(data: bytes) -> None:
    try:
        wire.decode_request(data)
    except wire.WireError:
        pass


forwards = st.builds(
    Forward,
    set_headers=st.lists(st.tuples(header_names, header_values), max_size=4).map(tuple),
    remove_headers=st.lists(header_names, max_size=3).map(tuple),
    body=st.none() | st.binary(max_size=512),
    want_body=st.booleans(),
    clear_route_cache=st.booleans(),
    metadata=st.dictionaries(header_names, st.text(max_size=30), max_size=5),
)


@given(forwards, st.sampled_from(["request_headers", "request_body"]))
def test_written_forward_parses_in_envoy_data_plane(action: Forward, phase: str) -> None:
    parsed = ProcessingResponse.parse(wire.encode_response(phase, action))
    name, phase_response = betterproto2.which_one_of(parsed, "response")
    assert name == phase
    common = phase_response.response
    assert common is not None
    mutation = common.header_mutation
    got_set = [(h.header.key, h.header.raw_value.decode("latin-1")) for h in mutation.set_headers] if mutation else []
    assert got_set == list(action.set_headers)
    if mutation:
        assert all(h.append_action.name == "OVERWRITE_IF_EXISTS_OR_ADD" for h in mutation.set_headers)
    assert (list(mutation.remove_headers) if mutation else []) == list(action.remove_headers)
    if action.body is None:
        assert common.body_mutation is None
    else:
        assert common.body_mutation.body == action.body
    assert common.clear_route_cache == action.clear_route_cache
    if phase == "request_headers":  # the body: read (BUFFERED) or streamed on unread (NONE)
        assert parsed.mode_override is not None
        assert parsed.mode_override.request_body_mode == (
            ProcessingModeBodySendMode.BUFFERED if action.want_body else ProcessingModeBodySendMode.NONE)
    else:
        assert parsed.mode_override is None
    if action.metadata:
        namespace = parsed.dynamic_metadata.fields[wire.METADATA_NAMESPACE].struct_value
        assert {k: v.string_value for k, v in namespace.fields.items()} == action.metadata
    else:
        assert parsed.dynamic_metadata is None


@given(st.sampled_from([400, 404, 413, 200]), st.binary(max_size=300), st.lists(st.tuples(header_names, header_values), max_size=3))
def test_written_reply_parses_in_envoy_data_plane(status: int, body: bytes, headers: list) -> None:
    parsed = ProcessingResponse.parse(wire.encode_response("request_body", Reply(status, body, tuple(headers))))
    immediate = parsed.immediate_response
    assert immediate.status.code.value == status
    assert immediate.body == body
    got = [(h.header.key, h.header.raw_value.decode("latin-1")) for h in immediate.headers.set_headers] if immediate.headers else []
    assert got == headers


def test_pass_through_answers_the_phase_asked() -> None:
    for phase in ("response_headers", "response_body", "request_trailers", "response_trailers"):
        name, _ = betterproto2.which_one_of(ProcessingResponse.parse(wire.pass_through(phase)), "response")
        assert name == phase

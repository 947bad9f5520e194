"""The fake provider's checks (harness/fake_provider/server.py), made like the real services' so that a
request that Switchyard mangles cannot pass: the key (401), the model (404), and the roles and tool
pairing of the conversation (400). Each check returns None, or the Problem to answer with; the
error bodies are each API's own.

The rules, as the real APIs state them:
- OpenAI chat: roles system, developer, user, assistant, tool, function; a `tool` message answers
  a tool call of the assistant message before it (after other tool messages), and an assistant's
  tool calls are each answered before the conversation goes on.
- Anthropic Messages: roles user and assistant, and `system` inside `messages` (mid-conversation
  system messages, no beta header needed): not first, after a user message (or an assistant
  message that ends in a server tool use), last or followed by an assistant message, never two
  in a row; its content is text blocks, plus `tool_addition` / `tool_removal` blocks under the
  `mid-conversation-tool-changes-*` beta (Claude Code sends that beta). A `tool_result` answers a
  `tool_use` of the message before it, and every `tool_use` is answered in the next message.
- OpenAI files: a multipart form with a `file` and a `purpose` of FILE_PURPOSES.
- Responses: input item types and message roles of the real API, content part types by role
  (an assistant's are output_text/refusal, the others' input_*), and a `function_call_output`
  (`custom_tool_call_output`) answers a `function_call` (`custom_tool_call`) of the conversation,
  previous responses included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHAT_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
MESSAGES_ROLES = ("user", "assistant", "system")
RESPONSES_ROLES = ("assistant", "system", "developer", "user")
RESPONSES_ITEM_TYPES = frozenset({
    "message", "function_call", "function_call_output", "reasoning", "item_reference",
    "file_search_call", "computer_call", "computer_call_output", "web_search_call",
    "tool_search_call", "tool_search_output", "additional_tools", "configuration_update",
    "compaction", "compaction_trigger", "image_generation_call", "code_interpreter_call",
    "local_shell_call", "local_shell_call_output", "shell_call", "shell_call_output",
    "apply_patch_call", "apply_patch_call_output", "mcp_list_tools", "mcp_approval_request",
    "mcp_approval_response", "mcp_call", "custom_tool_call", "custom_tool_call_output",
    "program", "program_output"})
INPUT_PARTS = ("input_text", "input_image", "input_file", "input_audio")
OUTPUT_PARTS = ("output_text", "refusal")
SERVER_TOOL_USE = "server_tool_use"
# OpenAI's file upload: the purposes its API spec lists (the openai SDK's FilePurpose).
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
TOOL_CHANGES_BETA = "mid-conversation-tool-changes-"


@dataclass(frozen=True)
class Problem:
    """Why a request is refused: the status, the message, and (OpenAI) the param and code."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None


def listing(values: tuple[str, ...]) -> str:
    """OpenAI's way of listing allowed values: 'a', 'b', and 'c'."""
    quoted = [f"'{v}'" for v in values]
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 2 else " and ".join(quoted)


def openai_error(problem: Problem) -> dict[str, Any]:
    kind = "server_error" if problem.status >= 500 else "invalid_request_error"
    return {"error": {"message": problem.message, "type": kind, "param": problem.param, "code": problem.code}}


def anthropic_error(problem: Problem) -> dict[str, Any]:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
             404: "not_found_error", 429: "rate_limit_error"}
    return {"type": "error", "error": {"type": kinds.get(problem.status, "api_error"), "message": problem.message}}


def bearer(headers: Any) -> str | None:
    authorization = headers.get("authorization", "")
    return authorization[len("Bearer "):] if authorization.startswith("Bearer ") else None


def check_key(api: str, headers: Any, key: str | None) -> Problem | None:
    """OpenAI reads `Authorization: Bearer K`; Anthropic `x-api-key: K`, or `Authorization: Bearer K`
    (Claude Code sends x-api-key, the anthropic SDK 2.x sends its API key as a bearer token)."""
    if key is None:
        return None
    if api == "anthropic":
        sent = headers.get("x-api-key") or bearer(headers)
        if sent == key:
            return None
        return Problem(401, "x-api-key header is required" if sent is None else "invalid x-api-key")
    sent = bearer(headers)
    if sent == key:
        return None
    if sent is None:
        return Problem(401, "You didn't provide an API key. You need to provide your API key in an Authorization "
                            "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
    return Problem(401, f"Incorrect API key provided: {sent[:3]}***{sent[-4:]}.", code="invalid_api_key")


def check_model(api: str, model: Any, models: list[str] | None) -> Problem | None:
    if not isinstance(model, str) or not model:
        return Problem(400, "model: Field required" if api == "anthropic" else "you must provide a model parameter",
                       param="model")
    if models is None or model in models:
        return None
    if api == "anthropic":
        return Problem(404, f"model: {model}")
    return Problem(404, f"The model `{model}` does not exist or you do not have access to it.",
                   code="model_not_found")


def tool_ids(message: dict[str, Any], kind: str, key: str) -> list[str]:
    content = message.get("content")
    return [str(b.get(key)) for b in content if isinstance(b, dict) and b.get("type") == kind] \
        if isinstance(content, list) else []


def check_chat(body: dict[str, Any]) -> Problem | None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return Problem(400, "[] is too short - 'messages'" if messages == [] else "'messages' is a required property",
                       param="messages")
    open_calls: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in CHAT_ROLES:
            return Problem(400, f"Invalid value: '{role}'. Supported values are: {listing(CHAT_ROLES)}.",
                           param=f"messages[{index}].role", code="invalid_value")
        if role == "tool":
            if message.get("tool_call_id") not in open_calls:
                return Problem(400, "Invalid parameter: messages with role 'tool' must be a response to a "
                                    "preceeding message with 'tool_calls'.", param=f"messages.[{index}].role")
            open_calls.discard(message.get("tool_call_id"))
            continue
        if open_calls:
            return Problem(400, "An assistant message with 'tool_calls' must be followed by tool messages "
                                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                                f"response messages: {', '.join(sorted(open_calls))}",
                           param=f"messages.[{index}].role")
        calls = message.get("tool_calls") if role == "assistant" else None
        open_calls = {str(c.get("id")) for c in calls if isinstance(c, dict)} if isinstance(calls, list) else set()
    return None


def check_system_message(messages: list[dict[str, Any]], index: int, betas: str) -> Problem | None:
    """A mid-conversation system message where, and as, the Messages API accepts it."""
    where = f"messages.{index}"
    if index == 0:
        return Problem(400, f"{where}: use the top-level 'system' parameter for the initial system prompt")
    before = messages[index - 1]
    after_server_tool = before.get("role") == "assistant" and tool_ids(before, SERVER_TOOL_USE, "id") \
        and isinstance(before.get("content"), list) and before["content"][-1].get("type") == SERVER_TOOL_USE
    if before.get("role") != "user" and not after_server_tool:
        return Problem(400, f"{where}: a system message must follow a user message")
    if index + 1 < len(messages) and messages[index + 1].get("role") != "assistant":
        return Problem(400, f"{where}: a system message must be the last message or be followed by an "
                            "assistant message")
    allowed = ("text", "tool_addition", "tool_removal") if TOOL_CHANGES_BETA in betas else ("text",)
    content = messages[index].get("content")
    for position, block in enumerate(content if isinstance(content, list) else []):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in allowed:
            return Problem(400, f"{where}.content.{position}: a system message may hold only "
                                f"{' or '.join(allowed)} blocks, not {kind!r}")
    if not isinstance(content, (str, list)):
        return Problem(400, f"{where}.content: Field required")
    return None


def check_messages(body: dict[str, Any], betas: str) -> Problem | None:
    """Roles, system messages and tool_use/tool_result pairing, as the Messages API checks them."""
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        return Problem(400, "max_tokens: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return Problem(400, "messages: at least one message is required")
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in MESSAGES_ROLES:
            return Problem(400, f"messages.{index}.role: Input should be 'user', 'assistant' or 'system'")
        if role == "system":
            if problem := check_system_message(messages, index, betas):
                return problem
            continue
        answered = tool_ids(message, "tool_result", "tool_use_id")
        asked = tool_ids(messages[index - 1], "tool_use", "id") if index else []
        if stray := [i for i in answered if i not in asked]:
            return Problem(400, f"messages.{index}.content: unexpected `tool_use_id` found in `tool_result` "
                                f"blocks: {stray[0]}. Each `tool_result` block must have a corresponding "
                                "`tool_use` block in the previous message.")
        if index and (missing := [i for i in asked if i not in answered]):
            return Problem(400, f"messages.{index - 1}: `tool_use` ids were found without `tool_result` blocks "
                                f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                                "corresponding `tool_result` block in the next message.")
    return None


def item_type(item: dict[str, Any]) -> Any:
    """An input item's type; a bare {"role", "content"} is a message."""
    return item.get("type", "message" if "role" in item else None)


def check_responses(items: list[Any], issuer: str) -> Problem | None:
    """The input items of a Responses request, after its previous responses' items. A reasoning
    item's encrypted content must be one that `issuer` wrote (the real API can decrypt only its own)."""
    calls: set[str] = set()
    for index, item in enumerate(items):
        kind = item_type(item) if isinstance(item, dict) else None
        if kind not in RESPONSES_ITEM_TYPES:
            return Problem(400, f"Invalid value: '{kind}'. Supported values are: 'message', 'function_call', "
                                "'function_call_output', 'reasoning', ... (the input item types).",
                           param=f"input[{index}]", code="invalid_value")
        encrypted = item.get("encrypted_content") if kind == "reasoning" else None
        if encrypted is not None and not str(encrypted).startswith(issuer):
            return Problem(400, f"The encrypted content for item {item.get('id')} could not be verified.",
                           param=f"input[{index}]", code="invalid_encrypted_content")
        if kind in ("function_call", "custom_tool_call"):
            calls.add(f"{kind}:{item.get('call_id')}")
        elif kind in ("function_call_output", "custom_tool_call_output") \
                and f"{kind.removesuffix('_output')}:{item.get('call_id')}" not in calls:
            what = kind.removesuffix("_output").replace("_", " ")
            return Problem(400, f"No tool call found for {what} output with call_id {item.get('call_id')}.",
                           param="input")
        elif kind == "message":
            role = item.get("role")
            if role not in RESPONSES_ROLES:
                return Problem(400, f"Invalid value: '{role}'. Supported values are: {listing(RESPONSES_ROLES)}.",
                               param=f"input[{index}].role", code="invalid_value")
            parts = OUTPUT_PARTS if role == "assistant" else INPUT_PARTS
            content = item.get("content")
            for position, part in enumerate(content if isinstance(content, list) else []):
                if not isinstance(part, dict) or part.get("type") not in parts:
                    kind = part.get("type") if isinstance(part, dict) else part
                    return Problem(400, f"Invalid value: '{kind}'. Supported values are: {listing(parts)}.",
                                   param=f"input[{index}].content[{position}]", code="invalid_value")
    return None

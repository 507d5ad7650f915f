"""How A2A (protocol 0.3, `a2a-sdk` 0.3 models) and runs map onto each other: a message is a
run's input, a run is a task (task id = run id, context id = thread id), a run's status and
output are the task's state, status message and artifact; an assistant is an agent card."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from a2a import types as a2a

from tenantgraph import __version__
from tenantgraph.errors import InvalidInput
from tenantgraph.runtime.state_values import message_text

__all__ = [
    "PROTOCOL_VERSION",
    "agent_card",
    "agent_message",
    "final_state",
    "run_input",
    "run_state",
    "task",
]

Json = dict[str, Any]
PROTOCOL_VERSION = "0.3.0"
_STATES = {
    "pending": a2a.TaskState.submitted,
    "running": a2a.TaskState.working,
    "success": a2a.TaskState.completed,
    "error": a2a.TaskState.failed,
    "timeout": a2a.TaskState.failed,
    "interrupted": a2a.TaskState.canceled,
}
_MODES = ["text/plain", "application/json"]


def run_input(message: a2a.Message) -> Json:
    """The run input of a user message: its text parts as one user chat message, the
    fields of its data parts alongside (for graphs whose input is not `messages`)."""
    texts: list[str] = []
    data: Json = {}
    for part in message.parts:
        if isinstance(part.root, a2a.TextPart):
            texts.append(part.root.text)
        elif isinstance(part.root, a2a.DataPart):
            data.update(part.root.data)
        else:
            raise InvalidInput("file parts are not supported: send text or data parts")
    if texts:
        data["messages"] = [{"role": "user", "content": "\n".join(texts)}]
    return data


def _reply(values: Any) -> str | None:
    """The text of the last AI message of a graph state, if it has one."""
    messages = values.get("messages") if isinstance(values, dict) else None
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        last = messages[-1]
        if last.get("type") in ("ai", "AIMessage", "AIMessageChunk") or last.get("role") in (
            "ai",
            "assistant",
        ):
            return message_text(last.get("content"))
    return None


def agent_message(values: Any, context_id: str, task_id: str) -> a2a.Message | None:
    """The agent's reply in a state: its last AI message, as an A2A message."""
    text = _reply(values)
    if text is None:
        return None
    return a2a.Message(
        role=a2a.Role.agent,
        parts=[a2a.Part(root=a2a.TextPart(text=text))],
        message_id=str(uuid.uuid5(uuid.UUID(task_id), text)),
        context_id=context_id,
        task_id=task_id,
    )


def _artifact(output: Any) -> a2a.Artifact:
    """A finished run's result: the reply's text, or the whole state as data."""
    text = _reply(output)
    part = a2a.TextPart(text=text) if text is not None else a2a.DataPart(data=output)
    return a2a.Artifact(artifact_id=str(uuid.uuid4()), name="result", parts=[a2a.Part(root=part)])


def run_state(run: Json) -> a2a.TaskState:
    return _STATES.get(run["status"], a2a.TaskState.unknown)


def final_state(status: str, output: Any) -> a2a.TaskState:
    """A finished run's task state: a run that stopped at an interrupt awaits input."""
    if isinstance(output, dict) and "__error__" in output:
        return a2a.TaskState.failed
    if isinstance(output, dict) and output.get("__interrupt__"):
        return a2a.TaskState.input_required
    return _STATES.get(status, a2a.TaskState.unknown)


def task(
    run: Json,
    state: a2a.TaskState,
    *,
    output: Any = None,
    history: list[a2a.Message] | None = None,
) -> a2a.Task:
    """The task of a run in `state`; a completed one carries its result as an artifact, a
    failed one its error as the status message."""
    task_id, context_id = str(run["run_id"]), str(run["thread_id"])
    message = None
    artifacts = None
    if isinstance(output, dict) and "__error__" in output:
        error = output["__error__"]
        detail = error.get("message") if isinstance(error, dict) else str(error)
        message = a2a.Message(
            role=a2a.Role.agent,
            parts=[a2a.Part(root=a2a.TextPart(text=str(detail or "the run failed")))],
            message_id=str(uuid.uuid4()),
            context_id=context_id,
            task_id=task_id,
        )
    elif output is not None:
        message = agent_message(output, context_id, task_id)
        if state in (a2a.TaskState.completed, a2a.TaskState.input_required):
            artifacts = [_artifact({k: v for k, v in output.items() if k != "__interrupt__"})]
    return a2a.Task(
        id=task_id,
        context_id=context_id,
        status=a2a.TaskStatus(state=state, message=message, timestamp=_now()),
        artifacts=artifacts,
        history=history,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()


def agent_card(assistant: Json, base_url: str) -> a2a.AgentCard:
    """The agent card of an assistant, served to callers who may invoke it."""
    assistant_id = str(assistant["assistant_id"])
    name = assistant.get("name") or assistant["graph_id"]
    graph_id = assistant["graph_id"]
    description = assistant.get("description") or f"The {name} assistant (graph {graph_id})."
    return a2a.AgentCard(
        name=name,
        description=description,
        url=f"{base_url.rstrip('/')}/a2a/{assistant_id}",
        version=f"{__version__}+{assistant.get('version', 1)}",
        protocol_version=PROTOCOL_VERSION,
        preferred_transport="JSONRPC",
        capabilities=a2a.AgentCapabilities(
            streaming=True, push_notifications=False, state_transition_history=False
        ),
        default_input_modes=_MODES,
        default_output_modes=_MODES,
        skills=[a2a.AgentSkill(id=graph_id, name=name, description=description, tags=[graph_id])],
        security_schemes={
            "bearer": a2a.SecurityScheme(root=a2a.HTTPAuthSecurityScheme(scheme="bearer")),
            "apiKey": a2a.SecurityScheme(
                root=a2a.APIKeySecurityScheme(in_=a2a.In.header, name="X-Api-Key")
            ),
        },
        security=[{"bearer": []}, {"apiKey": []}],
    )

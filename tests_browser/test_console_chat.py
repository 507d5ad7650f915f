"""The console's chat in Chromium against a real server: the echo graph's streamed answer,
feedback on it (found through the API), an interrupt resumed by approve and by an edited
value, a slow run cancelled, custom events and tool calls shown, and agent output that
holds markup shown as text."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace

import httpx
from playwright.async_api import Page, expect

from .conftest import ConsoleServer, photograph, sign_in


async def choose(page: Page, graph: str) -> None:
    await page.select_option("#chat-assistant", label=f"{graph} (default)")


async def say(page: Page, text: str) -> None:
    await page.fill("#chat-form textarea[name=message]", text)
    await page.click("#chat-send")


async def run_with(page: Page, graph: str, input: dict, configurable: dict | None = None):
    """Start a run of `graph` with a raw input (graphs without `messages`)."""
    await choose(page, graph)
    await page.click("#chat-options summary")
    await page.fill("#chat-form textarea[name=input]", json.dumps(input))
    if configurable is not None:
        await page.fill("#chat-form textarea[name=configurable]", json.dumps(configurable))
    await page.click("#chat-send")


async def run_on_new_thread(
    client: httpx.AsyncClient, route: str, graph: str, input: dict, configurable: dict | None = None
) -> tuple[str, dict]:
    """A new thread of the client's user and a run of `graph` on it (`route`: `runs` or
    `runs/wait`): the thread's id and the answer."""
    thread = (await client.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": graph, "input": input}
    if configurable is not None:
        body["config"] = {"configurable": configurable}
    made = await client.post(f"/threads/{thread}/{route}", json=body)
    assert made.status_code == 200, made.text
    return thread, made.json()


def answer(page: Page, text: str):
    return page.locator("#chat-log .msg-ai", has=page.locator(".msg-text", has_text=text))


async def thread_id(page: Page) -> str:
    title = page.locator("#chat-title[data-thread-id]")
    await title.wait_for()
    return await title.get_attribute("data-thread-id")


async def test_the_echo_answer_streams_in_and_takes_feedback(page: Page, console: ConsoleServer):
    tag = uuid.uuid4().hex[:8]
    await sign_in(page, console, "anna")
    await choose(page, "agent")
    await say(page, f"hello {tag}")
    reply = answer(page, f"echo: hello {tag}")
    await reply.wait_for()
    thread = await thread_id(page)
    assert page.url.endswith(f"#/chat/{thread}")
    await expect(page.locator("#chat-status")).to_have_attribute("data-status", "success")
    run_id = await reply.get_attribute("data-run-id")

    await reply.locator("button.thumb[data-score='0']").click()
    await expect(reply.locator(".feedback-status")).to_have_text("Recorded: thumbs down")
    await reply.locator("button.thumb[data-score='1']").click()  # changed their mind
    await expect(reply.locator(".feedback-status")).to_have_text("Recorded: thumbs up")
    await reply.locator(".feedback-comment input[name=comment]").fill(f"nice {tag}")
    await reply.locator(".feedback-comment button[type=submit]").click()
    await expect(reply.locator(".feedback-status")).to_have_text("Comment recorded")
    await say(page, f"again {tag}")
    second = answer(page, f"echo: again {tag}")
    await second.wait_for()
    second_run = await second.get_attribute("data-run-id")
    assert second_run != run_id
    await expect(page.locator("#chat-status")).to_have_attribute("data-status", "success")
    await expect(page.locator(f"#chat-threads a[data-thread-id='{thread}']")).to_contain_text(
        f"hello {tag}"
    )
    await photograph(page, "chat")

    async with console.http("anna") as client:
        found = await client.post("/feedback/search", json={"thread_id": thread})
    thumbs = [event for event in found.json() if event["key"] == "thumbs"]  # newest first
    assert [(event["score"], event["run_id"], event["user_id"]) for event in thumbs] == [
        (1, run_id, "anna"),
        (0, run_id, "anna"),
    ]
    [comment] = [event for event in found.json() if event["key"] == "comment"]
    assert comment["comment"] == f"nice {tag}" and comment["run_id"] == run_id

    # Opened again from the list: each answer is tied to its own run again (the history).
    await page.goto(f"{console.url}/ui/#/chat")
    await page.locator(f"#chat-threads a[data-thread-id='{thread}']").click()
    reopened = answer(page, f"echo: hello {tag}")
    await expect(reopened).to_have_attribute("data-run-id", run_id)
    await expect(reopened.locator(".feedback-status")).to_have_text("You gave: thumbs up")
    await expect(reopened.locator("button.thumb[data-score='1']")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(answer(page, f"echo: again {tag}")).to_have_attribute("data-run-id", second_run)
    await reopened.locator("button.thumb[data-score='0']").click()
    await expect(reopened.locator(".feedback-status")).to_have_text("Recorded: thumbs down")
    async with console.http("anna") as client:
        found = await client.post("/feedback/search", json={"thread_id": thread, "key": "thumbs"})
    assert [event["score"] for event in found.json()] == [0, 1, 0]


async def test_a_member_signed_in_with_a_jwt_sees_only_their_conversations(
    page: Page, console: ConsoleServer
):
    tag = uuid.uuid4().hex[:8]
    async with console.http("anna") as client:
        others = (await client.post("/threads", json={})).json()["thread_id"]
    async with console.http("alice") as client:
        older, _ = await run_on_new_thread(
            client, "runs/wait", "agent", {"messages": [{"role": "user", "content": tag}]}
        )
    await sign_in(page, console, "alice")
    await choose(page, "agent")
    await say(page, f"hi from alice {tag}")
    await answer(page, f"echo: hi from alice {tag}").wait_for()
    mine = await thread_id(page)
    await page.click("#chat-new")
    await expect(page.locator("#chat-title")).to_have_text("New conversation")
    # The caller's conversations, the one updated last first.
    links = page.locator("#chat-threads a")
    await expect(links.first).to_have_attribute("data-thread-id", mine)
    await expect(page.locator(f"#chat-threads a[data-thread-id='{older}']")).to_have_text(
        re.compile(f"^{tag}")
    )
    assert await page.locator(f"#chat-threads a[data-thread-id='{others}']").count() == 0
    async with console.http("alice") as client:
        state = (await client.get(f"/threads/{mine}/state")).json()
    assert state["values"]["messages"][-1]["content"] == f"echo: hi from alice {tag}"
    assert state["metadata"]["owner"] == "alice"

    await page.goto(f"{console.url}/ui/#/chat/{others}")
    await expect(page.locator("#chat-log .msg-error")).to_contain_text("cannot be opened")
    await expect(page.locator(".notice.error")).to_contain_text("404")


async def test_a_narrowed_key_sees_only_what_it_may_do(page: Page, console: ConsoleServer):
    """A key that may run only `agent` and give no feedback: the picker offers `agent`
    alone and answers come without feedback controls."""
    scopes = ["threads:read", "threads:write", "runs:create", "runs:read", "assistants:read"]
    async with console.http("anna") as client:
        made = await client.post(
            f"/orgs/{console.org_a}/keys",
            json={"name": "chat only", "scopes": scopes, "assistants": ["agent"]},
        )
    assert made.status_code == 200, made.text
    narrowed = replace(console, keys={**console.keys, "narrow": made.json()["key"]})
    await sign_in(page, narrowed, "narrow")
    assert await page.locator("#chat-assistant option").all_inner_texts() == ["agent (default)"]
    await say(page, "narrow")
    await expect(answer(page, "echo: narrow")).to_have_attribute("data-run-id", re.compile(".+"))
    assert await page.locator("#chat-log .feedback").count() == 0


async def interrupted(page: Page, console: ConsoleServer) -> str:
    await sign_in(page, console, "alice")
    await choose(page, "hitl")
    await say(page, f"draft it {uuid.uuid4().hex[:6]}")
    await answer(page, "draft: ready to send").wait_for()
    card = page.locator("#chat-interrupts .msg-interrupt")
    await expect(card.locator(".interrupt-value")).to_contain_text("send the draft?")
    await expect(page.locator("#chat-status")).to_have_attribute("data-status", "interrupted")
    return await thread_id(page)


async def test_an_interrupt_approved_resumes_to_the_final_answer(
    page: Page, console: ConsoleServer
):
    thread = await interrupted(page, console)
    await page.click("#chat-interrupts button[data-action=approve]")
    await answer(page, "sent").wait_for()
    await expect(page.locator("#chat-status")).to_have_attribute("data-status", "success")
    assert await page.locator("#chat-interrupts .msg-interrupt").count() == 0
    async with console.http("alice") as client:
        state = (await client.get(f"/threads/{thread}/state")).json()
        status = (await client.get(f"/threads/{thread}")).json()["status"]
    assert state["values"]["approved"] is True
    assert state["values"]["messages"][-1]["content"] == "sent"
    assert status == "idle" and state["next"] == []


async def test_an_interrupt_resumed_with_an_edited_value(page: Page, console: ConsoleServer):
    thread = await interrupted(page, console)
    await page.click("#chat-interrupts .interrupt-edit summary")
    await page.fill("#chat-interrupts textarea[name=resume]", "not now")
    await page.click("#chat-interrupts button[data-action=edit]")
    await answer(page, "discarded").wait_for()
    async with console.http("alice") as client:
        state = (await client.get(f"/threads/{thread}/state")).json()
    assert state["values"]["approved"] is False
    assert state["values"]["messages"][-1]["content"] == "discarded"


async def test_an_interrupt_rejected_resumes_with_no(page: Page, console: ConsoleServer):
    """Rejected from the conversation opened again: the pending interrupt is shown there."""
    thread = await interrupted(page, console)
    await page.goto(f"{console.url}/ui/#/chat")
    await page.locator(f"#chat-threads a[data-thread-id='{thread}']").click()
    await expect(page.locator("#chat-interrupts .interrupt-value")).to_contain_text("the draft?")
    await page.click("#chat-interrupts button[data-action=reject]")
    await answer(page, "discarded").wait_for()
    async with console.http("alice") as client:
        state = (await client.get(f"/threads/{thread}/state")).json()
    assert state["values"]["approved"] is False


DECIDE = """async () => {
  const {approval, rejection, parseEdit} = await import("/ui/views/chat_interrupt.js");
  const middleware = {action_requests: [{name: "send", args: {to: "x"}}, {name: "rm", args: {}}]};
  return [approval({question: "ok?"}), rejection("ok?", "why"), approval(middleware),
    rejection(middleware, "too risky"), parseEdit('{"a": 1}'), parseEdit("plain words")];
}"""


async def test_a_subgraphs_interrupt_is_answered_and_the_state_shown(
    page: Page, console: ConsoleServer
):
    """`nested` asks from inside its child graph and keeps its answer in its state (it has
    no messages): the edited answer resumes it and the state shows it."""
    await sign_in(page, console, "alice")
    await run_with(page, "nested", {"topic": "tea"})
    card = page.locator("#chat-interrupts .msg-interrupt")
    await expect(card.locator(".interrupt-value")).to_contain_text("about TEA?")
    thread = await thread_id(page)
    await card.locator(".interrupt-edit summary").click()
    await card.locator("textarea[name=resume]").fill('{"brew": "green <b>"}')
    await card.locator("button[data-action=edit]").click()
    state = page.locator("#chat-log .msg-values .values-data").last
    await expect(state).to_contain_text("\"answer\": \"{'brew': 'green <b>'}\"")
    async with console.http("alice") as client:
        values = (await client.get(f"/threads/{thread}/state")).json()["values"]
    assert values == {"topic": "TEA", "answer": "{'brew': 'green <b>'}"}


async def test_interrupt_decisions_map_to_what_the_graph_reads(page: Page, console: ConsoleServer):
    """The example graphs read yes/no; LangChain's human-in-the-loop middleware (a value with
    `action_requests`) one decision per action; an edit is JSON when it parses, else text."""
    await sign_in(page, console, "anna")
    decided = await page.evaluate(DECIDE)
    assert decided == [
        "yes",
        "no",
        {"decisions": [{"type": "approve"}, {"type": "approve"}]},
        {"decisions": [{"type": "reject", "message": "too risky"}] * 2},
        {"a": 1},
        "plain words",
    ]


async def test_a_running_run_is_cancelled(page: Page, console: ConsoleServer):
    await sign_in(page, console, "anna")
    await run_with(page, "slow", {"ticks": 0}, {"steps": 3000, "delay": 0.1})
    cancel = page.locator("#chat-cancel")
    await expect(cancel).to_be_enabled()
    await expect(page.locator("#chat-status")).to_have_attribute("data-status", "running")
    run_id = await cancel.get_attribute("data-run-id")
    thread = await thread_id(page)
    await cancel.click()
    await expect(page.locator("#chat-status")).to_have_attribute("data-status", "cancelled")
    await expect(page.locator("#chat-log .msg-note.cancelled")).to_have_text("Run cancelled.")
    await expect(cancel).to_be_hidden()
    async with console.http("anna") as client:
        run = (await client.get(f"/threads/{thread}/runs/{run_id}")).json()
        state = (await client.get(f"/threads/{thread}/state")).json()
    assert run["status"] == "interrupted"
    assert state["values"].get("ticks", 0) < 3000


async def test_a_conversation_opened_mid_run_follows_it_and_cancels_it(
    page: Page, console: ConsoleServer
):
    async with console.http("anna") as client:
        thread, made = await run_on_new_thread(
            client, "runs", "slow", {"ticks": 0}, {"steps": 3000, "delay": 0.1}
        )
        run_id = made["run_id"]
        # Opened while the thread is busy: the view then joins the run's stream.
        assert (await client.get(f"/threads/{thread}")).json()["status"] == "busy"
    await sign_in(page, console, "anna")
    await page.goto(f"{console.url}/ui/#/chat/{thread}")
    cancel = page.locator(f"#chat-cancel[data-run-id='{run_id}']")
    await expect(cancel).to_be_enabled()
    await expect(page.locator("#chat-status")).to_have_attribute("data-status", "running")
    await cancel.click()
    await expect(page.locator("#chat-status")).to_have_attribute("data-status", "cancelled")
    async with console.http("anna") as client:
        run = (await client.get(f"/threads/{thread}/runs/{run_id}")).json()
    assert run["status"] == "interrupted"


async def test_custom_events_are_shown(page: Page, console: ConsoleServer):
    await sign_in(page, console, "anna")
    await run_with(page, "custom", {}, {"steps": 3})
    events = page.locator("#chat-log .msg-custom .custom-data")
    await expect(events).to_have_count(3)
    assert json.loads(await events.nth(2).inner_text()) == {"step": 3, "of": 3}
    await expect(page.locator("#chat-status")).to_have_attribute("data-status", "success")


async def test_tool_calls_and_tool_results_are_shown(page: Page, console: ConsoleServer):
    """A conversation whose history holds a tool call and its result (written through the
    state API, as a tool-calling graph would have)."""
    async with console.http("anna") as client:
        thread, _ = await run_on_new_thread(
            client, "runs/wait", "agent", {"messages": [{"role": "user", "content": "x"}]}
        )
        call = {"name": "lookup", "args": {"q": "<b>bold</b>"}, "id": "call-1"}
        messages = [
            {"type": "ai", "content": "", "tool_calls": [call], "id": "ai-tool"},
            {"type": "tool", "content": "42", "tool_call_id": "call-1", "name": "lookup"},
        ]
        updated = await client.post(
            f"/threads/{thread}/state", json={"values": {"messages": messages}, "as_node": "echo"}
        )
        assert updated.status_code == 200, updated.text
    await sign_in(page, console, "anna")
    await page.goto(f"{console.url}/ui/#/chat/{thread}")
    tool_call = page.locator("#chat-log .msg-ai .tool-call[data-tool=lookup]")
    await expect(tool_call.locator(".tool-args")).to_contain_text('"q": "<b>bold</b>"')
    result = page.locator("#chat-log .msg-tool")
    await expect(result.locator(".msg-text")).to_have_text("42")
    await expect(result.locator(".msg-head")).to_contain_text("lookup ← call-1")
    assert await page.locator("#chat-log b").count() == 0


async def test_agent_output_with_markup_is_shown_as_text(page: Page, console: ConsoleServer):
    payload = "<img src=x onerror=window.__xss=1>"
    await sign_in(page, console, "anna")
    await choose(page, "agent")
    await say(page, payload)
    await expect(answer(page, f"echo: {payload}")).to_have_count(1)
    await expect(page.locator("#chat-threads .thread-title", has_text=payload)).not_to_have_count(0)
    assert await page.locator("#chat-log img, #chat-threads img").count() == 0
    assert await page.evaluate("typeof window.__xss") == "undefined"


GROW = """async () => {
  const {Transcript} = await import("/ui/views/chat_messages.js");
  const log = document.createElement("div");
  const transcript = new Transcript(log, (_message, runId) => {
    const extra = document.createElement("span");
    extra.className = "extra";
    extra.textContent = runId;
    return extra;
  });
  const seen = [];
  const pieces = [["Hel", "look", '{"q": '], ["lo <i>", null, "1}"], ["there</i>", null, ""]];
  for (const [text, name, args] of pieces) {
    transcript.chunk({type: "AIMessageChunk", id: "m1", content: text,
      tool_call_chunks: [{index: 0, name, args, id: name ? "c1" : null}]}, "r1");
    seen.push([log.children.length, log.querySelector(".msg-text").textContent,
      log.querySelector(".tool-call .tool-args").textContent]);
  }
  transcript.message({type: "ai", id: "m1", content: [{type: "text", text: "Hello there"}],
    tool_calls: [{name: "look", args: {q: 1}, id: "c1"}]}, "r1");
  transcript.message({type: "ai", id: "m2", content: "",
    tool_calls: [{name: "look", args: {}, id: "c2"}]}, "r2");
  return {seen, bubbles: log.children.length, italics: log.querySelectorAll("i").length,
    extras: [...log.querySelectorAll(".extra")].map((node) => node.textContent),
    text: log.querySelector(".msg-text").textContent,
    tool: log.querySelector(".tool-call").dataset.tool,
    args: JSON.parse(log.querySelector(".tool-call .tool-args").textContent)};
}"""


async def test_streamed_chunks_grow_one_answer_in_place(page: Page, console: ConsoleServer):
    """An LLM's tokens come as `messages` events of one id (AIMessageChunk, with tool-call
    pieces): they grow one bubble; the complete message then replaces what they built. The
    example graphs answer in one piece, so the transcript is fed here in the page."""
    await sign_in(page, console, "anna")
    grown = await page.evaluate(GROW)
    assert grown["seen"] == [
        [1, "Hel", '{"q": '],
        [1, "Hello <i>", '{"q": 1}'],
        [1, "Hello <i>there</i>", '{"q": 1}'],
    ]
    assert grown["bubbles"] == 2 and grown["italics"] == 0
    assert grown["extras"] == ["r1"]  # feedback on the answer, not on the tool-only step
    assert grown["text"] == "Hello there"
    assert grown["tool"] == "look" and grown["args"] == {"q": 1}


# Runs in the page before a message is sent: every text an AI answer shows, in order.
WATCH_ANSWERS = """
() => {
  window.__answerTexts = [];
  new MutationObserver((records) => {
    for (const record of records) {
      if (record.target.matches?.(".msg-ai .msg-text")) {
        // The text node set then: the records of one task are delivered together.
        for (const node of record.addedNodes) window.__answerTexts.push(node.textContent);
      }
    }
  }).observe(document.getElementById("chat-log"), {childList: true, subtree: true});
}
"""


async def test_a_live_tool_call_and_the_answer_streamed_token_by_token(
    page: Page, console: ConsoleServer
):
    """The `tools` graph calls a tool, then its model streams the answer word by word: the
    page shows the call and its result live, and the answer grows through its prefixes."""
    tag = uuid.uuid4().hex[:6]
    await sign_in(page, console, "anna")
    await choose(page, "tools")
    await page.evaluate(WATCH_ANSWERS)
    await say(page, f"find {tag}")
    final = "the tool found 11 letters for you, word by word"
    await answer(page, final).wait_for()
    await expect(page.locator("#chat-status")).to_have_attribute("data-status", "success")
    call = page.locator("#chat-log .msg-ai .tool-call[data-tool=lookup]")
    await expect(call.locator(".tool-args")).to_contain_text(f'"q": "find {tag}"')
    await expect(page.locator("#chat-log .msg-tool .msg-text")).to_have_text("11 letters")
    shown = [text for text in await page.evaluate("window.__answerTexts") if text]
    growing = [text for text in dict.fromkeys(shown) if final.startswith(text)]
    assert growing[0] == "the" and growing[-1] == final, shown
    assert len(growing) >= 10, shown  # the words came one by one, not as one message

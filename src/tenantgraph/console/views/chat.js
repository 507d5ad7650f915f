// Chat: pick an assistant (the org's default ones, one per graph, included), start a
// conversation or open one of the caller's (`#/chat/<thread_id>`), and stream each run
// (POST /threads/{id}/runs/stream): tokens grow the answer in place, tool calls, tool
// results and custom events are shown as such, an interrupt asks for a decision that
// resumes the run, a running run can be cancelled, and every answer takes feedback.

import {attempt, h, mount, notify, when} from "../dom.js";
import {feedbackControls, thumbsGiven} from "./chat_feedback.js";
import {flatten, interruptCards} from "./chat_interrupt.js";
import {contentText, roleOf, Transcript} from "./chat_messages.js";

// What LangGraph's UIs ask for: message chunks with their metadata, node updates (which
// carry `__interrupt__` and complete messages), and what graphs write to the stream; with
// subgraphs' events too (named `<mode>|<namespace>`).
export const STREAM_MODES = ["messages-tuple", "updates", "custom"];
const OVER = new Set(["success", "error", "timeout", "interrupted"]);

function assistantLabel(assistant) {
  return assistant.metadata?.created_by === "system"
    ? `${assistant.graph_id} (default)` : `${assistant.name} · ${assistant.graph_id}`;
}

// A thread's values when they are not a conversation (no `messages`), else null.
function stateShown(thread) {
  const values = thread?.values;
  return values && typeof values === "object" && !Array.isArray(values.messages)
    && Object.keys(values).length ? values : null;
}

function threadTitle(thread) {
  const first = (thread.values?.messages || []).find((m) => roleOf(m) === "human");
  const text = first ? contentText(first.content).trim() : "";
  if (text) return text.length > 60 ? `${text.slice(0, 60)}…` : text;
  return thread.metadata?.graph_id ? `(${thread.metadata.graph_id})` : "(empty)";
}

// The messages a node's update carries (a list, one message, or none).
function updateMessages(update) {
  const found = update && typeof update === "object" ? update.messages : null;
  if (!found) return [];
  return (Array.isArray(found) ? found : [found]).filter((m) => m && m.type !== "remove");
}

export async function render(root, ctx, params) {
  const {api, me} = ctx;
  const state = {threadId: params[0] || null, running: null, left: false, given: new Map()};

  // Only what the credential may do: the assistants it may run, feedback if it may give it.
  const found = await api.post("/assistants/search", {limit: 100, sort_by: "name",
    sort_order: "asc"});
  const assistants = me.assistants
    ? found.filter((a) => me.assistants.includes(a.assistant_id)
      || me.assistants.includes(a.graph_id))
    : found;
  const mayGiveFeedback = !me.scopes || me.scopes.includes("feedback:write");
  const mayReadFeedback = !me.scopes || me.scopes.includes("feedback:read");
  const picker = h("select", {id: "chat-assistant", name: "assistant"},
    assistants.map((a) => h("option", {value: a.assistant_id, dataset: {graphId: a.graph_id}},
      assistantLabel(a))));
  const threadList = h("ul", {id: "chat-threads", class: "chat-threads"});
  const title = h("h1", {id: "chat-title"}, "New conversation");
  const badge = h("span", {id: "chat-status", class: "badge"});
  const log = h("div", {id: "chat-log", class: "chat-log", "aria-live": "polite"});
  const pending = h("div", {id: "chat-interrupts"});
  const message = h("textarea", {name: "message", rows: "3", placeholder: "Write a message…",
    "aria-label": "Message"});
  const inputJson = h("textarea", {name: "input", rows: "3",
    placeholder: '{"messages": […]} — replaces the message as the run\'s input'});
  const configurable = h("textarea", {name: "configurable", rows: "2",
    placeholder: '{"key": "value"} — config.configurable of the run'});
  const send = h("button", {type: "submit", id: "chat-send", class: "primary"}, "Send");
  const cancel = h("button", {type: "button", id: "chat-cancel", class: "danger",
    hidden: true, disabled: true, onclick: cancelRun}, "Cancel run");
  const form = h("form", {id: "chat-form", class: "chat-form"}, message,
    h("details", {id: "chat-options"}, h("summary", {}, "Run options"),
      h("label", {}, "Input (JSON)", inputJson),
      h("label", {}, "Configurable (JSON)", configurable)),
    h("div", {class: "actions"}, cancel, send));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(submit);
  });
  message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  const transcript = new Transcript(log, mayGiveFeedback
    ? (_message, runId) => feedbackControls(api, state.threadId, runId, state.given.get(runId))
    : null);

  mount(root, h("div", {class: "split chat-layout"},
    h("aside", {class: "card chat-side"},
      h("label", {}, "Assistant", picker),
      h("button", {type: "button", id: "chat-new", onclick: newConversation},
        "New conversation"),
      h("h2", {}, "Your conversations"), threadList),
    h("div", {class: "card chat-main"},
      h("header", {class: "chat-head"}, title, badge), log, pending, form)));

  function setStatus(status, text = status) {
    badge.className = `badge ${status}`;
    badge.dataset.status = status;
    badge.textContent = text;
  }

  function setBusy(busy) {
    send.disabled = busy;
    cancel.hidden = !busy;
    cancel.disabled = true; // enabled once the run's id is known
    root.classList.toggle("running", busy);
  }

  function runKnown(runId) {
    cancel.disabled = false;
    cancel.dataset.runId = runId;
  }

  async function loadThreads() {
    const threads = await api.post("/threads/search", {metadata: {owner: me.user_id},
      sort_by: "updated_at", sort_order: "desc", limit: 50});
    mount(threadList, threads.length ? threads.map((thread) => h("li", {},
      h("a", {href: `#/chat/${thread.thread_id}`, dataset: {threadId: thread.thread_id},
        class: thread.thread_id === state.threadId ? "current" : null},
        h("span", {class: "thread-title"}, threadTitle(thread)),
        h("span", {class: "thread-meta"},
          h("span", {class: `badge ${thread.status}`}, thread.status),
          h("span", {class: "muted"}, when(thread.updated_at))))))
      : h("li", {class: "muted"}, "No conversations yet."));
  }

  function newConversation() {
    if (state.threadId) ctx.navigate("#/chat");
    else message.focus();
  }

  // The thread's messages, each AI answer tied to the run that wrote it (the oldest
  // checkpoint holding the message names the run), its status and pending interrupts.
  async function openThread(threadId) {
    const thread = await api.get(`/threads/${threadId}`);
    const history = await api.post(`/threads/${threadId}/history`, {limit: 100});
    if (mayGiveFeedback && mayReadFeedback) {
      state.given = await thumbsGiven(api, threadId, me.user_id);
    }
    const runOf = new Map();
    for (const checkpoint of [...history].reverse()) {
      for (const m of checkpoint.values?.messages || []) {
        if (m.id && !runOf.has(m.id)) runOf.set(m.id, checkpoint.metadata?.run_id);
      }
    }
    title.textContent = threadTitle(thread);
    title.dataset.threadId = threadId;
    const assistantId = thread.metadata?.assistant_id;
    if (assistantId && [...picker.options].some((o) => o.value === assistantId)) {
      picker.value = assistantId;
    }
    transcript.clear();
    for (const m of thread.values?.messages || []) transcript.message(m, runOf.get(m.id));
    if (stateShown(thread)) transcript.values(stateShown(thread));
    setStatus(thread.status);
    showInterrupts(thread);
    if (thread.status === "busy") {
      const runs = await api.get(`/threads/${threadId}/runs?limit=10`);
      const live = runs.find((run) => run.status === "running" || run.status === "pending");
      if (live) {
        follow((signal, onEvent) => api.stream("GET",
          `/threads/${threadId}/runs/${live.run_id}/stream`, undefined, onEvent, {signal}),
        live.run_id);
      }
    }
    return true;
  }

  function showInterrupts(thread) {
    const waiting = thread.status === "interrupted" ? flatten(thread.interrupts) : [];
    mount(pending, interruptCards(waiting, (resume) => attempt(() =>
      startRun({command: {resume}}))));
  }

  function parseOption(field, name) {
    const text = field.value.trim();
    if (!text) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${name} is not valid JSON`);
    }
  }

  async function submit() {
    if (state.running) return;
    const text = message.value.trim();
    const input = parseOption(inputJson, "Input")
      ?? (text ? {messages: [{role: "user", content: text}]} : undefined);
    const config = parseOption(configurable, "Configurable");
    if (input === undefined) return;
    if (!state.threadId) {
      const thread = await api.post("/threads", {});
      state.threadId = thread.thread_id;
      title.dataset.threadId = thread.thread_id;
      // The address names the conversation without reloading the view.
      history.replaceState(null, "", `#/chat/${thread.thread_id}`);
    }
    if (text && !inputJson.value.trim()) {
      transcript.message({type: "human", content: text, id: `sent-${Date.now()}`});
    }
    if (title.textContent === "New conversation") {
      const graph = picker.selectedOptions[0]?.dataset.graphId;
      title.textContent = text ? text.slice(0, 60) : `(${graph})`;
    }
    message.value = "";
    await startRun({input, ...(config ? {config: {configurable: config}} : {})});
  }

  function startRun(body) {
    mount(pending);
    const payload = {assistant_id: picker.value, stream_mode: STREAM_MODES,
      stream_subgraphs: true, ...body};
    return follow((signal, onEvent) => api.stream("POST",
      `/threads/${state.threadId}/runs/stream`, payload, onEvent, {signal}));
  }

  // Read one run's stream to its end, then show how it ended.
  async function follow(open, runId = null) {
    const current = {runId, controller: new AbortController(), cancelled: false};
    state.running = current;
    setBusy(true);
    if (runId) runKnown(runId);
    setStatus("running");
    try {
      await open(current.controller.signal, (event, data) => onEvent(current, event, data));
    } catch (error) {
      if (state.left) return;
      transcript.error({error: "Stream", message: error.message || String(error)});
    }
    if (state.left) return;
    await settle(current);
  }

  function onEvent(current, event, data) {
    const [base, ...namespace] = event.split("|");
    if (base === "metadata" && !current.runId) {
      current.runId = data.run_id;
      runKnown(data.run_id);
    } else if (base === "messages" && Array.isArray(data)) {
      const [msg, meta] = data;
      const runId = meta?.run_id || current.runId;
      if (String(msg.type || "").endsWith("Chunk")) transcript.chunk(msg, runId);
      else transcript.message(msg, runId);
    } else if (base === "updates" && data && typeof data === "object") {
      for (const [node, update] of Object.entries(data)) {
        if (node === "__interrupt__") continue; // shown from the thread once the run ends
        for (const m of updateMessages(update)) transcript.message(m, current.runId);
      }
    } else if (base === "custom") {
      transcript.custom(data, namespace.join("|"));
    } else if (base === "error") {
      transcript.error(data);
    } else if (base === "shutdown") {
      transcript.note("The server stopped while streaming; the run continues elsewhere.");
    }
  }

  async function settle(current) {
    let run = null;
    // A cancelled run's status is written as its stream closes: look again briefly.
    for (let tries = 0; current.runId && tries < 25; tries++) {
      run = await attempt(() => api.get(`/threads/${state.threadId}/runs/${current.runId}`));
      if (!run || OVER.has(run.status) || state.left) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    if (state.left) return;
    state.running = null;
    setBusy(false);
    const thread = await attempt(() => api.get(`/threads/${state.threadId}`));
    if (current.cancelled && run?.status === "interrupted") {
      setStatus("cancelled");
      transcript.note("Run cancelled.", "cancelled");
    } else if (thread?.status === "interrupted") {
      setStatus("interrupted"); // an interrupt() ends the run itself in success
    } else {
      setStatus(run?.status || thread?.status || "unknown");
    }
    if (stateShown(thread)) transcript.values(stateShown(thread));
    if (thread && !current.cancelled) showInterrupts(thread);
    await attempt(loadThreads);
  }

  async function cancelRun() {
    const current = state.running;
    if (!current?.runId) return;
    current.cancelled = true;
    cancel.disabled = true;
    setStatus("cancelling", "cancelling…");
    const done = await attempt(() =>
      api.post(`/threads/${state.threadId}/runs/${current.runId}/cancel`, {}));
    if (done === undefined) current.cancelled = false;
    else notify("Cancel requested.");
  }

  setStatus("new", "new");
  if (!assistants.length) {
    send.disabled = true;
    transcript.note("This credential may run no assistant.", "error");
  }
  await attempt(loadThreads);
  if (state.threadId) {
    const opened = await attempt(() => openThread(state.threadId));
    if (!opened) {
      transcript.error({error: "Not found", message: "This conversation cannot be opened."});
    }
  }
  return () => {
    state.left = true;
    state.running?.controller.abort();
  };
}

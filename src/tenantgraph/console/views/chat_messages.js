// The chat's transcript: messages (human, AI with its tool calls, tool results), custom
// events, errors and notes, drawn as text only. Streamed chunks of one message id grow the
// same bubble in place; a complete message of that id replaces what the chunks built.

import {h, mount, show} from "../dom.js";

// "human", "ai", "tool", "system" (or the raw type) from a message's `type`/`role`:
// serialized chunks say "AIMessageChunk", a client's input may say role "user".
export function roleOf(message) {
  const kind = String(message.type || message.role || "").toLowerCase();
  if (kind.includes("tool")) return "tool";
  if (kind.includes("human") || kind === "user") return "human";
  if (kind.includes("system")) return "system";
  if (kind.includes("ai") || kind === "assistant") return "ai";
  return kind || "message";
}

// A message's content as text: a string as it is, content blocks' text joined, any other
// block as JSON (images and the like are not fetched).
export function contentText(content) {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return show(content);
  return content.map((block) => {
    if (typeof block === "string") return block;
    if (block && block.type === "text") return block.text ?? "";
    return show(block);
  }).join("");
}

// Small values on one line, larger ones indented.
function compact(value) {
  const line = typeof value === "string" ? value : JSON.stringify(value);
  return line !== undefined && line.length <= 100 ? line : show(value);
}

const LABELS = {human: "You", ai: "Assistant", tool: "Tool", system: "System"};

export class Transcript {
  // log: the element messages go into; answerExtras(message, runId) → nodes shown under an
  // AI answer once its run and some text are known (the feedback controls), or null.
  constructor(log, answerExtras) {
    this.log = log;
    this.answerExtras = answerExtras;
    this.entries = new Map(); // message id → {node, text, chunks: Map(index → call)}
  }

  clear() {
    this.entries.clear();
    mount(this.log);
  }

  has(id) {
    return this.entries.has(id);
  }

  // A complete message (from the history, a `messages` event or an update).
  message(message, runId) {
    const entry = this.entry(message, runId);
    entry.text = contentText(message.content);
    entry.chunks.clear();
    this.draw(entry, message.tool_calls || [], message);
    this.finish(entry, message, runId);
  }

  // A streamed chunk: its text and tool-call pieces are added to what came before.
  chunk(message, runId) {
    const entry = this.entry(message, runId);
    entry.text += contentText(message.content);
    for (const piece of message.tool_call_chunks || []) {
      const index = piece.index ?? entry.chunks.size;
      const call = entry.chunks.get(index) || {name: "", args: "", id: null};
      call.name += piece.name || "";
      call.args += piece.args || "";
      call.id = call.id || piece.id;
      entry.chunks.set(index, call);
    }
    this.draw(entry, [...entry.chunks.values()], message);
    this.finish(entry, message, runId);
  }

  entry(message, runId) {
    const id = message.id || `local-${this.entries.size}`;
    let entry = this.entries.get(id);
    if (!entry) {
      const role = roleOf(message);
      const node = h("article", {class: `msg msg-${role}`, dataset: {role, messageId: id}},
        h("header", {class: "msg-head"}, this.label(role, message)),
        h("div", {class: "msg-text"}),
        h("div", {class: "tool-calls"}),
        h("footer", {class: "msg-extras"}));
      entry = {node, role, text: "", chunks: new Map(), runId: null};
      this.entries.set(id, entry);
      this.append(node);
    }
    if (runId && !entry.node.dataset.runId) entry.node.dataset.runId = runId;
    return entry;
  }

  label(role, message) {
    const name = message.name ? ` · ${message.name}` : "";
    if (role === "tool") {
      return `${LABELS.tool}${name}${message.tool_call_id ? ` ← ${message.tool_call_id}` : ""}`;
    }
    return `${LABELS[role] || role}${name}`;
  }

  draw(entry, calls, message) {
    const text = entry.node.querySelector(".msg-text");
    text.textContent = entry.text;
    text.classList.toggle("empty", !entry.text);
    if (message.status === "error") entry.node.classList.add("tool-error");
    mount(entry.node.querySelector(".tool-calls"), calls.map((call) =>
      h("div", {class: "tool-call", dataset: {toolCallId: call.id || "", tool: call.name || ""}},
        h("span", {class: "tool-name"}, `→ ${call.name || "tool"}`),
        h("pre", {class: "tool-args"},
          typeof call.args === "string" ? call.args : show(call.args ?? {})))));
  }

  finish(entry, message, runId) {
    const extras = entry.node.querySelector(".msg-extras");
    // An answer has text: a step that only calls tools takes no feedback.
    if (entry.role === "ai" && entry.text && runId && !extras.childElementCount
      && this.answerExtras) {
      const nodes = this.answerExtras(message, runId);
      if (nodes) mount(extras, nodes);
    }
  }

  // One `custom` event of the graph (get_stream_writer), under the node that wrote it.
  custom(data, namespace) {
    this.append(h("aside", {class: "msg msg-custom", dataset: {role: "custom"}},
      h("header", {class: "msg-head"}, namespace ? `Custom event · ${namespace}` : "Custom event"),
      h("pre", {class: "custom-data"}, compact(data))));
  }

  // A graph without `messages` answers in its state: shown after each run as it stands.
  values(values) {
    this.append(h("aside", {class: "msg msg-values", dataset: {role: "values"}},
      h("header", {class: "msg-head"}, "State"),
      h("pre", {class: "values-data"}, show(values))));
  }

  error(data) {
    const what = data && typeof data === "object"
      ? `${data.error || "Error"}: ${data.message ?? show(data)}` : show(data);
    this.append(h("aside", {class: "msg msg-error", role: "alert", dataset: {role: "error"}},
      what));
  }

  note(text, kind = "info") {
    this.append(h("p", {class: `msg-note ${kind}`, dataset: {role: "note"}}, text));
  }

  append(node) {
    const stick = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40;
    this.log.appendChild(node);
    if (stick) this.log.scrollTop = this.log.scrollHeight;
  }
}

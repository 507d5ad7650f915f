// How the threads view shows values it did not make: metadata, state values, errors. All
// of it is untrusted (agent output): it goes in as text only.

import {h, show} from "../dom.js";

// Metadata as key=value chips (values of any JSON type, shown as text).
export function metadataChips(metadata) {
  return h("span", {class: "chips"}, Object.entries(metadata || {}).map(([key, value]) =>
    h("span", {class: "chip", dataset: {key}},
      `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)));
}

// A message's text: a string, or the text blocks of a content list, else its JSON.
function messageText(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content) && content.every((block) => block && block.type === "text")) {
    return content.map((block) => block.text).join("");
  }
  return show(content);
}

// A state's values: its `messages` as a conversation, the other keys as JSON, and the whole
// as JSON on demand.
export function valuesView(values) {
  const messages = values && Array.isArray(values.messages) ? values.messages : null;
  const rest = messages ? Object.fromEntries(
    Object.entries(values).filter(([key]) => key !== "messages")) : values;
  return h("div", {class: "values"},
    messages ? h("ol", {class: "messages"}, messages.map((message) =>
      h("li", {class: `message ${message.type || ""}`},
        h("span", {class: "badge"}, message.type || "message"),
        h("span", {class: "text"}, messageText(message.content)),
        message.tool_calls && message.tool_calls.length
          ? h("pre", {class: "tool-calls"}, show(message.tool_calls)) : null))) : null,
    !messages || Object.keys(rest).length ? h("pre", {class: "json"}, show(rest)) : null,
    messages ? h("details", {}, h("summary", {}, "JSON"), h("pre", {}, show(values))) : null);
}

// An error payload ({error, message}) as one line.
export function errorText(error) {
  if (error && typeof error === "object" && (error.error || error.message)) {
    return [error.error, error.message].filter(Boolean).join(": ");
  }
  return show(error);
}

// A run that stopped at `interrupt()`: its value and a form that resumes it with
// `command: {resume: …}`. Approve and reject map to what the graph reads: the example
// graphs' yes/no, or for LangChain's human-in-the-loop middleware (a value with
// `action_requests`) one decision per action. Edit sends what the user typed: JSON when it
// parses, else the text itself.

import {h, show} from "../dom.js";

// [{id, value}] of a thread's `interrupts` ({task id: [interrupt]}) or a stream's list.
export function flatten(interrupts) {
  if (!interrupts) return [];
  if (Array.isArray(interrupts)) return interrupts;
  return Object.values(interrupts).flat();
}

function actionRequests(value) {
  return value && typeof value === "object" && Array.isArray(value.action_requests)
    ? value.action_requests : null;
}

export function approval(value) {
  const actions = actionRequests(value);
  return actions ? {decisions: actions.map(() => ({type: "approve"}))} : "yes";
}

export function rejection(value, reason) {
  const actions = actionRequests(value);
  if (!actions) return "no";
  return {decisions: actions.map(() => ({type: "reject", message: reason || "Rejected"}))};
}

// What the edit box starts with: the middleware's actions as edit decisions, else empty
// (the user types the answer the graph asked for).
function editTemplate(value) {
  const actions = actionRequests(value);
  if (!actions) return "";
  return JSON.stringify({decisions: actions.map((action) => ({
    type: "edit", edited_action: {name: action.name, args: action.args ?? {}},
  }))}, null, 2);
}

export function parseEdit(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// The resume of one interrupt among several is keyed by its id (LangGraph resumes those
// named and interrupts again for the rest).
function resumeOf(interrupts, interrupt, value) {
  return interrupts.length > 1 && interrupt.id ? {[interrupt.id]: value} : value;
}

// One card per pending interrupt; onResume(resume) is awaited with the buttons disabled.
export function interruptCards(interrupts, onResume) {
  return interrupts.map((interrupt) => {
    const edit = h("textarea", {name: "resume", rows: "4", value: editTemplate(interrupt.value),
      placeholder: 'A resume value: JSON ("yes", {"key": 1}) or plain text',
      "aria-label": "Resume value"});
    const reason = h("input", {name: "reason", placeholder: "Reason (optional)",
      autocomplete: "off", "aria-label": "Reason"});
    const card = h("form", {class: "msg msg-interrupt", dataset: {role: "interrupt",
      interruptId: interrupt.id || ""}},
      h("header", {class: "msg-head"}, "The run is waiting for you"),
      h("pre", {class: "interrupt-value"}, show(interrupt.value)),
      h("div", {class: "interrupt-actions"},
        h("button", {type: "button", class: "primary", dataset: {action: "approve"},
          onclick: () => send(approval(interrupt.value))}, "Approve"),
        h("button", {type: "button", class: "danger", dataset: {action: "reject"},
          onclick: () => send(rejection(interrupt.value, reason.value.trim()))}, "Reject"),
        reason),
      h("details", {class: "interrupt-edit"},
        h("summary", {}, "Edit the answer"),
        edit,
        h("button", {type: "submit", dataset: {action: "edit"}}, "Resume with this value")));
    card.addEventListener("submit", (event) => {
      event.preventDefault();
      send(parseEdit(edit.value));
    });
    async function send(value) {
      for (const button of card.querySelectorAll("button")) button.disabled = true;
      card.classList.add("answered");
      await onResume(resumeOf(interrupts, interrupt, value));
    }
    return card;
  });
}

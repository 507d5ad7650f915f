// Feedback on an answer through the feedback API, as the signed-in caller: a thumb is the
// key "thumbs" with score 1 or 0, a comment the key "comment" with its text. The recorded
// event's id is kept on the controls, so a reader (or a test) sees what was stored; a
// conversation opened again shows the thumbs the caller gave before.

import {attempt, h} from "../dom.js";

export const THUMBS_KEY = "thumbs";
export const COMMENT_KEY = "comment";

// A thumb drawn here (no emoji font is needed): a cuff and a hand, turned over for down.
function thumbIcon(up) {
  return h("svg:svg", {viewBox: "0 0 24 24", width: "16", height: "16", "aria-hidden": "true",
    class: "thumb-icon"},
  h("svg:g", {fill: "currentColor", transform: up ? null : "rotate(180 12 12)"},
    h("svg:rect", {x: "2", y: "10", width: "4", height: "11", rx: "1"}),
    h("svg:path", {d: "M8 10 L12 3 C13.5 3 14.6 4.1 14.2 5.6 L13.5 9 H19.5 C21 9 22 10.2 "
      + "21.7 11.6 L20.2 19 C20 20.2 19 21 17.8 21 H8 Z"})));
}

const THUMB_LABELS = {1: "Thumbs up", 0: "Thumbs down"};

// run id → the latest thumbs score the caller gave on it in this thread (POST
// /feedback/search answers newest first; an admin's search is narrowed to their own).
export async function thumbsGiven(api, threadId, userId) {
  const events = await api.post("/feedback/search", {thread_id: threadId, key: THUMBS_KEY,
    user_id: userId, limit: 1000});
  const given = new Map();
  for (const event of events) {
    if (!given.has(event.run_id)) given.set(event.run_id, event.score);
  }
  return given;
}

// `given`: the thumbs score the caller gave on this run before, if any.
export function feedbackControls(api, threadId, runId, given) {
  const status = h("span", {class: "feedback-status", role: "status"});
  const box = h("div", {class: "feedback", dataset: {runId}});

  async function record(body, done) {
    const row = await attempt(() =>
      api.post(`/threads/${threadId}/runs/${runId}/feedback`, body));
    if (!row) return false;
    box.dataset.feedbackId = row.feedback_id;
    status.textContent = done;
    status.className = "feedback-status ok";
    return true;
  }

  const thumb = (score, label) => h("button", {
    type: "button", class: "thumb", title: label, "aria-label": label,
    "aria-pressed": String(given === score), dataset: {score: String(score)},
    onclick: async (event) => {
      const button = event.currentTarget;
      if (await record({key: THUMBS_KEY, score}, `Recorded: ${label.toLowerCase()}`)) {
        for (const other of box.querySelectorAll("button.thumb")) {
          other.setAttribute("aria-pressed", String(other === button));
        }
      }
    },
  }, thumbIcon(score === 1));

  const comment = h("input", {name: "comment", placeholder: "Comment on this answer…",
    maxlength: "2000", autocomplete: "off", "aria-label": "Comment"});
  const form = h("form", {class: "feedback-comment"}, comment,
    h("button", {type: "submit"}, "Send"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = comment.value.trim();
    if (text && await record({key: COMMENT_KEY, comment: text}, "Comment recorded")) {
      comment.value = "";
    }
  });

  box.append(thumb(1, THUMB_LABELS[1]), thumb(0, THUMB_LABELS[0]), form, status);
  if (given in THUMB_LABELS) status.textContent = `You gave: ${THUMB_LABELS[given].toLowerCase()}`;
  return box;
}

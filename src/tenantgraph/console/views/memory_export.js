// Export and erasure of a user's memory: the caller's own export, and for admins any user's
// export and the deletion of all their memory (and feedback) behind a confirmation.
// GET /store/users/{user}/export answers JSON lines (items, then {"feedback": …} events);
// the download is one JSON document made from them.

import {attempt, confirmAction, h, mount, notify} from "../dom.js";

// api.js parses a body that is one JSON document: one line comes back parsed, several as text.
function jsonLines(body) {
  if (body === null || body === undefined) return [];
  if (typeof body !== "string") return [body];
  return body.split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line));
}

// Fetch `userId`'s export and offer it as `memory-<org>-<user>.json`; resolves to the document.
export async function exportUser(ctx, userId) {
  const lines = jsonLines(await ctx.api.get(`/store/users/${encodeURIComponent(userId)}/export`));
  const document_ = {
    org_id: ctx.me.org_id,
    user_id: userId,
    exported_at: new Date().toISOString(),
    items: lines.filter((line) => !("feedback" in line)),
    feedback: lines.filter((line) => "feedback" in line).map((line) => line.feedback),
  };
  download(`memory-${ctx.me.org_id}-${userId}.json`, document_);
  return document_;
}

function download(filename, data) {
  const blob = new Blob([JSON.stringify(data, null, 2)], {type: "application/json"});
  const url = URL.createObjectURL(blob);
  const link = h("a", {download: filename, class: "memory-download"});
  // A blob: URL this page made; dom.js's href check admits relative and http(s) links only.
  link.href = url;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// The admins' card: a user id (suggested from the org's members, and `shared`), export, and
// delete all of that user's memory. `onErased(userId)` runs after a delete.
export function adminPanel(ctx, onErased) {
  const members = h("datalist", {id: "memory-members"}, h("option", {value: "shared"}));
  const user = h("input", {name: "user_id", id: "memory-user", list: "memory-members",
    required: true, autocomplete: "off", placeholder: "user id"});
  const outcome = h("p", {class: "muted", id: "memory-admin-outcome"});
  const chosen = () => {
    const value = user.value.trim();
    if (!value) notify("Name a user first.", "error");
    return value;
  };
  const exportOne = () => attempt(async () => {
    const userId = chosen();
    if (!userId) return;
    const exported = await exportUser(ctx, userId);
    mount(outcome, `Exported ${exported.items.length} items and ${exported.feedback.length} ` +
      `feedback events of ${userId}.`);
  });
  const erase = async () => {
    const userId = chosen();
    if (!userId) return;
    const sure = await confirmAction(
      `Delete all of ${userId}’s memory in ${ctx.me.org_id}, and every feedback event ` +
      `${userId} gave? This cannot be undone.`, `Delete ${userId}’s memory`);
    if (!sure) return;
    await attempt(async () => {
      const done = await ctx.api.delete(`/store/users/${encodeURIComponent(userId)}`);
      mount(outcome, `Deleted ${done.deleted} items and ${done.feedback_deleted} feedback ` +
        `events of ${userId}.`);
      outcome.dataset.deleted = String(done.deleted);
      onErased(userId);
    });
  };
  suggestMembers(ctx, members);
  return h("div", {class: "card", id: "memory-admin"},
    h("h2", {}, "A user’s memory (admins)"),
    h("div", {class: "toolbar"},
      h("label", {}, "User", user, members),
      h("button", {type: "button", id: "memory-admin-export", onclick: exportOne}, "Export"),
      h("button", {type: "button", class: "danger", id: "memory-admin-delete", onclick: erase},
        "Delete all memory…")),
    outcome);
}

// The org's members as suggestions; without them (e.g. a key lacking the scope) the field
// still takes any user id.
async function suggestMembers(ctx, list) {
  try {
    const members = await ctx.api.get(`/orgs/${encodeURIComponent(ctx.me.org_id)}/members`);
    for (const member of members) list.appendChild(h("option", {value: member.user_id}));
  } catch {
    // Suggestions only.
  }
}

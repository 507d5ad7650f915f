// API keys: POST/GET/DELETE /orgs/{org}/keys. A new key's secret is in the creation's
// answer only (the list never has it): shown here once, held by no variable past that
// card, gone when it is dismissed or the page is left.

import {attempt, confirmAction, h, mount, notify, when} from "../dom.js";
import {enc, fill, grantable, panel, roleSelect} from "./admin_panel.js";

// The server's scopes (scope.py SCOPES; a test keeps the two lists equal).
export const SCOPES = ["a2a:invoke", "admin", "assistants:read", "assistants:write", "crons:read", "crons:write", "feedback:read", "feedback:write", "mcp:invoke", "runs:create", "runs:read", "store:read", "store:write", "threads:read", "threads:write"];

export async function keysPanel(ctx, org) {
  const list = h("div", {class: "admin-list"});
  const reveal = h("div", {id: "new-key", "aria-live": "polite"});
  const refresh = () => fill(list, () => ctx.api.get(`${org}/keys`), table);
  // A narrowed credential hands out at most its own scopes.
  const offered = ctx.me.scopes === null ? SCOPES : SCOPES.filter((s) => ctx.me.scopes.includes(s));

  const revoke = async (key) => {
    const own = key.key_id === ctx.me.api_key_id ? " It is the key this page is signed in with." : "";
    if (!await confirmAction(`Revoke the key “${key.name || key.key_id}”? Its holders are ` +
      `refused from now on.${own}`, "Revoke")) return;
    await attempt(async () => {
      await ctx.api.delete(`${org}/keys/${enc(key.key_id)}`);
      notify("Key revoked");
      await refresh();
    });
  };

  function table(keys) {
    if (!keys.length) return h("p", {class: "muted"}, "No API keys.");
    return h("table", {},
      h("thead", {}, h("tr", {}, ["Name", "Acts as", "Role", "Scopes", "Assistants", "Created",
        "Status", ""].map((title) => h("th", {}, title)))),
      h("tbody", {}, keys.map((key) => h("tr",
        {dataset: {key: key.key_id}, class: key.revoked_at ? "revoked" : null},
        h("td", {}, key.name || h("span", {class: "muted"}, "(no name)"),
          key.key_id === ctx.me.api_key_id ? h("span", {class: "badge"}, "this session") : null),
        h("td", {class: "mono"}, key.user_id),
        h("td", {}, key.role),
        h("td", {class: "scopes"}, key.scopes === null
          ? h("span", {class: "muted"}, "all its role allows")
          : key.scopes.map((scope) => h("span", {class: "badge scope"}, scope))),
        h("td", {}, key.assistants === null ? h("span", {class: "muted"}, "any")
          : key.assistants.join(", ")),
        h("td", {}, when(key.created_at)),
        h("td", {class: "status"}, key.revoked_at
          ? h("span", {class: "badge error"}, `revoked ${when(key.revoked_at)}`)
          : h("span", {class: "badge success"}, "active")),
        h("td", {}, key.revoked_at ? null : h("button", {type: "button", class: "danger revoke",
          onclick: () => revoke(key)}, "Revoke"))))));
  }

  function shown(made) {
    const secret = h("code", {class: "secret"}, made.key);
    const copy = h("button", {type: "button", class: "copy", onclick: async () => {
      window.getSelection().selectAllChildren(secret);
      try {
        await navigator.clipboard.writeText(secret.textContent);
        copy.textContent = "Copied";
      } catch {
        copy.textContent = "Selected: press Ctrl+C";
      }
    }}, "Copy");
    mount(reveal, h("div", {class: "secret-once", dataset: {key: made.key_id}},
      h("p", {}, h("strong", {}, `Key “${made.name || made.key_id}” created. `),
        "Copy it now: it is shown this once and cannot be read again."),
      h("div", {class: "secret-row"}, secret, copy,
        h("button", {type: "button", class: "dismiss", onclick: () => mount(reveal)}, "Done"))));
  }

  const form = h("form", {id: "key-create"},
    h("div", {class: "toolbar"},
      h("label", {}, "Name", h("input", {name: "name", autocomplete: "off"})),
      h("label", {}, "Role", roleSelect("role", grantable(ctx.me), "member")),
      h("label", {}, "Acts as", h("input", {name: "user_id", autocomplete: "off",
        placeholder: `${ctx.me.user_id}, or svc:<name>`})),
      h("label", {}, "Assistants", h("input", {name: "assistants", autocomplete: "off",
        placeholder: "any (or ids / graph names, comma-separated)"}))),
    h("fieldset", {class: "scope-choice"},
      h("legend", {}, "Scopes (none ticked: all its role allows)"),
      offered.map((scope) => h("label", {class: "check"},
        h("input", {type: "checkbox", name: "scope", value: scope}), scope))),
    h("button", {type: "submit", class: "primary"}, "Create key"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = {name: String(data.get("name")).trim(), role: String(data.get("role"))};
    const userId = String(data.get("user_id")).trim();
    if (userId) body.user_id = userId;
    const scopes = data.getAll("scope").map(String);
    if (scopes.length) body.scopes = scopes;
    const assistants = String(data.get("assistants")).split(",").map((a) => a.trim())
      .filter(Boolean);
    if (assistants.length) body.assistants = assistants;
    attempt(async () => {
      shown(await ctx.api.post(`${org}/keys`, body));
      form.reset();
      await refresh();
    });
  });

  await refresh();
  return panel("admin-keys", "API keys",
    "A key acts as its creator or as a service account, with at most its creator's role, " +
    "scopes and assistants.", reveal, form, list);
}

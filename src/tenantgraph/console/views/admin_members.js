// Members and their roles: GET/PUT/DELETE /orgs/{org}/members. The server applies the
// owner rules (only an owner grants or removes an owner; the last owner stays).

import {attempt, confirmAction, h, notify, when} from "../dom.js";
import {enc, fill, grantable, panel, roleSelect} from "./admin_panel.js";

export async function membersPanel(ctx, org) {
  const roles = grantable(ctx.me);
  const list = h("div", {class: "admin-list"});
  const refresh = () => fill(list, () => ctx.api.get(`${org}/members`), table);

  const setRole = (user, role) => attempt(async () => {
    try {
      await ctx.api.put(`${org}/members/${enc(user)}`, {role});
      notify(`${user} is now ${role}`);
    } finally {
      await refresh();
    }
  });

  const remove = async (user) => {
    if (!await confirmAction(`Remove ${user} from ${ctx.me.org_id}?`, "Remove")) return;
    await attempt(async () => {
      await ctx.api.delete(`${org}/members/${enc(user)}`);
      notify(`${user} removed`);
      await refresh();
    });
  };

  function table(members) {
    if (!members.length) {
      return h("p", {class: "muted"}, "No memberships yet. In claims mode a token's org and " +
        "role come from its claims; memberships matter in membership mode.");
    }
    return h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "User"), h("th", {}, "Role"), h("th", {}, "Since"),
        h("th", {}))),
      h("tbody", {}, members.map((member) => h("tr", {dataset: {member: member.user_id}},
        h("td", {class: "mono"}, member.user_id,
          member.user_id === ctx.me.user_id ? h("span", {class: "badge"}, "you") : null),
        h("td", {}, roleSelect("role", roles, member.role, {
          "aria-label": `role of ${member.user_id}`,
          onchange: (event) => setRole(member.user_id, event.target.value),
        })),
        h("td", {}, when(member.created_at)),
        h("td", {}, h("button", {type: "button", class: "danger remove",
          onclick: () => remove(member.user_id)}, "Remove"))))));
  }

  const form = h("form", {id: "member-add", class: "toolbar"},
    h("label", {}, "User id", h("input", {name: "user_id", required: true, autocomplete: "off"})),
    h("label", {}, "Role", roleSelect("role", roles, "member")),
    h("button", {type: "submit", class: "primary"}, "Add or change"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const user = String(data.get("user_id")).trim();
    setRole(user, String(data.get("role"))).then(() => form.reset());
  });

  await refresh();
  return panel("admin-members", "Members", null, list, form);
}

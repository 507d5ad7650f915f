// What the admin view's panels share: a titled card, and a list area that shows what a
// route answered or, when it refused, the server's reason in place of the list.

import {h, mount} from "../dom.js";

export function panel(id, title, intro, ...children) {
  return h("section", {id, class: "card admin-panel"},
    h("h2", {}, title),
    intro ? h("p", {class: "muted"}, intro) : null,
    children);
}

// Fills `node` with draw(await load()); an error becomes its message there.
export async function fill(node, load, draw) {
  try {
    mount(node, draw(await load()));
  } catch (error) {
    mount(node, h("p", {class: "error", role: "alert"}, error.message || String(error)));
  }
}

// The roles the caller may hand out: nobody grants more than they hold.
export function grantable(me) {
  return me.role === "owner" ? ["owner", "admin", "member"] : ["admin", "member"];
}

export function roleSelect(name, roles, chosen, props = {}) {
  const options = roles.includes(chosen) ? roles : [chosen, ...roles];
  return h("select", {name, ...props},
    options.map((role) => h("option", {value: role, selected: role === chosen}, role)));
}

export function enc(value) {
  return encodeURIComponent(value);
}

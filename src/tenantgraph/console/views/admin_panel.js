// What the admin view's panels share: a titled card, and a list area that shows what a
// route answered or, when it refused, the server's reason in place of the list.

import {h, mount} from "../dom.js";

export function panel(id, title, intro, ...children) {
  return h("section", {id, class: "card admin-panel"},
    h("h2", {}, title),
    intro ? h("p", {class: "muted"}, intro) : null,
    children);
}

// A route's answer, or the error it failed with: loads run side by side, drawn after.
export function settle(promise) {
  return promise.catch((error) => (error instanceof Error ? error : new Error(String(error))));
}

// Fills `node` with draw(answer); an error answer becomes its message there.
export function show(node, answer, draw) {
  mount(node, answer instanceof Error
    ? h("p", {class: "error", role: "alert"}, answer.message)
    : draw(answer));
}

// show() with what load() answers.
export async function fill(node, load, draw) {
  show(node, await settle(load()), draw);
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

// The console's shell: sign-in, the caller's identity (GET /me), the navigation and a
// hash router that loads one view module per page (views/<name>.js).
//
// A view module exports `render(root, ctx, params)`: it fills `root` (an emptied <section>)
// and may return a function that is called when the page is left (close streams, timers).
// ctx = {api, me, session, navigate(hash), isAdmin}. params: the path segments after the
// view's name (#/threads/<id> → [id]), decoded. Once render resolves, the section gets
// data-ready (tests and screenshots wait for it).

import {Api, ApiError} from "./api.js";
import {h, mount, notify} from "./dom.js";
import * as session from "./session.js";

// [hash name, label, admin only]
const VIEWS = [
  ["chat", "Chat", false],
  ["threads", "Threads", false],
  ["memory", "Memory", false],
  ["feedback", "Feedback", false],
  ["experiments", "Experiments", false],
  ["admin", "Admin", true],
];

let ctx = null;
let leave = null;

// askOrg: the server wants an organisation (membership mode), or refused the one given:
// the credential just typed is kept in the form (`kept`), so only the org is asked for.
function signInForm(message, askOrg, kept = {}) {
  const form = h("form", {id: "sign-in", class: "card narrow"},
    h("h1", {}, "Sign in"),
    message ? h("p", {class: "error", role: "alert"}, message) : null,
    h("label", {}, "API key or JWT",
      h("input", {name: "credential", type: "password", required: true, autocomplete: "off",
        value: kept.credential})),
    h("label", {}, askOrg ? "Organisation" : "Organisation (membership mode only)",
      h("input", {name: "org", required: askOrg, autocomplete: "off",
        value: kept.org})),
    h("button", {type: "submit", class: "primary"}, "Sign in"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const org = String(data.get("org") || "").trim();
    session.save({credential: String(data.get("credential")).trim(), org: org || null});
    start();
  });
  return form;
}

function signOut() {
  if (leave) leave();
  leave = null;
  ctx = null;
  session.clear();
  mount(document.getElementById("nav"));
  mount(document.getElementById("who"));
  location.hash = "";
  start();
}

async function start() {
  const view = document.getElementById("view");
  const saved = session.load();
  if (!saved) {
    mount(view, signInForm(null, false));
    return;
  }
  const api = new Api(saved);
  let me;
  try {
    me = await api.get("/me");
  } catch (error) {
    session.clear();
    const membership = error instanceof ApiError &&
      (/X-Org-Id/.test(error.detail) || (Boolean(saved.org) && error.status === 403));
    mount(view, signInForm(error.message, membership, membership ? saved : {}));
    return;
  }
  const isAdmin = me.role === "admin" || me.role === "owner";
  ctx = {api, me, session: saved, isAdmin, navigate: (hash) => { location.hash = hash; }};
  mount(document.getElementById("nav"),
    VIEWS.filter(([, , adminOnly]) => isAdmin || !adminOnly)
      .map(([name, label]) => h("a", {href: `#/${name}`, dataset: {view: name}}, label)));
  mount(document.getElementById("who"),
    h("span", {class: "identity"}, `${me.org_id} · ${me.user_id} · ${me.role}`),
    h("button", {id: "sign-out", type: "button", onclick: signOut}, "Sign out"));
  route();
}

async function route() {
  if (!ctx) return;
  if (leave) leave();
  leave = null;
  const [name, ...params] = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  const chosen = VIEWS.find(([view]) => view === name) ? name : "chat";
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("current", link.dataset.view === chosen);
  }
  const root = h("section", {class: `view view-${chosen}`});
  mount(document.getElementById("view"), root);
  try {
    const module = await import(`./views/${chosen}.js`);
    const cleanup = await module.render(root, ctx, params.map(decodeURIComponent));
    if (typeof cleanup === "function") leave = cleanup;
    root.dataset.ready = "true";
  } catch (error) {
    notify(error.message || String(error), "error");
  }
}

window.addEventListener("hashchange", route);
start();

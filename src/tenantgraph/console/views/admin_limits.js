// Budgets and quotas: GET/PUT /orgs/{org}/limits, and the store's usage (GET /store/usage)
// beside its quotas. An org's admins may only tighten: the API refuses a looser value
// (the operator raises limits), and its reason is shown.

import {attempt, h, mount, notify} from "../dom.js";
import {panel, settle, show} from "./admin_panel.js";

const BUDGETS = {
  org_requests: "requests of the whole org",
  user_requests: "requests of one user",
  api_key_requests: "requests of one API key",
  org_runs: "runs the org starts",
  user_runs: "runs one user starts",
};
const QUOTAS = {
  store_items: "memory items the org stores",
  store_bytes: "bytes of memory the org stores",
  crons_per_user: "crons one user may own",
  feedback_retention_days: "days feedback is kept",
};
const USAGE = {store_items: "items", store_bytes: "bytes"};

function source(entry) {
  return h("span", {class: `badge ${entry.source === "org" ? "pending" : ""}`},
    entry.source === "org" ? "org override" : "default");
}

function number(name, label, value) {
  return h("input", {name, type: "number", min: 1, required: true, "aria-label": label,
    value: value ?? ""});
}

export async function limitsPanel(ctx, org) {
  const budgets = h("div", {class: "admin-list", id: "admin-budgets"});
  const quotas = h("div", {class: "admin-list", id: "admin-quotas"});
  let usage = null;

  const draw = (limits) => {
    mount(budgets, budgetTable(limits));
    mount(quotas, quotaTable(limits));
  };
  const put = (body, done) => attempt(async () => {
    draw(await ctx.api.put(`${org}/limits`, body));
    notify(done);
  });

  // A table of budgets or quotas; row(name, entry) gives a row's value cells, the inputs
  // of its form and the PUT body made from the form's data.
  function limitTable(limits, described, headings, row) {
    return h("table", {},
      h("thead", {}, h("tr", {}, headings.map((title) => h("th", {}, title)))),
      h("tbody", {}, Object.keys(described).filter((name) => limits[name]).map((name) => {
        const {cells, inputs, body} = row(name, limits[name]);
        const form = h("form", {class: "limit-set"}, inputs,
          h("button", {type: "submit", class: "primary"}, "Set"));
        form.addEventListener("submit", (event) => {
          event.preventDefault();
          put(body(new FormData(form)), `${name} set`);
        });
        return h("tr", {dataset: {limit: name}},
          h("td", {}, h("span", {class: "mono"}, name),
            h("div", {class: "muted"}, described[name])),
          cells,
          h("td", {}, source(limits[name])),
          h("td", {}, form));
      })));
  }

  const budgetTable = (limits) => limitTable(limits, BUDGETS,
    ["Budget", "Limit", "Per", "Source", "Set a tighter one"], (name, entry) => ({
      cells: [h("td", {class: "value"}, String(entry.limit)),
        h("td", {class: "window"}, `${entry.window_seconds} s`)],
      inputs: [number("limit", `${name} limit`, entry.limit), h("span", {}, "per"),
        number("window_seconds", `${name} window in seconds`, entry.window_seconds),
        h("span", {}, "s")],
      body: (data) => ({bucket: name, limit: Number(data.get("limit")),
        window_seconds: Number(data.get("window_seconds"))}),
    }));

  const quotaTable = (limits) => limitTable(limits, QUOTAS,
    ["Quota", "Limit", "Used", "Source", "Set a tighter one"], (name, entry) => {
      const used = USAGE[name] && usage ? usage[USAGE[name]] : null;
      return {
        cells: [h("td", {class: "value"}, entry.limit === null ? "unlimited" : String(entry.limit)),
          h("td", {class: "used"}, used === null ? "" : String(used))],
        inputs: [number("limit", `${name} limit`, entry.limit)],
        body: (data) => ({quota: name, limit: Number(data.get("limit"))}),
      };
    });

  // A credential without store:read still sees the limits.
  const [used, limits] = await Promise.all([
    ctx.api.get("/store/usage").catch(() => null), settle(ctx.api.get(`${org}/limits`))]);
  usage = used;
  show(budgets, limits, (answer) => {
    mount(quotas, quotaTable(answer));
    return budgetTable(answer);
  });
  return panel("admin-limits", "Limits and usage",
    "Rate budgets (a bucket holds its whole limit and refills it over the window) and " +
    "quotas. An org's admins may only tighten them; the operator raises them.",
    h("h3", {}, "Budgets"), budgets,
    h("h3", {}, "Quotas and usage"),
    usage ? h("p", {id: "store-usage"}, `The org's memory: ${usage.items} items, ` +
      `${usage.bytes} bytes.`) : null,
    quotas);
}

// One experiment (#/experiments/<id>): its variants, its history of status changes and, for
// admins, the status change (the next statuses the API lists in `transitions`, with a
// reason and an optional winner), the weights, and the results per variant (GET
// /experiments/{id}/results) with their 95% intervals drawn and the p-values. The winner is
// the API's `significant_winner`: marked only when the API found the difference significant.
// A status change is confirmed first (some cannot be undone: the API's lifecycle decides).

import {attempt, confirmAction, h, mount, when} from "../dom.js";
import {intervalChart, label} from "../chart.js";

// An experiment's status as a badge (the list uses it too).
export function statusBadge(status) {
  return h("span", {class: `badge experiment-status ${status}`, dataset: {status}}, status);
}

function statusForm(ctx, experiment, changed) {
  if (!experiment.transitions.length) {
    return h("p", {class: "muted", id: "experiment-final"},
      "This experiment is archived: no further status.");
  }
  const form = h("form", {id: "experiment-status", class: "card"},
    h("h2", {}, "Change status"),
    h("div", {class: "form-grid"},
      h("label", {}, "New status", h("select", {name: "status"},
        experiment.transitions.map((s) => h("option", {value: s}, s)))),
      h("label", {}, "Winner (optional: runs once paused or completed)",
        h("select", {name: "winner"}, h("option", {value: ""}, "—"),
          experiment.variants.map((v) => h("option", {value: v.name,
            selected: v.name === experiment.winner}, v.name))))),
    h("label", {}, "Reason", h("input", {name: "reason", autocomplete: "off",
      placeholder: "why (kept in the history)"})),
    h("div", {class: "actions"}, h("button", {type: "submit", class: "primary"}, "Change")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const reason = String(data.get("reason") || "").trim();
    const winner = String(data.get("winner") || "");
    const status = String(data.get("status"));
    attempt(async () => {
      const question = `Move ${experiment.name} from ${experiment.status} to ${status}?`;
      if (!await confirmAction(question, "Change")) return;
      changed(await ctx.api.post(
        `/experiments/${encodeURIComponent(experiment.experiment_id)}/status`,
        {status, ...(reason ? {reason} : {}), ...(winner ? {winner} : {})}));
    });
  });
  return form;
}

function weightsForm(ctx, experiment, changed) {
  const form = h("form", {id: "experiment-weights", class: "card"},
    h("h2", {}, "Weights and description"),
    h("p", {class: "muted"}, "Users already assigned keep their variant."),
    h("div", {class: "form-grid"}, experiment.variants.map((v) =>
      h("label", {}, v.name, h("input", {type: "number", min: "0", step: "any",
        name: "weight", value: String(v.weight), dataset: {variant: v.name}})))),
    h("label", {}, "Description", h("textarea", {name: "description", rows: 2,
      value: experiment.description || ""})),
    h("div", {class: "actions"}, h("button", {type: "submit"}, "Save")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const weights = Object.fromEntries([...form.querySelectorAll("input[name=weight]")]
      .map((input) => [input.dataset.variant, Number(input.value)]));
    const description = form.querySelector("textarea").value.trim();
    attempt(async () => {
      changed(await ctx.api.patch(`/experiments/${encodeURIComponent(experiment.experiment_id)}`,
        {weights, ...(description ? {description} : {})}));
    });
  });
  return form;
}

function historyTable(history) {
  if (!history.length) return h("p", {class: "muted"}, "No status change yet.");
  return h("table", {id: "experiment-history"},
    h("thead", {}, h("tr", {}, ["When", "From", "To", "By", "Reason"]
      .map((name) => h("th", {}, name)))),
    h("tbody", {}, history.map((step) => h("tr", {class: "transition",
      dataset: {to: step.to_status}},
    h("td", {}, when(step.at)),
    h("td", {}, step.from_status),
    h("td", {}, statusBadge(step.to_status)),
    h("td", {}, step.user_id),
    h("td", {class: "reason"}, step.reason || "")))));
}

function pValue(value) {
  if (value === null || value === undefined) return "–";
  return value < 0.0001 ? "< 0.0001" : value.toFixed(4);
}

// The results: a table per variant and the intervals drawn; the winner only if significant.
function resultsView(results) {
  const winner = results.significant_winner;
  const binary = results.variants.every((v) => v.binary || v.mean === null);
  const rows = results.variants.map((v, i) => {
    const won = v.name === winner;
    return h("tr", {class: won ? "variant-result winner" : "variant-result",
      dataset: {variant: v.name, significant: i === 0 ? "" : String(v.significant)}},
    h("td", {}, v.name, won ? h("span", {class: "badge winner-mark"}, "winner") : null),
    h("td", {dataset: {field: "users"}}, v.users),
    h("td", {dataset: {field: "runs"}}, v.runs),
    h("td", {dataset: {field: "feedback"}}, v.feedback),
    h("td", {dataset: {field: "mean"}}, label(v.mean)),
    h("td", {dataset: {field: "interval"}},
      v.ci_low === null ? "–" : `[${label(v.ci_low)}, ${label(v.ci_high)}]`),
    h("td", {dataset: {field: "difference"}}, i === 0 ? "baseline" : label(v.difference)),
    h("td", {dataset: {field: "p_value"}}, i === 0 ? "" : pValue(v.p_value)),
    h("td", {dataset: {field: "significant"}},
      i === 0 ? "" : v.significant ? "significant" : "not significant"));
  });
  return h("div", {id: "experiment-results", dataset: {winner: winner || ""}},
    h("p", {class: winner ? "verdict ok" : "verdict muted"}, winner
      ? `${winner} wins: its difference to the first variant is significant (p < ${results.alpha}).`
      : `No significant winner (p < ${results.alpha} needed).`),
    h("table", {},
      h("thead", {}, h("tr", {}, ["Variant", "Users", "Runs", "Feedback",
        binary ? "Rate" : "Mean", "95% interval", "Difference", "p-value", ""]
        .map((name) => h("th", {}, name)))),
      h("tbody", {}, rows)),
    h("figure", {},
      intervalChart(results.variants.map((v) => ({
        label: v.name, low: v.ci_low, value: v.mean, high: v.ci_high, marked: v.name === winner,
      })), {title: `${results.metric.key}: mean with its 95% interval per variant`,
        xLabel: `${results.metric.key} (${binary ? "rate" : "mean"}, ${results.metric.goal})`,
        domain: binary ? [0, 1] : null}),
      h("figcaption", {}, "Mean and 95% interval per variant")));
}

export async function renderDetail(root, ctx, id) {
  const path = `/experiments/${encodeURIComponent(id)}`;
  const results = h("div", {id: "results-box"});

  async function loadResults() {
    mount(results, resultsView(await ctx.api.get(`${path}/results`)));
  }

  function draw(experiment) {
    mount(root,
      h("p", {}, h("a", {href: "#/experiments"}, "← Experiments")),
      h("h1", {}, experiment.name, " ", statusBadge(experiment.status)),
      experiment.description ? h("p", {class: "description"}, experiment.description) : null,
      h("div", {class: "card", id: "experiment-summary",
        dataset: {experimentId: experiment.experiment_id, status: experiment.status}},
      h("p", {}, "Metric: ", h("span", {class: "mono"}, experiment.metric.key),
        ` (${experiment.metric.goal})`,
        experiment.winner ? ` · chosen winner: ${experiment.winner}` : null),
      h("p", {class: "muted"}, `Created ${when(experiment.created_at)} by ${experiment.created_by}`,
        experiment.start_time ? ` · started ${when(experiment.start_time)}` : null,
        experiment.end_time ? ` · ended ${when(experiment.end_time)}` : null),
      h("table", {id: "experiment-variants"},
        h("thead", {}, h("tr", {}, ["Variant", "Assistant", "Weight"]
          .map((name) => h("th", {}, name)))),
        h("tbody", {}, experiment.variants.map((v) => h("tr", {dataset: {variant: v.name}},
          h("td", {}, v.name), h("td", {class: "mono"}, v.assistant_id),
          h("td", {dataset: {field: "weight"}}, v.weight)))))),
      h("h2", {}, "Results"),
      ctx.isAdmin
        ? [h("div", {class: "toolbar"}, h("button", {type: "button", id: "results-refresh",
          onclick: () => attempt(loadResults)}, "Refresh results")), results]
        : h("p", {class: "muted", id: "results-admins-only"},
          "Results are shown to the organisation's admins."),
      ctx.isAdmin ? h("div", {class: "admin-forms"},
        statusForm(ctx, experiment, show), weightsForm(ctx, experiment, show)) : null,
      h("h2", {}, "History"),
      historyTable(experiment.history));
  }

  async function show(experiment) {
    draw(experiment);
    if (ctx.isAdmin) await attempt(loadResults);
  }

  await show(await ctx.api.get(path));
  return undefined;
}

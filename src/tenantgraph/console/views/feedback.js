// Feedback: per key over the chosen range, the events and their mean score per day or week
// as charts (GET /feedback/stats, grouped by key, then by day for each key), and the
// recent events with their comments (POST /feedback/search). A member sees the feedback
// they gave, an admin the org's: the API decides.

import {attempt, h, mount, when} from "../dom.js";
import {barChart, label, lineChart} from "../chart.js";

const RANGES = [7, 30, 90];
const MOST_KEYS = 12;
const RECENT = 25;
const DAY = 86400000;

// The UTC days of the range, oldest first, as the API names them ("2026-12-03").
function days(count) {
  const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(),
    new Date().getUTCDate());
  return Array.from({length: count}, (_, i) =>
    new Date(today - (count - 1 - i) * DAY).toISOString().slice(0, 10));
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(name, value);
  }
  return search.toString();
}

function stat(name, value, field) {
  return h("div", {class: "stat"},
    h("span", {class: "stat-name"}, name),
    h("span", {class: "stat-value", dataset: {field}}, value));
}

// The days of `range` in buckets of `size` days, the last bucket ending today: per bucket
// its first day, the events and the mean score (weighted by each day's scored events).
function buckets(range, byDay, size) {
  const found = new Map(byDay.map((g) => [g.group, g]));
  const out = [];
  for (let end = range.length; end > 0; end -= size) {
    const chunk = range.slice(Math.max(0, end - size), end).map((day) => found.get(day));
    const scored = chunk.reduce((n, g) => n + (g?.scored || 0), 0);
    const sum = chunk.reduce((n, g) => n + (g?.scored ? g.mean * g.scored : 0), 0);
    out.unshift({
      label: range[Math.max(0, end - size)].slice(5),
      count: chunk.reduce((n, g) => n + (g?.count || 0), 0),
      mean: scored ? sum / scored : null,
    });
  }
  return out;
}

// One key's card: its totals, then its events and mean score per bucket.
function keyCard(total, byDay, range, size) {
  const points = buckets(range, byDay, size);
  const counts = points.map((p) => ({label: p.label, value: p.count}));
  const means = points.map((p) => ({label: p.label, value: p.mean}));
  const per = size === 1 ? "day" : "week";
  const rate = total.rate === null || total.rate === undefined ? null
    : `${label(total.rate)} [${label(total.rate_low)}, ${label(total.rate_high)}]`;
  return h("section", {class: "card feedback-key", dataset: {key: total.group}},
    h("h2", {}, total.group),
    h("div", {class: "stats"},
      stat("events", total.count, "count"),
      stat("scored", total.scored, "scored"),
      stat("mean score", label(total.mean), "mean"),
      rate ? stat("rate (95% interval)", rate, "rate") : null,
      stat("min – max", `${label(total.min)} – ${label(total.max)}`, "range")),
    h("div", {class: "feedback-charts"},
      h("figure", {class: "counts"},
        barChart(counts, {title: `${total.group}: events per ${per}`, yLabel: "events"}),
        h("figcaption", {}, `Events per ${per} (UTC)`)),
      total.scored
        ? h("figure", {class: "means"},
          lineChart(means, {title: `${total.group}: mean score per ${per}`, yLabel: "mean"}),
          h("figcaption", {}, `Mean score per ${per}`))
        : h("p", {class: "muted"}, "No scores for this key: events only.")));
}

function recentTable(events) {
  if (!events.length) return h("p", {class: "muted"}, "No feedback in this range.");
  return h("table", {id: "feedback-events"},
    h("thead", {}, h("tr", {}, ["When", "User", "Key", "Score", "Comment", "Thread"]
      .map((name) => h("th", {}, name)))),
    h("tbody", {}, events.map((event) => h("tr", {
      class: "feedback-event", dataset: {feedbackId: event.feedback_id, key: event.key},
    },
    h("td", {}, when(event.created_at)),
    h("td", {}, event.user_id),
    h("td", {class: "mono"}, event.key),
    h("td", {class: "score"}, label(event.score)),
    h("td", {class: "comment"}, event.comment || ""),
    h("td", {}, event.thread_id
      ? h("a", {href: `#/threads/${encodeURIComponent(event.thread_id)}`, class: "mono"},
        event.thread_id.slice(0, 8))
      : "")))));
}

export async function render(root, ctx) {
  const state = {days: 30, key: "", bucket: 1};
  const keyPicker = h("select", {name: "key"}, h("option", {value: ""}, "All keys"));
  const rangePicker = h("select", {name: "range"}, RANGES.map((n) =>
    h("option", {value: String(n), selected: n === state.days}, `Last ${n} days`)));
  const bucketPicker = h("select", {name: "bucket"},
    h("option", {value: "1"}, "Per day"), h("option", {value: "7"}, "Per week"));
  const charts = h("div", {id: "feedback-keys"});
  const recent = h("div", {id: "feedback-recent"});

  async function load() {
    const range = days(state.days);
    const since = `${range[0]}T00:00:00Z`;
    const totals = await ctx.api.get(`/feedback/stats?${query({group_by: "key", since})}`);
    const keys = totals.map((g) => g.group);
    mount(keyPicker, h("option", {value: ""}, "All keys"),
      keys.map((key) => h("option", {value: key, selected: key === state.key}, key)));
    if (state.key && !keys.includes(state.key)) state.key = "";
    const shown = totals.filter((g) => !state.key || g.group === state.key)
      .sort((a, b) => b.count - a.count || (a.group < b.group ? -1 : 1));
    const perDay = await Promise.all(shown.slice(0, MOST_KEYS).map((g) =>
      ctx.api.get(`/feedback/stats?${query({key: g.group, group_by: "day", since})}`)));
    mount(charts,
      shown.length ? null : h("p", {class: "muted"}, "No feedback in this range."),
      shown.slice(0, MOST_KEYS).map((g, i) => keyCard(g, perDay[i], range, state.bucket)),
      shown.length > MOST_KEYS
        ? h("p", {class: "muted"}, `${shown.length - MOST_KEYS} more keys: pick one above.`)
        : null);
    const events = await ctx.api.post("/feedback/search",
      {since, limit: RECENT, ...(state.key ? {key: state.key} : {})});
    mount(recent, recentTable(events));
  }

  keyPicker.addEventListener("change", () => {
    state.key = keyPicker.value;
    attempt(load);
  });
  bucketPicker.addEventListener("change", () => {
    state.bucket = Number(bucketPicker.value);
    attempt(load);
  });
  rangePicker.addEventListener("change", () => {
    state.days = Number(rangePicker.value);
    attempt(load);
  });
  mount(root,
    h("h1", {}, "Feedback"),
    h("p", {class: "muted"}, ctx.isAdmin
      ? "The organisation's feedback, per key."
      : "The feedback you gave, per key."),
    h("div", {class: "toolbar"},
      h("label", {}, "Range", rangePicker),
      h("label", {}, "Buckets", bucketPicker),
      h("label", {}, "Key", keyPicker),
      h("button", {type: "button", id: "feedback-refresh", onclick: () => attempt(load)},
        "Refresh")),
    charts,
    h("h2", {}, "Recent feedback"),
    recent);
  await attempt(load);
}

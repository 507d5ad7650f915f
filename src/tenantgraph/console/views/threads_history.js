// A thread's checkpoint history as a timeline, newest first (POST /threads/{id}/history),
// and time travel the LangGraph way: a fork is POST /threads/{id}/state with the chosen
// `checkpoint_id` and new values — a new checkpoint whose parent is the chosen one, the old
// branch kept — optionally followed by a run from it (`checkpoint_id` on the run, input
// null); a replay is such a run from the chosen checkpoint itself.

import {attempt, h, mount, notify, show, when} from "../dom.js";
import {errorText, valuesView} from "./threads_values.js";

const PAGE = 50;

// The history card: the timeline and the selected checkpoint (`selected`, else the current
// one). `refresh(checkpointId)` reloads the thread page after a fork or run.
export async function historyPanel(ctx, thread, state, selected, refresh) {
  const path = `/threads/${thread.thread_id}`;
  const checkpoints = await attempt(() => ctx.api.post(`${path}/history`, {limit: PAGE}));
  if (!checkpoints) return h("h2", {}, "History");
  const heading = h("h2", {});
  const timeline = h("ol", {id: "thread-history", class: "timeline"});
  const detail = h("div", {id: "checkpoint-detail"});
  const more = h("button", {type: "button", id: "history-older", class: "link"},
    "Load older checkpoints");
  let exhausted = checkpoints.length < PAGE;
  let chosen = selected || state.checkpoint_id || checkpoints[0]?.checkpoint_id;

  const draw = () => {
    const lanes = lanesOf(checkpoints);
    mount(heading, `History (${checkpoints.length}${exhausted ? "" : "+"} checkpoints)`);
    mount(timeline, checkpoints.map((checkpoint, i) => item(checkpoint, checkpoints[i + 1],
      checkpoints, lanes, state.checkpoint_id, chosen, pick)));
    more.hidden = exhausted;
    const shown = checkpoints.find((c) => c.checkpoint_id === chosen);
    mount(detail, shown
      ? checkpointView(ctx, thread, shown, checkpoints, pick, refresh)
      : h("p", {class: "muted"}, "Pick a checkpoint."));
  };
  const pick = (checkpointId) => {
    chosen = checkpointId;
    draw();
  };
  more.addEventListener("click", () => attempt(async () => {
    const last = checkpoints[checkpoints.length - 1];
    const older = await ctx.api.post(`${path}/history`,
      {limit: PAGE, before: last.checkpoint_id});
    checkpoints.push(...older);
    exhausted = older.length < PAGE;
    draw();
  }));
  draw();
  return [
    heading,
    checkpoints.length
      ? h("div", {class: "split history"}, h("div", {}, timeline, more), detail)
      : h("p", {class: "muted", id: "history-empty"}, "No checkpoints yet."),
  ];
}

function shortId(id) {
  return id ? id.slice(-12) : "";
}

// Checkpoint id → its lane in the timeline, oldest first: a checkpoint continues its
// parent's lane unless an older child did already; then (a fork) it opens a new lane.
function lanesOf(checkpoints) {
  const lanes = new Map();
  const continued = new Set();
  let opened = 0;
  for (const checkpoint of [...checkpoints].reverse()) {
    const parent = checkpoint.parent_checkpoint_id;
    let lane = 0;
    if (parent && lanes.has(parent) && !continued.has(parent)) lane = lanes.get(parent);
    else if (parent && lanes.has(parent)) lane = ++opened;
    if (parent) continued.add(parent);
    lanes.set(checkpoint.checkpoint_id, lane);
  }
  return lanes;
}

// One timeline entry; `older`: the next entry down. A checkpoint whose parent is not the
// entry below it starts a branch: it says where it branches from.
function item(checkpoint, older, all, lanes, currentId, chosenId, pick) {
  const id = checkpoint.checkpoint_id;
  const parent = checkpoint.parent_checkpoint_id;
  const meta = checkpoint.metadata || {};
  const children = all.filter((c) => c.parent_checkpoint_id === id).length;
  const branches = parent && (!older || older.checkpoint_id !== parent);
  const lane = lanes.get(id);
  const classes = ["checkpoint", `lane-${Math.min(lane, 3)}`, id === chosenId ? "selected" : "",
    id === currentId ? "current" : "", branches ? "branch" : "", lane ? "side" : ""]
    .filter(Boolean).join(" ");
  return h("li", {class: classes, dataset: {checkpointId: id, parentId: parent || "", lane,
    step: meta.step ?? "", source: meta.source || ""}},
  h("button", {type: "button", class: "pick", onclick: () => pick(id)},
    h("span", {class: "step"}, `step ${meta.step ?? "?"}`),
    h("span", {class: `badge source ${meta.source || ""}`}, meta.source || "?"),
    id === currentId ? h("span", {class: "badge current"}, "current") : null,
    children > 1 ? h("span", {class: "badge forks"}, `${children} branches`) : null),
  h("div", {class: "mono id"}, id),
  h("div", {class: "muted"}, when(checkpoint.created_at),
    (checkpoint.next || []).length ? ` · next: ${checkpoint.next.join(", ")}` : ""),
  branches ? h("div", {class: "from"}, "↳ branches from ",
    h("button", {type: "button", class: "link mono", onclick: () => pick(parent)},
      `…${shortId(parent)}`)) : null);
}

function checkpointView(ctx, thread, checkpoint, all, pick, refresh) {
  const id = checkpoint.checkpoint_id;
  const parent = checkpoint.parent_checkpoint_id;
  const meta = checkpoint.metadata || {};
  const tasks = checkpoint.tasks || [];
  return h("div", {class: "checkpoint-detail", dataset: {checkpointId: id}},
    h("h3", {}, "Checkpoint ", h("span", {class: "mono"}, id)),
    h("dl", {class: "facts"},
      h("dt", {}, "Step"), h("dd", {}, String(meta.step ?? "?")),
      h("dt", {}, "Source"), h("dd", {}, meta.source || "?"),
      h("dt", {}, "Time"), h("dd", {}, when(checkpoint.created_at)),
      h("dt", {}, "Parent"), h("dd", {class: "mono"}, parent && all.some(
        (c) => c.checkpoint_id === parent)
        ? h("button", {type: "button", class: "link mono", onclick: () => pick(parent)}, parent)
        : parent || "—"),
      h("dt", {}, "Next"), h("dd", {}, (checkpoint.next || []).join(", ") || "— (done)"),
      meta.run_id ? [h("dt", {}, "Run"), h("dd", {class: "mono"}, meta.run_id)] : null),
    tasks.some((task) => task.error) ? h("p", {class: "error"},
      tasks.filter((task) => task.error).map((task) => `${task.name}: ${errorText(task.error)}`)
        .join("; ")) : null,
    valuesView(checkpoint.values),
    h("details", {}, h("summary", {}, "Metadata"), h("pre", {}, show(meta))),
    forkForm(ctx, thread, checkpoint, refresh));
}

// Fork: the chosen checkpoint's values, edited, saved as a new checkpoint branching from it
// (as `as_node` when given); "Fork and run" continues the graph from that new checkpoint,
// "Replay" runs again from the chosen one unchanged.
function forkForm(ctx, thread, checkpoint, refresh) {
  const path = `/threads/${thread.thread_id}`;
  const assistant = (thread.metadata || {}).assistant_id || (thread.metadata || {}).graph_id;
  const form = h("form", {id: "fork-form", class: "fork"},
    h("h3", {}, "Time travel"),
    h("p", {class: "muted"}, "Forking keeps this history: it adds a checkpoint whose parent " +
      "is this one, with the values below, and the thread continues from it."),
    h("label", {}, "Values",
      h("textarea", {name: "values", rows: 8, spellcheck: "false",
        value: JSON.stringify(checkpoint.values ?? {}, null, 2)})),
    h("label", {}, "As node (optional)",
      h("input", {name: "as_node", autocomplete: "off",
        placeholder: "the node the update is written as"})),
    h("div", {class: "actions"},
      h("button", {type: "submit", name: "fork", class: "primary"}, "Fork"),
      h("button", {type: "button", name: "fork-run", disabled: !assistant},
        "Fork and run"),
      h("button", {type: "button", name: "replay", disabled: !assistant},
        "Replay from here")));
  // One action at a time: the buttons wait for it (the form is redrawn after a success).
  const busy = async (action) => {
    const enabled = [...form.querySelectorAll("button:enabled")];
    for (const button of enabled) button.disabled = true;
    try {
      return await attempt(action);
    } finally {
      for (const button of enabled) button.disabled = false;
    }
  };
  const fork = async () => {
    let values;
    try {
      values = JSON.parse(form.elements.values.value);
    } catch (error) {
      throw new Error(`the values are not JSON: ${error.message}`);
    }
    const asNode = form.elements.as_node.value.trim();
    const saved = await ctx.api.post(`${path}/state`, {
      checkpoint_id: checkpoint.checkpoint_id, values, as_node: asNode || undefined});
    return saved.checkpoint_id;
  };
  const runFrom = (checkpointId) => ctx.api.post(`${path}/runs/wait`,
    {assistant_id: assistant, input: null, checkpoint_id: checkpointId});
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(async () => {
      const forked = await fork();
      notify(`Forked: checkpoint ${forked}`);
      await refresh(forked);
    });
  });
  form.elements["fork-run"].addEventListener("click", () => busy(async () => {
    const forked = await fork();
    await runFrom(forked);
    notify(`Forked at ${forked} and ran from it`);
    await refresh(forked);
  }));
  form.elements.replay.addEventListener("click", () => busy(async () => {
    await runFrom(checkpoint.checkpoint_id);
    notify(`Replayed from ${checkpoint.checkpoint_id}`);
    await refresh(null);
  }));
  return form;
}

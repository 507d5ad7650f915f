// One thread (`#/threads/<id>`): its header, current state (GET /threads/{id}/state), its
// checkpoint history with forking (threads_history.js) and its runs with their errors.

import {ApiError} from "../api.js";
import {attempt, h, mount, show, when} from "../dom.js";
import {historyPanel} from "./threads_history.js";
import {errorText, metadataChips, valuesView} from "./threads_values.js";

// How often a busy thread's page reloads, until its run ends.
const FOLLOW_MS = 1000;

function notFound(root, threadId) {
  mount(root,
    h("p", {}, h("a", {href: "#/threads"}, "← All threads")),
    h("p", {id: "thread-not-found", class: "card error", role: "alert"},
      `Thread ${threadId} was not found: it does not exist or is not yours to see.`));
}

export async function renderThread(root, ctx, threadId) {
  let thread;
  try {
    thread = await ctx.api.get(`/threads/${encodeURIComponent(threadId)}`);
  } catch (error) {
    // 422: not a thread id at all; 404: none the caller may see (another user's, org's).
    if (error instanceof ApiError && (error.status === 404 || error.status === 422)) {
      notFound(root, threadId);
      return;
    }
    throw error;
  }
  const path = `/threads/${thread.thread_id}`;
  const header = h("div", {id: "thread-header"});
  const stateCard = h("section", {id: "thread-state", class: "card"});
  const historyCard = h("section", {id: "thread-history-card", class: "card"});
  const runsCard = h("section", {id: "thread-runs-card", class: "card"});

  let timer = null;
  let left = false;

  // Reload everything (after a fork or a run); `selected`: the checkpoint to show. While a
  // run keeps the thread busy, again every FOLLOW_MS until it ends.
  const refresh = async (selected) => {
    clearTimeout(timer);
    const loaded = await attempt(() => Promise.all([
      ctx.api.get(path), ctx.api.get(`${path}/state`), ctx.api.get(`${path}/runs?limit=20`),
    ]));
    if (!loaded || left) return;
    const [fresh, state, runs] = loaded;
    mount(header, headerView(fresh, refresh));
    mount(stateCard, stateView(state));
    mount(runsCard, await runsView(ctx, path, runs));
    mount(historyCard, await historyPanel(ctx, fresh, state, selected, refresh));
    if (fresh.status === "busy" && !left) timer = setTimeout(() => refresh(null), FOLLOW_MS);
  };

  mount(root, header, stateCard, historyCard, runsCard);
  await refresh(null);
  return () => {
    left = true;
    clearTimeout(timer);
  };
}

function headerView(thread, refresh) {
  const id = thread.thread_id;
  return [
    h("p", {class: "crumbs"}, h("a", {href: "#/threads"}, "← All threads")),
    h("h1", {}, "Thread ", h("span", {class: "mono", id: "thread-id"}, id), " ",
      h("span", {class: `badge ${thread.status}`, id: "thread-status"}, thread.status)),
    h("div", {class: "toolbar"},
      h("a", {id: "open-in-chat", class: "button", href: `#/chat/${id}`}, "Open in chat"),
      h("button", {type: "button", id: "thread-refresh", onclick: () => refresh(null)},
        "Refresh")),
    h("dl", {class: "facts"},
      h("dt", {}, "Created"), h("dd", {}, when(thread.created_at)),
      h("dt", {}, "Updated"), h("dd", {}, when(thread.updated_at)),
      h("dt", {}, "Metadata"), h("dd", {id: "thread-metadata"}, metadataChips(thread.metadata)),
      thread.error ? [h("dt", {}, "Error"),
        h("dd", {class: "error", id: "thread-error"}, errorText(thread.error))] : null),
  ];
}

function stateView(state) {
  const tasks = state.tasks || [];
  return [
    h("h2", {}, "Current state"),
    state.checkpoint_id ? null : h("p", {class: "muted"}, "No checkpoint yet: run it once."),
    h("dl", {class: "facts"},
      h("dt", {}, "Checkpoint"), h("dd", {class: "mono"}, state.checkpoint_id || "—"),
      h("dt", {}, "Next"), h("dd", {id: "thread-next"},
        (state.next || []).length ? state.next.join(", ") : "— (done)")),
    valuesView(state.values),
    tasks.length ? [
      h("h3", {}, "Next tasks"),
      h("table", {id: "thread-tasks"},
        h("thead", {}, h("tr", {}, ["Task", "Interrupts", "Error"].map((t) => h("th", {}, t)))),
        h("tbody", {}, tasks.map((task) => h("tr", {dataset: {taskId: task.id}},
          h("td", {}, task.name, h("div", {class: "mono muted"}, task.id)),
          h("td", {class: "interrupts"}, (task.interrupts || []).map((interrupt) =>
            h("pre", {}, show(interrupt.value)))),
          h("td", {class: "error"}, task.error ? errorText(task.error) : "")))))] : null,
  ];
}

// A failed run's error: what joining the finished run answers (`{"__error__": …}`).
async function runError(ctx, path, run) {
  if (run.status !== "error" && run.status !== "timeout") return null;
  const output = await attempt(() => ctx.api.get(`${path}/runs/${run.run_id}/join`));
  return output && output.__error__ ? errorText(output.__error__) : null;
}

async function runsView(ctx, path, runs) {
  const errors = await Promise.all(runs.map((run) => runError(ctx, path, run)));
  return [
    h("h2", {}, "Runs"),
    runs.length ? h("table", {id: "thread-runs"},
      h("thead", {}, h("tr", {},
        ["Run", "Status", "Graph", "Created", "From checkpoint", "Error"].map((t) =>
          h("th", {}, t)))),
      h("tbody", {}, runs.map((run, i) => h("tr", {dataset: {runId: run.run_id,
        status: run.status}},
      h("td", {class: "mono"}, run.run_id),
      h("td", {}, h("span", {class: `badge ${run.status}`}, run.status)),
      h("td", {}, (run.metadata || {}).graph_id || run.assistant_id),
      h("td", {}, when(run.created_at)),
      h("td", {class: "mono"},
        run.kwargs?.config?.configurable?.checkpoint_id || ""),
      h("td", {class: "run-error error"}, errors[i] || "")))))
      : h("p", {class: "muted", id: "thread-no-runs"}, "No runs."),
  ];
}

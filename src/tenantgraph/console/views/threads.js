// The threads view. `#/threads`: the caller's threads (POST /threads/search) filtered by
// status, metadata or id, a page at a time. `#/threads/<id>`: one thread (threads_detail.js).

import {attempt, h, mount, notify, when} from "../dom.js";
import {renderThread} from "./threads_detail.js";
import {metadataChips} from "./threads_values.js";

const STATUSES = ["idle", "busy", "interrupted", "error"];
const PAGE_SIZES = [10, 25, 50, 100];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// The filters outlive the page, so coming back from a thread shows the same search.
const filters = {status: "", metadata: "", threadId: "", limit: 10, offset: 0, sort: "updated_at"};

export async function render(root, ctx, params) {
  if (params.length) return renderThread(root, ctx, params[0]);
  return renderList(root, ctx);
}

// "key=value" lines → the search's metadata filter: `=` takes the value as text, `:=` as
// JSON (`count:=3`, `done:=true`). Throws on a line that is neither.
function parseMetadata(text) {
  const metadata = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const match = /^([^=:]+?)\s*(:?=)\s*(.*)$/.exec(line);
    if (!match) throw new Error(`metadata filter "${line}": write key=value or key:=json`);
    const [, key, operator, value] = match;
    if (operator === "=") {
      metadata[key] = value;
    } else {
      try {
        metadata[key] = JSON.parse(value);
      } catch {
        throw new Error(`metadata filter "${line}": ${value} is not JSON`);
      }
    }
  }
  return Object.keys(metadata).length ? metadata : null;
}

function searchForm(onSearch) {
  const form = h("form", {id: "threads-search", class: "toolbar card"},
    h("label", {}, "Status",
      h("select", {name: "status"},
        h("option", {value: ""}, "any"),
        STATUSES.map((status) => h("option", {value: status}, status)))),
    h("label", {class: "metadata-filter"}, "Metadata (key=value, key:=json; one a line)",
      h("textarea", {name: "metadata", rows: 2, placeholder: "team=support\npriority:=2",
        value: filters.metadata})),
    h("label", {}, "Thread id",
      h("input", {name: "thread_id", autocomplete: "off", size: 36, value: filters.threadId})),
    h("label", {}, "Sort",
      h("select", {name: "sort"},
        h("option", {value: "updated_at"}, "last updated"),
        h("option", {value: "created_at"}, "created"))),
    h("label", {}, "Per page",
      h("select", {name: "limit"}, PAGE_SIZES.map((n) => h("option", {value: n}, String(n))))),
    h("button", {type: "submit", class: "primary"}, "Search"));
  form.elements.status.value = filters.status;
  form.elements.sort.value = filters.sort;
  form.elements.limit.value = String(filters.limit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    filters.status = form.elements.status.value;
    filters.metadata = form.elements.metadata.value;
    filters.threadId = form.elements.thread_id.value.trim();
    filters.sort = form.elements.sort.value;
    filters.limit = Number(form.elements.limit.value);
    filters.offset = 0;
    onSearch();
  });
  return form;
}

// The search and count bodies of the current filters; throws on a filter that cannot be sent.
function query() {
  const where = {};
  if (filters.status) where.status = filters.status;
  const metadata = parseMetadata(filters.metadata);
  if (metadata) where.metadata = metadata;
  const search = {...where, limit: filters.limit, offset: filters.offset,
    sort_by: filters.sort, sort_order: "desc"};
  if (filters.threadId) {
    if (!UUID.test(filters.threadId)) throw new Error(`not a thread id: ${filters.threadId}`);
    search.ids = [filters.threadId];
  }
  return {where, search};
}

function threadRow(thread) {
  const id = thread.thread_id;
  return h("tr", {dataset: {threadId: id, status: thread.status}},
    h("td", {class: "mono"}, h("a", {href: `#/threads/${id}`}, id)),
    h("td", {}, h("span", {class: `badge ${thread.status}`}, thread.status)),
    h("td", {}, when(thread.created_at)),
    h("td", {}, when(thread.updated_at)),
    h("td", {}, metadataChips(thread.metadata)));
}

async function renderList(root, ctx) {
  const results = h("div", {id: "threads-results"});
  let searches = 0;
  const search = async () => {
    let body;
    try {
      body = query();
    } catch (error) {
      notify(error.message, "error");
      return;
    }
    const found = await attempt(async () => {
      const [threads, total] = await Promise.all([
        ctx.api.post("/threads/search", body.search),
        body.search.ids ? null : ctx.api.post("/threads/count", body.where),
      ]);
      return {threads, total: total ?? threads.length};
    });
    if (!found) return;
    mount(results, listing(found.threads, found.total, search));
    searches += 1;
    results.dataset.searches = String(searches);  // tests wait for their search's answer
  };
  mount(root,
    h("h1", {}, "Threads"),
    searchForm(search),
    results);
  await search();
}

function listing(threads, total, search) {
  const first = threads.length ? filters.offset + 1 : 0;
  const last = filters.offset + threads.length;
  const go = (offset) => {
    filters.offset = Math.max(0, offset);
    search();
  };
  return [
    threads.length
      ? h("table", {id: "threads-list"},
        h("thead", {}, h("tr", {},
          ["Thread", "Status", "Created", "Updated", "Metadata"].map((t) => h("th", {}, t)))),
        h("tbody", {}, threads.map(threadRow)))
      : h("p", {class: "muted", id: "threads-empty"}, "No thread matches."),
    h("div", {class: "toolbar pager"},
      h("button", {type: "button", id: "threads-prev", disabled: filters.offset === 0,
        onclick: () => go(filters.offset - filters.limit)}, "← Previous"),
      h("span", {id: "threads-range", class: "muted"}, `${first}-${last} of ${total}`),
      h("button", {type: "button", id: "threads-next", disabled: last >= total,
        onclick: () => go(filters.offset + filters.limit)}, "Next →")),
  ];
}

// The memory browser: the caller's namespaces as a tree with the org's shared space beside
// them, semantic search with scores, deleting an item, exporting the caller's memory, the
// org's usage; for admins, a user's export and erasure. The API scopes every call to the
// caller (their own items and the org's shared space); memory values are untrusted and reach
// the page as text only.

import {attempt, h, mount} from "../dom.js";
import {adminPanel, exportUser} from "./memory_export.js";
import {forget, itemCard} from "./memory_items.js";
import {namespaceTree} from "./memory_tree.js";

export async function render(root, ctx) {
  const usage = h("span", {class: "muted memory-usage", id: "memory-usage"});
  const treeBox = h("div", {class: "card memory-tree-card"});
  const results = h("div", {id: "memory-results"});
  const onDeleted = (item) => {
    forget(root, item);
    showUsage(ctx, usage);
  };
  const reloadTree = async () => mount(treeBox, h("h2", {}, "Namespaces"),
    await namespaceTree(ctx, {onDeleted}));

  mount(root,
    h("div", {class: "toolbar memory-head"},
      h("h1", {}, "Memory"),
      usage,
      h("button", {type: "button", id: "memory-export",
        onclick: () => attempt(() => exportUser(ctx, ctx.me.user_id))}, "Export my memory"),
      h("button", {type: "button", id: "memory-refresh",
        onclick: () => attempt(async () => {
          mount(results);
          await Promise.all([reloadTree(), showUsage(ctx, usage)]);
        })}, "Refresh")),
    h("div", {class: "split memory-split"},
      treeBox,
      h("div", {},
        searchForm(ctx, results, onDeleted),
        results,
        ctx.isAdmin ? adminPanel(ctx, (userId) => erased(ctx, userId, reloadTree, usage)) : null)));
  await Promise.all([reloadTree(), showUsage(ctx, usage)]);
}

// After an admin's erasure: what the caller sees changes when it was their own or shared.
async function erased(ctx, userId, reloadTree, usage) {
  await showUsage(ctx, usage);
  if (userId === ctx.me.user_id || userId === "shared") await reloadTree();
}

// The org's stored items and bytes, as the quota counts them; quiet if the call fails.
async function showUsage(ctx, usage) {
  try {
    const counted = await ctx.api.get("/store/usage");
    mount(usage, `org stores ${counted.items} items · ${size(counted.bytes)}`);
  } catch {
    mount(usage);
  }
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} kB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

// A query, an optional namespace prefix (labels joined with '.') and a limit → the items
// ranked by similarity, each with its score.
function searchForm(ctx, results, onDeleted) {
  const query = h("input", {name: "query", id: "memory-query", required: true,
    placeholder: "what to look for", autocomplete: "off"});
  const prefix = h("input", {name: "prefix", id: "memory-prefix", placeholder: "e.g. notes.work",
    autocomplete: "off"});
  const limit = h("input", {name: "limit", type: "number", min: "1", max: "100", value: "10"});
  const form = h("form", {class: "card", id: "memory-search"},
    h("h2", {}, "Semantic search"),
    h("div", {class: "toolbar"},
      h("label", {class: "memory-query"}, "Query", query),
      h("label", {}, "Namespace prefix", prefix),
      h("label", {class: "memory-limit"}, "Limit", limit),
      h("button", {type: "submit", class: "primary"}, "Search")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(async () => {
      const labels = prefix.value.trim() ? prefix.value.trim().split(".") : [];
      const {items} = await ctx.api.post("/store/items/search", {
        query: query.value, namespace_prefix: labels, limit: Number(limit.value) || 10,
      });
      mount(results,
        h("h2", {}, `Results for “${query.value}”`),
        items.length
          ? h("ol", {class: "memory-results"}, items.map((item) =>
            h("li", {}, itemCard(ctx, item, {found: true, onDeleted}))))
          : h("p", {class: "muted memory-none"}, "No item matches."));
      results.dataset.query = query.value;
    });
  });
  return form;
}

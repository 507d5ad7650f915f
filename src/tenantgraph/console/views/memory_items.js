// One memory item as the browser shows it (in the tree and in search results): its key,
// namespace, score (search only) and value as indented JSON, all as text; and its delete.

import {attempt, confirmAction, h, notify, when} from "../dom.js";

// The namespace as the API's GET /store/items writes it (labels cannot hold a '.').
export function dotted(namespace) {
  return namespace.join(".");
}

// Whether the caller may delete `item`: store:write, and the org's shared space only as admin.
export function deletable(ctx, item) {
  const scopes = ctx.me.scopes;
  const writes = scopes === null || scopes.includes("store:write");
  return writes && (item.namespace[0] !== "shared" || ctx.isAdmin);
}

// An <article> for `item`; a search result (`found`) shows its score and its namespace, which
// the tree already shows. After a delete, `onDeleted(item)`.
export function itemCard(ctx, item, {found = false, onDeleted} = {}) {
  const namespace = dotted(item.namespace);
  const score = typeof item.score === "number" ? item.score.toFixed(3) : "—";
  const remove = async () => {
    const sure = await confirmAction(
      `Delete the memory item “${item.key}” in ${item.namespace.join(" / ")}?`);
    if (!sure) return;
    await attempt(async () => {
      await ctx.api.delete("/store/items", {namespace: item.namespace, key: item.key});
      notify(`Deleted “${item.key}”.`);
      if (onDeleted) onDeleted(item);
    });
  };
  return h("article", {class: "memory-item", dataset: {namespace, key: item.key}},
    h("header", {},
      found ? h("span", {class: "badge memory-score", title: "similarity to the query",
        dataset: {score: item.score ?? ""}}, `score ${score}`) : null,
      h("code", {class: "memory-key"}, item.key),
      found ? h("span", {class: "muted memory-namespace"}, item.namespace.join(" / ")) : null,
      h("span", {class: "muted memory-updated"}, when(item.updated_at)),
      deletable(ctx, item)
        ? h("button", {type: "button", class: "link memory-delete", onclick: remove}, "Delete")
        : null),
    h("pre", {class: "memory-value"}, JSON.stringify(item.value, null, 2)));
}

// Remove every card of `item` under `root` (it may show in the tree and in the results).
export function forget(root, item) {
  const namespace = dotted(item.namespace);
  for (const card of root.querySelectorAll("article.memory-item")) {
    if (card.dataset.namespace === namespace && card.dataset.key === item.key) {
      (card.closest("li") || card).remove();
    }
  }
}

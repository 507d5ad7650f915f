// The namespace tree: the caller's own namespaces under one root, the org's `shared` space
// under another. A node loads when opened: its child labels (POST /store/namespaces with the
// node as prefix, one level deeper) and the items stored at exactly that namespace
// (POST /store/items/search with it as namespace_prefix, keeping those not deeper).

import {attempt, h, mount} from "../dom.js";
import {dotted, itemCard} from "./memory_items.js";

const PAGE = 100;

// The tree's <ul>, both roots opened. `options.onDeleted(item)` runs after an item's delete.
export async function namespaceTree(ctx, options) {
  const mine = treeNode(ctx, [], `My memory (${ctx.me.user_id})`, options, "mine");
  const shared = treeNode(ctx, ["shared"], "Org shared space", options, "shared");
  await Promise.all([mine.open(), shared.open()]);
  return h("ul", {class: "memory-tree", id: "memory-tree"}, mine.node, shared.node);
}

function treeNode(ctx, path, label, options, root) {
  const children = h("ul", {class: "memory-children"});
  let opened = false;
  const toggle = h("button", {type: "button", class: "memory-toggle", "aria-expanded": "false",
    onclick: () => (opened ? close() : open())}, label);
  const node = h("li", {class: "memory-node", dataset: {namespace: dotted(path), root}},
    toggle, children);

  async function open() {
    opened = true;
    toggle.setAttribute("aria-expanded", "true");
    node.classList.add("open");
    await attempt(async () => {
      mount(children, ...await expand(ctx, path, options));
      node.dataset.loaded = "true";
    });
  }

  function close() {
    opened = false;
    toggle.setAttribute("aria-expanded", "false");
    node.classList.remove("open");
    delete node.dataset.loaded;
    mount(children);
  }

  return {node, open};
}

async function expand(ctx, path, options) {
  const depth = path.length + 1;
  const {namespaces} = await ctx.api.post("/store/namespaces",
    {prefix: path.length ? path : null, max_depth: depth, limit: 1000});
  const deeper = namespaces.filter((ns) => ns.length === depth).map((ns) => ns[path.length]);
  // The org's space has a root of its own; the caller's namespaces never start with "shared".
  const labels = [...new Set(deeper)].filter((label) => path.length || label !== "shared");
  const nodes = labels.map((label) => treeNode(ctx, [...path, label], label, options).node);
  const here = path.length > 0 && namespaces.some((ns) => ns.length === path.length);
  const leaves = here ? await itemsAt(ctx, path, options, 0) : [];
  if (!nodes.length && !leaves.length) return [h("li", {class: "muted memory-empty"}, "empty")];
  return [...nodes, ...leaves];
}

// The items stored at exactly `path`, a page of the prefix search at a time: a "more" entry
// loads the next page in its place.
async function itemsAt(ctx, path, options, offset) {
  const {items} = await ctx.api.post("/store/items/search",
    {namespace_prefix: path, limit: PAGE, offset});
  const exact = items.filter((item) => dotted(item.namespace) === dotted(path));
  const leaves = exact.map((item) => h("li", {class: "memory-leaf"}, itemCard(ctx, item, options)));
  if (items.length === PAGE) {
    const more = h("li", {class: "memory-more"},
      h("button", {type: "button", class: "link", onclick: () => attempt(async () => {
        more.replaceWith(...await itemsAt(ctx, path, options, offset + PAGE));
      })}, "More items…"));
    leaves.push(more);
  }
  return leaves;
}

// Building the page: every value reaches the DOM as a text node or an attribute, never as
// markup. No module of the console touches innerHTML/outerHTML/insertAdjacentHTML; a test
// greps for them. Agent output and memory values are untrusted: this is the one way in.

const SAFE_URL = /^(#|\/|https?:)/i;

// h("button", {class: "primary", onclick: fn, disabled: true}, "Save", child, [more]).
// Children: strings and numbers become text nodes, nodes are appended, null/false skipped,
// arrays flattened. Props: "on<event>" takes a function, "class", "dataset" (an object),
// "style" is refused (CSP forbids inline style), href/src must be a relative or http(s) URL.
export function h(tag, props = {}, ...children) {
  const node = tag.includes(":")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.split(":")[1])
    : document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) {
      if (typeof value !== "function") throw new TypeError(`${name} must be a function`);
      node.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (name === "style") {
      throw new TypeError("inline style is refused by the page's CSP: use a class");
    } else if ((name === "href" || name === "src") && !SAFE_URL.test(String(value))) {
      throw new TypeError(`unsafe ${name}: ${value}`);
    } else if (name === "value" && "value" in node) {
      node.value = value;
    } else if (name === "checked" && "checked" in node) {
      node.checked = Boolean(value);
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

// Replace a node's children.
export function mount(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

// A value as readable text: strings as they are, everything else as indented JSON.
export function show(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

// A timestamp in the reader's locale; "" for none.
export function when(timestamp) {
  return timestamp ? new Date(timestamp).toLocaleString() : "";
}

// A short notice at the top of the page: kind "error" or "info"; goes away on its own.
export function notify(message, kind = "info") {
  const box = document.getElementById("notices");
  const note = h("div", {class: `notice ${kind}`, role: kind === "error" ? "alert" : "status"},
    message);
  box.appendChild(note);
  setTimeout(() => note.remove(), kind === "error" ? 10000 : 4000);
}

// Run an async action from a handler; its ApiError or Error becomes an error notice.
export async function attempt(action) {
  try {
    return await action();
  } catch (error) {
    notify(error.message || String(error), "error");
    return undefined;
  }
}

// Ask before an irreversible action (a modal <dialog>, not window.confirm, so tests and
// users see the same thing). Resolves true only for the confirm button.
export function confirmAction(question, confirmLabel = "Delete") {
  return new Promise((resolve) => {
    const dialog = h("dialog", {class: "confirm"},
      h("p", {}, question),
      h("div", {class: "actions"},
        h("button", {type: "button", onclick: () => dialog.close("no")}, "Cancel"),
        h("button", {type: "button", class: "danger", onclick: () => dialog.close("yes")},
          confirmLabel)));
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "yes");
    });
    document.body.appendChild(dialog);
    dialog.showModal();
  });
}

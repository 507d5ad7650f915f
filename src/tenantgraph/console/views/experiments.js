// Experiments: the org's list (GET /experiments) and, for admins, the form that creates one
// (POST /experiments: name, description, variants with their assistant and weight, the
// metric's key and goal). #/experiments/<id> shows one (views/experiments_detail.js).
// Members see no form: the API refuses them anyway.

import {attempt, h, mount, when} from "../dom.js";
import {renderDetail, statusBadge} from "./experiments_detail.js";

const NAME = "^[A-Za-z0-9_.\\-]{1,64}$";
const KEY = "^[A-Za-z0-9_.:\\-]{1,64}$";

function variantsText(variants) {
  return variants.map((v) => `${v.name} (${v.weight})`).join(", ");
}

function listTable(experiments) {
  if (!experiments.length) return h("p", {class: "muted"}, "No experiments yet.");
  return h("table", {id: "experiment-list"},
    h("thead", {}, h("tr", {}, ["Name", "Status", "Variants (weight)", "Metric", "Created"]
      .map((name) => h("th", {}, name)))),
    h("tbody", {}, experiments.map((e) => h("tr", {
      class: "experiment-row", dataset: {experimentId: e.experiment_id, name: e.name},
    },
    h("td", {}, h("a", {href: `#/experiments/${encodeURIComponent(e.experiment_id)}`}, e.name)),
    h("td", {}, statusBadge(e.status)),
    h("td", {}, variantsText(e.variants)),
    h("td", {class: "mono"}, `${e.metric.key} (${e.metric.goal})`),
    h("td", {}, when(e.created_at))))));
}

function variantRow(assistants, index) {
  const row = h("div", {class: "variant-row"},
    h("label", {}, "Variant",
      h("input", {name: "variant-name", required: true, pattern: NAME,
        value: index === 0 ? "control" : index === 1 ? "treatment" : `variant-${index}`})),
    h("label", {}, "Assistant",
      h("select", {name: "variant-assistant", required: true},
        assistants.map((a) => h("option", {value: a.assistant_id},
          `${a.name || a.assistant_id} · ${a.graph_id}`)))),
    h("label", {}, "Weight",
      h("input", {name: "variant-weight", type: "number", min: "0", step: "any", value: "1",
        required: true})),
    h("button", {type: "button", class: "link remove-variant",
      onclick: () => row.remove()}, "Remove"));
  return row;
}

// The admins' form; resolves to the created experiment through `created`.
function createForm(ctx, assistants, created) {
  const variants = h("div", {class: "variants"}, variantRow(assistants, 0),
    variantRow(assistants, 1));
  const form = h("form", {id: "experiment-create", class: "card"},
    h("h2", {}, "New experiment"),
    h("div", {class: "form-grid"},
      h("label", {}, "Name", h("input", {name: "name", required: true, pattern: NAME,
        autocomplete: "off", placeholder: "onboarding-prompt"})),
      h("label", {}, "Metric key", h("input", {name: "metric-key", required: true,
        pattern: KEY, autocomplete: "off", placeholder: "thumbs"})),
      h("label", {}, "Goal", h("select", {name: "metric-goal"},
        h("option", {value: "maximize"}, "maximize"),
        h("option", {value: "minimize"}, "minimize")))),
    h("label", {}, "Description", h("textarea", {name: "description", rows: 2})),
    h("h3", {}, "Variants (the first is the one the others are compared to)"),
    variants,
    h("div", {class: "actions"},
      h("button", {type: "button", id: "add-variant", onclick: () =>
        variants.appendChild(variantRow(assistants, variants.children.length))},
      "Add variant"),
      h("button", {type: "submit", class: "primary"}, "Create")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const names = data.getAll("variant-name");
    const ids = data.getAll("variant-assistant");
    const weights = data.getAll("variant-weight");
    const description = String(data.get("description") || "").trim();
    attempt(async () => {
      const experiment = await ctx.api.post("/experiments", {
        name: String(data.get("name")).trim(),
        ...(description ? {description} : {}),
        variants: names.map((name, i) => ({
          name: String(name).trim(), assistant_id: ids[i], weight: Number(weights[i]),
        })),
        metric: {key: String(data.get("metric-key")).trim(), goal: data.get("metric-goal")},
      });
      created(experiment);
    });
  });
  return form;
}

export async function render(root, ctx, params) {
  if (params.length) return renderDetail(root, ctx, params[0]);
  const filter = h("select", {name: "status"}, h("option", {value: ""}, "Any status"),
    ["draft", "running", "paused", "completed", "archived"].map((s) =>
      h("option", {value: s}, s)));
  const list = h("div", {id: "experiments"});
  async function load() {
    const query = filter.value ? `?status=${encodeURIComponent(filter.value)}` : "";
    mount(list, listTable(await ctx.api.get(`/experiments${query}`)));
  }
  filter.addEventListener("change", () => attempt(load));
  let form = null;
  if (ctx.isAdmin) {
    const assistants = await attempt(() => ctx.api.post("/assistants/search", {limit: 200}));
    form = assistants && assistants.length
      ? createForm(ctx, assistants, (experiment) =>
        ctx.navigate(`#/experiments/${encodeURIComponent(experiment.experiment_id)}`))
      : h("p", {class: "muted"}, "Create an assistant first: variants run assistants.");
  }
  mount(root,
    h("h1", {}, "Experiments"),
    h("div", {class: "toolbar"}, h("label", {}, "Status", filter)),
    list,
    form);
  await attempt(load);
  return undefined;
}

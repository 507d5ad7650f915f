// Channel connections: GET/POST/PATCH/DELETE /orgs/{org}/channels. Secrets are written,
// never read: their inputs are password fields emptied after each send, and the API's
// answers name only which secrets are set (`secrets_set`).

import {attempt, confirmAction, h, mount, notify, when} from "../dom.js";
import {enc, fill, panel, settle, show} from "./admin_panel.js";

// Per type: the provider's id field and the secret fields (services/channels.py SHAPES;
// a test keeps the two equal).
export const SHAPES = {"slack": {"id": "team_id", "secrets": ["signing_secret", "bot_token"]}, "web": {"id": null, "secrets": []}, "whatsapp": {"id": "phone_number_id", "secrets": ["app_secret", "verify_token", "access_token"]}};

function secretInput(name, required) {
  return h("label", {class: "secret-field"}, name,
    h("input", {type: "password", name, required, autocomplete: "new-password",
      placeholder: required ? "" : "unchanged if empty"}));
}

// The type's fields: its provider id (plain) and its secrets (write-only).
function configFields(type, current = null) {
  const shape = SHAPES[type];
  return [
    shape.id ? h("label", {}, shape.id, h("input", {name: shape.id, required: current === null,
      autocomplete: "off", value: current ? current[shape.id] ?? "" : ""})) : null,
    shape.secrets.map((name) => secretInput(name, current === null)),
  ];
}

// The form's config: every non-empty field of the type.
function configOf(type, data) {
  const shape = SHAPES[type];
  const config = {};
  for (const name of [shape.id, ...shape.secrets].filter(Boolean)) {
    const value = String(data.get(name) ?? "").trim();
    if (value) config[name] = value;
  }
  return config;
}

// A secret leaves the page with the request that sends it, and nowhere else.
function clearSecrets(form) {
  for (const input of form.querySelectorAll("input[type=password]")) input.value = "";
}

export async function channelsPanel(ctx, org) {
  const list = h("div", {class: "admin-list"});
  const editor = h("div", {id: "channel-edit"});
  const refresh = () => fill(list, () => ctx.api.get(`${org}/channels`), table);
  // Without assistants:read the assistant's id is typed in.
  const [assistants, listed] = await Promise.all([
    ctx.api.post("/assistants/search", {limit: 100}).catch(() => []),
    settle(ctx.api.get(`${org}/channels`))]);
  const assistantName = (id) => assistants.find((a) => a.assistant_id === id)?.name ?? id;

  function assistantField(chosen) {
    if (!assistants.length) {
      return h("input", {name: "assistant_id", required: true, value: chosen || "agent"});
    }
    return h("select", {name: "assistant_id"}, assistants.map((a) => h("option",
      {value: a.assistant_id, selected: a.assistant_id === chosen || a.graph_id === chosen},
      `${a.name} (${a.graph_id})`)));
  }

  const remove = async (channel) => {
    if (!await confirmAction(`Delete the ${channel.type} channel “${channel.name}”?`)) return;
    await attempt(async () => {
      await ctx.api.delete(`${org}/channels/${enc(channel.channel_id)}`);
      notify("Channel deleted");
      mount(editor);
      await refresh();
    });
  };

  function edit(channel) {
    const form = h("form", {class: "card channel-edit", dataset: {channel: channel.channel_id}},
      h("h3", {}, `Edit ${channel.type} channel “${channel.name}”`),
      h("label", {}, "Name", h("input", {name: "name", required: true, value: channel.name})),
      h("label", {}, "Assistant", assistantField(channel.assistant_id)),
      configFields(channel.type, channel.config),
      h("div", {class: "actions"},
        h("button", {type: "button", onclick: () => mount(editor)}, "Cancel"),
        h("button", {type: "submit", class: "primary"}, "Save")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const body = {name: String(data.get("name")).trim(),
        assistant_id: String(data.get("assistant_id"))};
      const config = configOf(channel.type, data);
      if (Object.keys(config).length) body.config = config;
      clearSecrets(form);
      attempt(async () => {
        await ctx.api.patch(`${org}/channels/${enc(channel.channel_id)}`, body);
        notify("Channel saved");
        mount(editor);
        await refresh();
      });
    });
    mount(editor, form);
  }

  function table(channels) {
    if (!channels.length) return h("p", {class: "muted"}, "No channel connections.");
    return h("table", {},
      h("thead", {}, h("tr", {}, ["Name", "Type", "Assistant", "Config", "Secrets", "Updated", ""]
        .map((title) => h("th", {}, title)))),
      h("tbody", {}, channels.map((channel) => h("tr", {dataset: {channel: channel.channel_id}},
        h("td", {}, channel.name),
        h("td", {}, h("span", {class: "badge"}, channel.type)),
        h("td", {title: channel.assistant_id}, assistantName(channel.assistant_id)),
        h("td", {class: "mono"}, Object.entries(channel.config)
          .map(([name, value]) => h("div", {}, `${name}: ${value}`))),
        h("td", {class: "secrets"}, channel.secrets_set.length
          ? channel.secrets_set.map((name) => h("span", {class: "badge success"}, `${name} set`))
          : h("span", {class: "muted"}, "none")),
        h("td", {}, when(channel.updated_at)),
        h("td", {class: "row-actions"},
          h("button", {type: "button", class: "edit", onclick: () => edit(channel)}, "Edit"),
          h("button", {type: "button", class: "danger remove", onclick: () => remove(channel)},
            "Delete"))))));
  }

  const fields = h("div", {class: "toolbar channel-fields"});
  const typeSelect = h("select", {name: "type", onchange: () => mount(fields,
    configFields(typeSelect.value))}, Object.keys(SHAPES).map((type) => h("option",
    {value: type}, type)));
  const form = h("form", {id: "channel-create"},
    h("div", {class: "toolbar"},
      h("label", {}, "Type", typeSelect),
      h("label", {}, "Name", h("input", {name: "name", required: true, autocomplete: "off"})),
      h("label", {}, "Assistant", assistantField("agent"))),
    fields,
    h("button", {type: "submit", class: "primary"}, "Connect"));
  mount(fields, configFields(typeSelect.value));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const type = String(data.get("type"));
    const body = {type, name: String(data.get("name")).trim(),
      assistant_id: String(data.get("assistant_id")), config: configOf(type, data)};
    clearSecrets(form);
    attempt(async () => {
      await ctx.api.post(`${org}/channels`, body);
      notify(`${type} channel “${body.name}” connected`);
      form.reset();
      mount(fields, configFields(typeSelect.value));
      await refresh();
    });
  });

  show(list, listed, table);
  return panel("admin-channels", "Channels",
    "Slack and WhatsApp connections and web chats. Secrets are write-only: they are " +
    "stored encrypted and never shown again.", list, editor, form);
}

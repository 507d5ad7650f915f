// The org's administration, for its owners and admins: members and roles, API keys,
// channel connections, budgets and quotas with the store's usage. Every call is the API's
// own admin route with the signed-in credential; a member is told so and no call is made.

import {h, mount} from "../dom.js";
import {channelsPanel} from "./admin_channels.js";
import {keysPanel} from "./admin_keys.js";
import {limitsPanel} from "./admin_limits.js";
import {membersPanel} from "./admin_members.js";

export async function render(root, ctx) {
  if (!ctx.isAdmin) {
    mount(root, h("div", {id: "admin-denied", class: "card narrow"},
      h("h1", {}, "Admin"),
      h("p", {}, "This page is for the organisation's admins and owners only."),
      h("p", {class: "muted"}, `You are signed in as a ${ctx.me.role}.`)));
    return;
  }
  const org = `/orgs/${encodeURIComponent(ctx.me.org_id)}`;
  const panels = await Promise.all([
    membersPanel(ctx, org), keysPanel(ctx, org), channelsPanel(ctx, org), limitsPanel(ctx, org),
  ]);
  mount(root,
    h("h1", {}, "Admin ", h("span", {class: "muted"}, ctx.me.org_id)),
    h("div", {class: "admin-panels"}, panels));
}

// The conformance scenario through @langchain/langgraph-sdk, the client web UIs use: the
// Python scenario's calls with the JS method names. Usage: node scenario.mjs <url> [api key]
// Prints {records, names, methods} as JSON; ../run.py compares two servers' outputs.
import { Client } from "@langchain/langgraph-sdk";

const CLIENTS = ["assistants", "threads", "runs", "crons", "store"];
const HI = { messages: [{ role: "user", content: "hello" }] };
// Each SDK's scenario searches only for what it made (both run against the same servers).
const SUITE = "conformance-js";
const MISSING = "00000000-0000-4000-8000-000000000000";
const FIXED_THREAD = "22222222-2222-4222-8222-222222222222";
const SLOW = { configurable: { steps: 100, delay: 0.1 } };

const [url, key] = process.argv.slice(2);
let statuses = [];
const client = new Client({
  apiUrl: url,
  apiKey: key || null,
  callerOptions: {
    maxRetries: 0,
    fetch: async (...args) => {
      const response = await fetch(...args);
      statuses.push(response.status);
      return response;
    },
  },
});
const records = [];
const names = {};

function name(value, label) {
  if (typeof value === "string") names[value.toLowerCase()] = label;
}

async function call(label, method, work, limit = 60_000) {
  statuses = [];
  let error = null;
  let body = null;
  let result = null;
  let timer;
  try {
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${limit} ms`)), limit);
    });
    result = await Promise.race([work(), timeout]);
    body = result === undefined ? null : result;
  } catch (err) {
    error = err.constructor.name;
    try {
      body = JSON.parse(err.text);
    } catch {
      body = err.text ?? String(err);
    }
    result = null;
  } finally {
    clearTimeout(timer);
  }
  records.push({ call: label, method, statuses, error, body });
  return result;
}

async function collect(stream) {
  const parts = [];
  for await (const part of stream) parts.push({ event: part.event, data: part.data });
  return parts;
}

async function namedStream(label, stream) {
  const parts = await collect(stream);
  for (const part of parts) if (part.event === "metadata") name(part.data.run_id, label);
  return parts;
}

async function assistants() {
  const a = client.assistants;
  const found = await call("assistants.search:graph", "assistants.search", () =>
    a.search({ graphId: "agent" }),
  );
  if (found?.length) name(found[0].assistant_id, "system_agent");
  const nestedFound = await a.search({ graphId: "nested" });
  const nested = nestedFound.length ? nestedFound[0].assistant_id : "nested";
  name(nested, "system_nested");
  await call("assistants.count:graph", "assistants.count", () => a.count({ graphId: "agent" }));
  const made = await call("assistants.create", "assistants.create", () =>
    a.create({
      graphId: "agent",
      config: { configurable: { tone: "dry" } },
      metadata: { suite: SUITE },
      name: "conformance",
      description: "first",
    }),
  );
  const assistant = made?.assistant_id ?? MISSING;
  name(assistant, "assistant");
  await call("assistants.create:existing", "assistants.create", () =>
    a.create({ graphId: "agent", assistantId: assistant, ifExists: "do_nothing" }),
  );
  await call("assistants.create:unknown graph", "assistants.create", () =>
    a.create({ graphId: "no-such-graph" }),
  );
  await call("assistants.get", "assistants.get", () => a.get(assistant));
  await call("assistants.get:missing", "assistants.get", () => a.get(MISSING));
  await call("assistants.update", "assistants.update", () =>
    a.update(assistant, { metadata: { suite: SUITE, v: 2 }, name: "renamed" }),
  );
  await call("assistants.getVersions", "assistants.getVersions", () => a.getVersions(assistant));
  await call("assistants.setLatest", "assistants.setLatest", () => a.setLatest(assistant, 1));
  await call("assistants.search:metadata", "assistants.search", () =>
    a.search({ metadata: { suite: SUITE }, sortBy: "name", sortOrder: "asc" }),
  );
  await call("assistants.count:metadata", "assistants.count", () =>
    a.count({ metadata: { suite: SUITE } }),
  );
  await call("assistants.getGraph", "assistants.getGraph", () => a.getGraph(assistant));
  await call("assistants.getGraph:xray", "assistants.getGraph", () =>
    a.getGraph(nested, { xray: true }),
  );
  await call("assistants.getSchemas", "assistants.getSchemas", () => a.getSchemas(assistant));
  await call("assistants.getSubgraphs", "assistants.getSubgraphs", () =>
    a.getSubgraphs(nested, { recurse: true }),
  );
  await call("assistants.delete", "assistants.delete", () => a.delete(assistant));
  await call("assistants.get:deleted", "assistants.get", () => a.get(assistant));
}

async function threads() {
  const t = client.threads;
  const made = await call("threads.create", "threads.create", () =>
    t.create({ metadata: { suite: SUITE } }),
  );
  const thread = made?.thread_id ?? MISSING;
  name(thread, "thread");
  name(FIXED_THREAD, "fixed_thread");
  await call("threads.create:with id", "threads.create", () =>
    t.create({ threadId: FIXED_THREAD }),
  );
  await call("threads.create:existing", "threads.create", () =>
    t.create({ threadId: FIXED_THREAD, ifExists: "do_nothing" }),
  );
  await call("threads.create:conflict", "threads.create", () =>
    t.create({ threadId: FIXED_THREAD }),
  );
  await call("threads.get", "threads.get", () => t.get(thread));
  await call("threads.get:missing", "threads.get", () => t.get(MISSING));
  await call("threads.update", "threads.update", () =>
    t.update(thread, { metadata: { step: 1 } }),
  );
  await call("threads.search:metadata", "threads.search", () =>
    t.search({ metadata: { suite: SUITE } }),
  );
  await call("threads.search:ids", "threads.search", () =>
    t.search({ ids: [thread, FIXED_THREAD] }),
  );
  await call("threads.count", "threads.count", () => t.count({ metadata: { suite: SUITE } }));
  await call("runs.wait", "runs.wait", () => client.runs.wait(thread, "agent", { input: HI }));
  await call("threads.get:after a run", "threads.get", () => t.get(thread));
  await call("threads.getState", "threads.getState", () => t.getState(thread));
  const history = await call("threads.getHistory", "threads.getHistory", () =>
    t.getHistory(thread, { limit: 3 }),
  );
  const first = history?.length ? history.at(-1).checkpoint.checkpoint_id : MISSING;
  name(first, "first_checkpoint");
  await call("threads.getState:checkpoint", "threads.getState", () => t.getState(thread, first));
  const reply = { messages: [{ role: "ai", content: "edited", id: "edited-1" }] };
  await call("threads.updateState", "threads.updateState", () =>
    t.updateState(thread, { values: reply, asNode: "echo" }),
  );
  await call("threads.getState:after update", "threads.getState", () => t.getState(thread));
  await call("threads.patchState", "threads.patchState", () =>
    t.patchState(thread, { reviewed: true }),
  );
  await call("threads.getState:after patch", "threads.getState", () => t.getState(thread));
  const copied = await call("threads.copy", "threads.copy", () => t.copy(thread));
  name(copied?.thread_id, "copied_thread");
  if (copied) {
    await call("threads.getState:copy", "threads.getState", () => t.getState(copied.thread_id));
    await call("threads.prune", "threads.prune", () => t.prune([copied.thread_id]));
  }
  await call("threads.joinStream", "threads.joinStream", () => threadStream(thread));
  await call("threads.stream", "threads.stream", () => protocolStream(), 30_000);
  await call("threads.delete:fixed", "threads.delete", () => t.delete(FIXED_THREAD));
  return thread;
}

// The thread's stream while a run goes through it, up to that run's last values.
async function threadStream(thread) {
  const parts = [];
  const controller = new AbortController();
  let ended = false;
  const reader = (async () => {
    try {
      const options = { streamMode: ["values"], signal: controller.signal };
      for await (const part of client.threads.joinStream(thread, options)) {
        parts.push({ event: part.event, data: part.data });
        if (part.event === "values" && JSON.stringify(part.data).includes("echo: again")) break;
      }
    } finally {
      ended = true;
    }
  })();
  reader.catch(() => {}); // awaited below, once the run is done
  // The run starts once the stream has answered.
  while (statuses.length === 0 && !ended) await new Promise((done) => setTimeout(done, 10));
  try {
    const again = { messages: [{ role: "user", content: "again" }] };
    await client.runs.wait(thread, "agent", { input: again });
    await reader;
  } finally {
    controller.abort();
  }
  return parts;
}

// The v3 thread stream (`POST /threads/{id}/commands` and `/stream/events`).
async function protocolStream() {
  const stream = client.threads.stream(FIXED_THREAD, { assistantId: "agent" });
  try {
    const started = await stream.run.start({ input: HI });
    name(started?.run_id, "protocol_run");
    return { start: started, output: await stream.output };
  } finally {
    await stream.close();
  }
}

async function runs(thread) {
  const r = client.runs;
  const t = client.threads;
  const made = await call("runs.create", "runs.create", () =>
    r.create(thread, "agent", { input: HI, metadata: { suite: SUITE } }),
  );
  const run = made?.run_id ?? MISSING;
  name(run, "run");
  await call("runs.join", "runs.join", () => r.join(thread, run));
  await call("runs.get", "runs.get", () => r.get(thread, run));
  await call("runs.get:missing", "runs.get", () => r.get(thread, MISSING));
  await call("runs.list", "runs.list", () => r.list(thread, { limit: 2 }));
  await call("runs.stream", "runs.stream", () =>
    namedStream(
      "stream_run",
      r.stream(thread, "agent", { input: HI, streamMode: ["values", "updates", "messages-tuple"] }),
    ),
  );
  await call("runs.stream:stateless", "runs.stream", () =>
    namedStream("stateless_run", r.stream(null, "agent", { input: HI })),
  );
  await call("runs.stream:custom", "runs.stream", () =>
    namedStream("custom_run", r.stream(null, "custom", { input: {}, streamMode: "custom" })),
  );
  const nested = (await t.create()).thread_id;
  name(nested, "nested_thread");
  await call("runs.stream:subgraphs", "runs.stream", () =>
    namedStream(
      "nested_run",
      r.stream(nested, "nested", {
        input: { topic: "tea" },
        streamMode: "updates",
        streamSubgraphs: true,
      }),
    ),
  );
  await call("threads.getState:subgraphs", "threads.getState", () =>
    t.getState(nested, undefined, { subgraphs: true }),
  );
  await call("runs.wait:stateless", "runs.wait", () => r.wait(null, "agent", { input: HI }));
  const hitl = (await t.create()).thread_id;
  name(hitl, "hitl_thread");
  await call("runs.wait:interrupt", "runs.wait", () => r.wait(hitl, "hitl", { input: HI }));
  await call("runs.wait:resume", "runs.wait", () =>
    r.wait(hitl, "hitl", { command: { resume: "yes" } }),
  );
  await call("runs.createBatch", "runs.createBatch", () =>
    r.createBatch([
      { assistantId: "agent", input: HI },
      { assistantId: "custom", input: {} },
    ]),
  );
  const slow = (await t.create()).thread_id;
  name(slow, "slow_thread");
  const quick = await r.create(slow, "slow", {
    input: {},
    config: { configurable: { steps: 3, delay: 0.05 } },
    streamResumable: true,
  });
  name(quick.run_id, "slow_run");
  await call("runs.joinStream", "runs.joinStream", () =>
    collect(r.joinStream(slow, quick.run_id, { lastEventId: "-1" })),
  );
  const long = await r.create(slow, "slow", { input: {}, config: SLOW });
  name(long.run_id, "long_run");
  await call("runs.cancel", "runs.cancel", () => r.cancel(slow, long.run_id, true));
  await call("runs.get:cancelled", "runs.get", () => r.get(slow, long.run_id));
  const pending = await r.create(slow, "slow", { input: {}, config: SLOW, afterSeconds: 3600 });
  name(pending.run_id, "pending_run");
  await call("runs.cancelMany", "runs.cancelMany", () =>
    r.cancelMany({ threadId: slow, runIds: [pending.run_id] }),
  );
  await call("runs.get:cancelled many", "runs.get", () => r.get(slow, pending.run_id));
  await call("runs.delete", "runs.delete", () => r.delete(slow, long.run_id));
  await call("runs.get:deleted", "runs.get", () => r.get(slow, long.run_id));
}

async function crons(thread) {
  const c = client.crons;
  const made = await call("crons.create", "crons.create", () =>
    c.create("agent", { schedule: "0 0 * * *", input: HI, metadata: { suite: SUITE } }),
  );
  const cron = made?.cron_id ?? MISSING;
  name(cron, "cron");
  const onThread = await call("crons.createForThread", "crons.createForThread", () =>
    c.createForThread(thread, "agent", { schedule: "0 0 * * *", input: HI }),
  );
  name(onThread?.cron_id, "thread_cron");
  await call("crons.create:bad schedule", "crons.create", () =>
    c.create("agent", { schedule: "not a schedule" }),
  );
  await call("crons.search", "crons.search", () => c.search({ metadata: { suite: SUITE } }));
  await call("crons.search:thread", "crons.search", () => c.search({ threadId: thread }));
  await call("crons.count", "crons.count", () => c.count());
  await call("crons.update", "crons.update", () => c.update(cron, { schedule: "0 1 * * *" }));
  await call("crons.delete", "crons.delete", () => c.delete(cron));
  if (onThread) await c.delete(onThread.cron_id);
  await call("crons.count:after delete", "crons.count", () => c.count());
}

async function store() {
  const s = client.store;
  const ns = ["conformance", "notes"];
  await call("store.putItem", "store.putItem", () => s.putItem(ns, "k1", { text: "hello" }));
  await call("store.getItem", "store.getItem", () => s.getItem(ns, "k1"));
  await call("store.getItem:missing", "store.getItem", () => s.getItem(ns, "nope"));
  await call("store.searchItems", "store.searchItems", () =>
    s.searchItems(["conformance"], { filter: { text: "hello" } }),
  );
  await call("store.listNamespaces", "store.listNamespaces", () =>
    s.listNamespaces({ prefix: ["conformance"] }),
  );
  await call("store.deleteItem", "store.deleteItem", () => s.deleteItem(ns, "k1"));
  await call("store.getItem:deleted", "store.getItem", () => s.getItem(ns, "k1"));
}

function methods() {
  return CLIENTS.flatMap((kind) =>
    Object.getOwnPropertyNames(Object.getPrototypeOf(client[kind]))
      .filter((method) => method !== "constructor" && !method.startsWith("_"))
      .map((method) => `${kind}.${method}`),
  ).sort();
}

await assistants();
const thread = await threads();
await runs(thread);
await crons(thread);
await store();
await call("threads.delete", "threads.delete", () => client.threads.delete(thread));
await call("threads.get:deleted", "threads.get", () => client.threads.get(thread));
// Exits once the output is flushed: a pipe takes it in 64 KiB pieces, and open keep-alive
// connections would otherwise hold the process.
process.stdout.write(JSON.stringify({ records, names, methods: methods() }), () => process.exit(0));

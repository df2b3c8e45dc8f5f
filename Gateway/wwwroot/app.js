// AspireAi web chat: plain JavaScript against the gateway's OpenAI-compatible API (no build step, no dependencies).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { key: localStorage.getItem("aspireai.key") || "", history: [] };

/** Calls the gateway with the key; throws the OpenAI error message on failure. */
async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.key}`, ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error.message || message; } catch { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

async function connect(event) {
  event?.preventDefault();
  state.key = $("api-key").value.trim();
  localStorage.setItem("aspireai.key", state.key);
  $("key-status").textContent = "Connecting…";
  try {
    const models = (await (await api("/v1/models")).json()).data.map((m) => m.id);
    let agents = [];
    try { agents = (await (await api("/v1/agents")).json()).data.map((a) => `agent:${a.name}`); } catch { /* no agents scope */ }
    const select = $("model");
    select.replaceChildren(...[...models, ...agents].map((id) => new Option(id, id)));
    $("key-status").textContent = `Connected: ${models.length} models, ${agents.length} agents`;
  } catch (error) {
    $("key-status").textContent = `Not connected: ${error.message}`;
  }
}

function addMessage(role, text = "") {
  const item = document.createElement("li");
  item.className = role;
  const body = document.createElement("div");
  body.className = "content";
  body.textContent = text;
  item.append(body);
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

/** Yields each JSON payload of a server-sent event stream ("data: {...}" lines) as it arrives. */
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

/** Searches the chosen collection and returns numbered sources for the prompt and the citations list. */
async function retrieve(question) {
  const collection = $("collection").value.trim();
  const response = await api(`/v1/collections/${encodeURIComponent(collection)}/search`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ query: question, top_k: 4 }),
  });
  return (await response.json()).results.map((r, i) => ({ n: i + 1, document: r.document_id, chunk: r.chunk_index, text: r.text }));
}

/** One line for a run event the person should see, or null for events that are not steps. */
function describeStep(event) {
  if (!event) return null;
  const d = event.data ?? {};
  const brief = (value) => {
    const t = typeof value === "string" ? value : JSON.stringify(value);
    return t.length > 80 ? `${t.slice(0, 79)}…` : t;
  };
  switch (event.type) {
    case "plan": return `plan: ${d.plan?.steps?.length ?? 0} steps`;
    case "plan.revised": return `revised plan: ${d.plan?.steps?.length ?? 0} steps (${d.reason ?? "a step failed"})`;
    case "step.started": return d.step === "answer" ? "writing the answer" : `step ${d.id}: ${d.task}`;
    case "step.failed": return `step ${d.id} failed: ${d.error}`;
    case "tool.call": return `calling ${d.tool} ${brief(d.arguments ?? {})}`;
    case "tool.result": return `${d.tool} returned ${brief(d.result ?? "")}`;
    case "approval.required": return `waiting for a person to approve ${d.tool}`;
    case "approval.decided": return `${d.tool} ${d.approved ? "approved" : "rejected"}`;
    case "run.resumed": return "resumed after a restart";
    default: return null;
  }
}

function showSteps(item, steps) {
  let list = item.querySelector(".steps");
  if (!list) {
    list = document.createElement("ol");
    list.className = "steps";
    item.prepend(list);
  }
  list.replaceChildren(...steps.map((s) => Object.assign(document.createElement("li"), { textContent: s })));
}

function showCitations(item, sources) {
  const list = document.createElement("ol");
  list.className = "citations";
  list.append(...sources.map((s) => Object.assign(document.createElement("li"), { textContent: `${s.document} (chunk ${s.chunk})` })));
  item.append(list);
}

async function send(event) {
  event.preventDefault();
  const question = $("prompt").value.trim();
  const model = $("model").value;
  if (!question || !model) return;
  $("prompt").value = "";
  $("send").disabled = true;
  addMessage("user", question);
  const answer = addMessage("assistant");
  const content = answer.querySelector(".content");
  try {
    let sources = [];
    const messages = [...state.history, { role: "user", content: question }];
    if ($("use-retrieval").checked) {
      sources = await retrieve(question);
      const context = sources.map((s) => `[${s.n}] ${s.text}`).join("\n\n");
      messages.unshift({ role: "system", content: `Answer from these sources and cite them as [n]:\n\n${context}` });
    }
    const response = await api("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model, messages, stream: true }),
    });
    const steps = [];
    let text = "";
    for await (const chunk of events(response)) {
      const delta = chunk.choices?.[0]?.delta ?? {};
      // An agent's run (model "agent:<name>") streams its steps as run events in aspireai.event (docs/agents.md).
      const step = describeStep(chunk.aspireai?.event);
      if (step) {
        steps.push(step);
        showSteps(answer, steps);
      }
      // The agent's own citations arrive with the run's last chunk.
      for (const c of chunk.aspireai?.citations ?? []) {
        sources.push({ n: Number(c.index), document: c.document_id ?? c.source, chunk: c.chunk_index, text: c.text });
      }
      if (delta.content) {
        text += delta.content;
        content.textContent = text;
      }
    }
    if (sources.length) showCitations(answer, sources);
    state.history.push({ role: "user", content: question }, { role: "assistant", content: text });
  } catch (error) {
    answer.classList.add("error");
    content.textContent = error.message;
  } finally {
    $("send").disabled = false;
  }
}

async function upload() {
  const collection = $("collection").value.trim();
  const file = $("file").files[0];
  if (!file) { $("upload-status").textContent = "Choose a file first."; return; }
  $("upload-status").textContent = `Uploading ${file.name}…`;
  try {
    await api(`/v1/collections/${encodeURIComponent(collection)}`, { method: "PUT" });
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("id", file.name);
    const result = await (await api(`/v1/collections/${encodeURIComponent(collection)}/documents`, { method: "POST", body: form })).json();
    $("upload-status").textContent = `${file.name}: ${result.status ?? "accepted"}`;
  } catch (error) {
    $("upload-status").textContent = `Upload failed: ${error.message}`;
  }
}

$("key-form").addEventListener("submit", connect);
$("composer").addEventListener("submit", send);
$("upload").addEventListener("click", upload);
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("composer").requestSubmit(); }
});
if (state.key) { $("api-key").value = state.key; connect(); }

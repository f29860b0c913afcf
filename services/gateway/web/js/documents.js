// Documents: upload with live per-file status, the document list, and search.

import { request, upload } from "./api.js";
import { $, confirmAction, count, el, reportError, showPassage } from "./ui.js";

const POLL_MS = 600;
const FINAL = new Set(["indexed", "failed", "superseded"]);

function statusRow(file) {
  const status = el("span", { class: "status status-uploading" }, "uploading");
  const reason = el("span", { class: "reason" });
  const row = el("li", { class: "upload" }, el("span", { class: "file-name" }, file.name), " ",
    status, reason);
  $("upload-list").prepend(row);
  return {
    row,
    set(state, why = "") {
      status.textContent = state;
      status.className = `status status-${state}`;
      reason.textContent = why ? ` ${why}` : "";
      row.dataset.status = state;
    },
  };
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

async function follow(jobId, view) {
  for (;;) {
    let job;
    try {
      job = await request("GET", `/jobs/${encodeURIComponent(jobId)}`);
    } catch (error) {
      view.set("failed", error.message);
      reportError(error, "Could not read the indexing status");
      return;
    }
    const chunks = job.status === "indexed" ? `(${count(job.chunk_count, "chunk")})` : "";
    view.set(job.status, job.error || chunks);
    if (FINAL.has(job.status)) return;
    await sleep(POLL_MS);
  }
}

async function uploadOne(file, tags) {
  const view = statusRow(file);
  try {
    const accepted = await upload(file, tags);
    view.set("queued");
    await follow(accepted.job_id, view);
  } catch (error) {
    view.set("failed", error.message);
    if (error.status === 401 || error.status === 429 || error.status === 503) {
      reportError(error, `Upload of ${file.name} failed`);
    }
  }
  refreshDocuments();
}

/** Upload every file at once; each gets its own live status row. */
export function uploadFiles(files) {
  const tags = $("upload-tags").value.trim();
  return Promise.all([...files].map((file) => uploadOne(file, tags)));
}

function documentItem(doc) {
  const date = doc.created_at ? new Date(doc.created_at).toLocaleDateString() : "";
  const name = doc.title || doc.source;
  const tags = doc.tags.length ? doc.tags.join(", ") : "no tags";
  return el("li", { class: "document" },
    el("span", { class: "doc-name" }, name),
    el("span", { class: "muted small" },
      `${count(doc.chunk_count, "chunk")} · v${doc.version} · ${date} · ${doc.status}`),
    el("span", { class: "small" }, `Tags: ${tags}`),
    el("button", { type: "button", class: "link-btn danger-text", "aria-label": `Delete ${name}`,
      onclick: () => removeDocument(doc, name) }, "Delete"));
}

let nextToken = null;

/** Load the first page of documents (newest first), or with `more` the next one. */
export async function refreshDocuments(more = false) {
  const token = more && nextToken ? `&page_token=${encodeURIComponent(nextToken)}` : "";
  try {
    const page = await request("GET", `/documents?page_size=50${token}`);
    const items = page.documents.map(documentItem);
    if (token) $("document-list").append(...items);
    else $("document-list").replaceChildren(...items);
    nextToken = page.next_page_token;
    $("documents-more").hidden = !nextToken;
    $("documents-empty").hidden = $("document-list").children.length > 0;
  } catch (error) {
    reportError(error, "Could not load documents");
  }
}

async function removeDocument(doc, name) {
  if (!(await confirmAction("Delete document?",
    `“${name}” and its indexed passages will be deleted.`))) return;
  try {
    await request("DELETE", `/documents/${encodeURIComponent(doc.document_id)}`);
    await refreshDocuments();
  } catch (error) {
    reportError(error, `Could not delete ${name}`);
  }
}

async function search(event) {
  event.preventDefault();
  const query = $("search-query").value.trim();
  if (!query) return;
  $("search-status").textContent = "Searching…";
  try {
    const found = await request("POST", "/search", { query, mode: $("search-mode").value });
    $("search-status").textContent = `${found.results.length} results (${found.mode}).`;
    $("search-results").replaceChildren(...found.results.map((hit) => el("li", {},
      el("button", { type: "button", class: "citation", onclick: () => showPassage(hit, query) },
        hit.source || hit.title, el("span", { class: "score" }, ` score ${hit.score.toFixed(2)}`)),
      el("p", { class: "snippet small" }, hit.text.slice(0, 160)))));
  } catch (error) {
    $("search-status").textContent = "";
    reportError(error, "Search failed");
  }
}

export function bindDocuments() {
  $("file-input").addEventListener("change", (event) => {
    uploadFiles(event.target.files);
    event.target.value = "";
  });
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer && event.dataTransfer.files.length) uploadFiles(event.dataTransfer.files);
  });
  $("search-form").addEventListener("submit", search);
  $("refresh-documents").addEventListener("click", () => refreshDocuments());
  $("documents-more").addEventListener("click", () => refreshDocuments(true));
}

// The sidebar of conversations: continue, rename, delete, new chat.

import { request } from "./api.js";
import { currentSession, newChat, openSession, renameCurrent } from "./chat.js";
import { $, confirmAction, count, el, openDialog, reportError, showPanel } from "./ui.js";

const UNTITLED = "Untitled conversation";

function when(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function item(session) {
  const title = session.title || UNTITLED;
  const current = session.session_id === currentSession();
  return el("li", { class: current ? "session current" : "session" },
    el("button", {
      type: "button", class: "session-open", "aria-current": current ? "true" : undefined,
      onclick: () => { showPanel(null); openSession(session.session_id, session.title); },
    }, el("span", { class: "session-title" }, title),
    el("span", { class: "muted small" }, `${count(session.turn_count, "turn")} · ${when(session.updated_at)}`)),
    el("div", { class: "session-actions" },
      el("button", { type: "button", class: "link-btn", "aria-label": `Rename ${title}`,
        onclick: () => rename(session) }, "Rename"),
      el("button", { type: "button", class: "link-btn danger-text", "aria-label": `Delete ${title}`,
        onclick: () => remove(session) }, "Delete")));
}

let nextToken = null;

/** Load the first page (newest activity first), or with `more` the next one. */
export async function refreshSessions(more = false) {
  const token = more && nextToken ? `&page_token=${encodeURIComponent(nextToken)}` : "";
  try {
    const page = await request("GET", `/sessions?page_size=30${token}`);
    const items = page.sessions.map(item);
    if (token) $("session-list").append(...items);
    else $("session-list").replaceChildren(...items);
    nextToken = page.next_page_token;
    $("sessions-more").hidden = !nextToken;
    $("sessions-empty").hidden = $("session-list").children.length > 0;
  } catch (error) {
    reportError(error, "Could not load conversations");
  }
}

async function rename(session) {
  const input = $("rename-input");
  input.value = session.title;
  const dialog = $("rename-dialog");
  setTimeout(() => input.select(), 0);
  if ((await openDialog(dialog)) !== "ok" || !input.value.trim()) return;
  try {
    const updated = await request("PATCH", `/sessions/${encodeURIComponent(session.session_id)}`,
      { title: input.value.trim() });
    renameCurrent(updated.session_id, updated.title);
    await refreshSessions();
  } catch (error) {
    reportError(error, "Could not rename the conversation");
  }
}

async function remove(session) {
  const title = session.title || UNTITLED;
  if (!(await confirmAction("Delete conversation?", `“${title}” and its turns will be deleted.`))) {
    return;
  }
  try {
    await request("DELETE", `/sessions/${encodeURIComponent(session.session_id)}`);
    if (session.session_id === currentSession()) newChat();
    await refreshSessions();
  } catch (error) {
    reportError(error, "Could not delete the conversation");
  }
}

export function bindSessions() {
  $("new-chat").addEventListener("click", () => {
    showPanel(null);
    newChat();
    refreshSessions();
  });
  $("sessions-more").addEventListener("click", () => refreshSessions(true));
}

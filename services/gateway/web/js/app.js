// Entry point: wires the views, the settings panel and the API-key prompt.

import { settings } from "./api.js";
import { bindComposer, newChat, setSessionListener } from "./chat.js";
import { bindDocuments, refreshDocuments } from "./documents.js";
import { bindSessions, refreshSessions } from "./sessions.js";
import { $, bindPanels, clearNotice, openDialog, setUnauthorizedHandler } from "./ui.js";

let settingsOpen = false;

function loadAll() {
  refreshSessions();
  refreshDocuments();
}

/** The settings panel; `needKey` explains that the server asked for an API key. */
async function openSettings(needKey = false) {
  if (settingsOpen) return;
  settingsOpen = true;
  const { mode = "", top_k: topK = "" } = settings.retrieval;
  $("key-reason").hidden = !needKey;
  $("setting-api-key").value = settings.apiKey;
  $("setting-mode").value = mode;
  $("setting-top-k").value = topK;
  const dialog = $("settings-dialog");
  if (needKey) setTimeout(() => $("setting-api-key").focus(), 0);
  const choice = await openDialog(dialog);
  settingsOpen = false;
  if (choice !== "ok") return;
  const keyChanged = $("setting-api-key").value.trim() !== settings.apiKey;
  settings.apiKey = $("setting-api-key").value.trim();
  const k = Number.parseInt($("setting-top-k").value, 10);
  settings.retrieval = {
    mode: $("setting-mode").value,
    top_k: Number.isInteger(k) && k >= 1 && k <= 100 ? k : "",
  };
  if (keyChanged) {
    clearNotice();
    loadAll();
  }
}

function main() {
  setUnauthorizedHandler(() => openSettings(true));
  $("open-settings").addEventListener("click", () => openSettings(false));
  $("notice-close").addEventListener("click", clearNotice);
  for (const button of document.querySelectorAll(".dialog-cancel")) {
    button.addEventListener("click", () => button.closest("dialog").close("cancel"));
  }
  setSessionListener(() => refreshSessions());
  bindComposer();
  bindSessions();
  bindDocuments();
  bindPanels();
  newChat(false); // no focus jump on load: the skip link comes first
  loadAll();
}

main();

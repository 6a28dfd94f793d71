// @ts-check
// KTube dashboard client: JSON form submits, sign-out, copy buttons, the delete dialog,
// relative times, and the live stream (one EventSource per tab; on a change the page's live
// region is re-fetched from the server, which renders and escapes it).

/** @param {string} url @param {string} method @param {unknown} body */
async function sendJson(url, method, body) {
  const response = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  /** @type {{ message?: string, location?: string, causes?: { field?: string, message?: string }[] }} */
  const data = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, data };
}

/** @param {HTMLFormElement} form */
function formFields(form) {
  /** @type {Record<string, string>} */
  const fields = {};
  for (const [key, value] of new FormData(form)) if (typeof value === "string") fields[key] = value;
  return fields;
}

/** @param {HTMLFormElement} form @param {string} message */
function showFormError(form, message) {
  const box = form.querySelector("[role=alert]");
  if (box) box.textContent = message;
}

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-json")) return;
  event.preventDefault();
  const button = form.querySelector("button[type=submit]");
  if (button instanceof HTMLButtonElement) button.disabled = true;
  showFormError(form, "");
  try {
    const { ok, data } = await sendJson(form.action, "POST", formFields(form));
    if (ok && data.location) {
      location.assign(data.location);
      return;
    }
    const causes = (data.causes ?? []).map((c) => `${c.field ? `${c.field}: ` : ""}${c.message ?? ""}`).filter((c) => !(data.message ?? "").includes(c));
    showFormError(form, [data.message ?? "The request failed.", ...causes].join("\n"));
  } catch (error) {
    showFormError(form, `The dashboard could not be reached: ${error}`);
  } finally {
    if (button instanceof HTMLButtonElement) button.disabled = false;
  }
});

document.getElementById("sign-out")?.addEventListener("click", async () => {
  const { data } = await sendJson("/logout", "POST", {});
  location.assign(data.location ?? "/login");
});

/** @param {string} text */
async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false; // not a secure context, or no permission: the URL stays selectable on the page
  }
}

const dialog = /** @type {HTMLDialogElement | null} */ (document.getElementById("confirm-delete"));
/** @type {HTMLElement | null} */
let deleteTrigger = null;

document.addEventListener("click", async (event) => {
  const target = event.target instanceof Element ? event.target.closest("button") : null;
  if (!target) return;
  const copy = target.getAttribute("data-copy");
  if (copy !== null) {
    const done = await copyText(copy);
    target.textContent = done ? "Copied" : "Copy failed";
    setTimeout(() => (target.textContent = "Copy"), 2000);
    return;
  }
  if (target.hasAttribute("data-delete") && dialog) {
    deleteTrigger = target;
    const name = document.getElementById("confirm-delete-name");
    if (name) name.textContent = target.getAttribute("data-name") ?? "";
    const error = document.getElementById("confirm-delete-error");
    if (error) error.textContent = "";
    dialog.showModal();
  }
});

dialog?.addEventListener("close", async () => {
  const trigger = deleteTrigger;
  if (!trigger) return;
  if (dialog.returnValue !== "delete") {
    if (trigger.isConnected) trigger.focus();
    return;
  }
  const { ok, data } = await sendJson(trigger.getAttribute("data-delete") ?? "", "DELETE", { uid: trigger.getAttribute("data-uid") });
  if (!ok) {
    const error = document.getElementById("confirm-delete-error");
    if (error) error.textContent = data.message ?? "Delete failed.";
    dialog.showModal();
    return;
  }
  deleteTrigger = null;
  // On a list page the live stream removes the row; a detail page goes back to the list.
  if (location.pathname.split("/").length > 3) location.assign(data.location ?? "/bindings");
});

/** @param {number} ms */
function describeAge(ms) {
  const seconds = Math.round(ms / 1000);
  if (seconds < 10) return "just now";
  /** @type {[number, string][]} */
  const units = [[86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]];
  for (const [size, unit] of units) {
    const count = Math.floor(seconds / size);
    if (count >= 1) return `${count} ${unit}${count === 1 ? "" : "s"} ago`;
  }
  return "just now";
}

function refreshTimes() {
  for (const time of document.querySelectorAll("time[datetime]")) {
    const at = Date.parse(time.getAttribute("datetime") ?? "");
    if (!Number.isNaN(at)) time.textContent = describeAge(Date.now() - at);
  }
}
setInterval(refreshTimes, 20_000);

const region = document.getElementById("live-region");
const indicator = document.getElementById("live");

/** @param {"live" | "reconnecting" | "stopped"} state @param {string} text */
function setIndicator(state, text) {
  if (!indicator) return;
  indicator.className = `live ${state}`;
  indicator.textContent = text;
}

/**
 * A selector that finds the same control in the re-rendered region, so keyboard focus
 * survives a live update (buttons are named by aria-label, links by href).
 * @param {Element | null} element
 */
function focusKey(element) {
  if (!region || !element || !region.contains(element)) return undefined;
  if (element.id) return `#${CSS.escape(element.id)}`;
  const label = element.getAttribute("aria-label");
  if (label) return `${element.tagName.toLowerCase()}[aria-label="${CSS.escape(label)}"]`;
  const href = element.getAttribute("href");
  if (href) return `a[href="${CSS.escape(href)}"]`;
  return undefined;
}

let refreshing = false;
let refreshAgain = false;
async function refreshRegion() {
  if (!region) return;
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  try {
    const url = new URL(location.href);
    url.searchParams.set("fragment", "1");
    const response = await fetch(url, { credentials: "same-origin" });
    if (response.redirected && new URL(response.url).pathname === "/login") {
      location.assign("/login?ended=1");
      return;
    }
    const focused = focusKey(document.activeElement);
    const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
    region.replaceChildren(...parsed.body.childNodes);
    if (focused) /** @type {HTMLElement | null} */ (region.querySelector(focused))?.focus();
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed ?? "0") + 1);
  } finally {
    refreshing = false;
    if (refreshAgain) {
      refreshAgain = false;
      void refreshRegion();
    }
  }
}

const streamUrl = document.body.dataset.stream;
if (streamUrl) {
  const source = new EventSource(streamUrl);
  let dropped = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let pending;
  source.addEventListener("ready", () => {
    setIndicator("live", "Live");
    // After a reconnect, changes may have been missed while the stream was down.
    if (dropped) void refreshRegion();
    dropped = false;
  });
  source.addEventListener("change", () => {
    clearTimeout(pending);
    pending = setTimeout(refreshRegion, 100);
  });
  source.addEventListener("end", (event) => {
    source.close();
    /** @type {{ status?: number, message?: string }} */
    const data = JSON.parse(event.data);
    if (data.status === 401) {
      location.assign("/login?ended=1");
      return;
    }
    setIndicator("stopped", `Not live: ${data.message ?? "access ended"}`);
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) return;
    dropped = true;
    setIndicator("reconnecting", "Reconnecting…");
  });
}

// The project board: native HTML5 drag and drop, and the cards' own forms (the keyboard
// way) sent as JSON requests to the same URL; the server's services decide. A refusal is
// shown on the card with the reason and the moves allowed.
(function () {
  "use strict";
  const root = document.querySelector(".board-groups");
  if (!root) return;
  const csrf = root.dataset.csrf;
  const status = document.getElementById("board-status");
  let dragged = null;

  function send(card, fields) {
    const body = new URLSearchParams({ key: card.dataset.key, version: card.dataset.version, ...fields });
    return fetch(window.location.pathname + window.location.search, {
      method: "POST",
      headers: { "X-CSRFToken": csrf, Accept: "application/json" },
      body: body,
      credentials: "same-origin",
    }).then((r) => r.json()).then((result) => {
      if (result.ok) {
        status.textContent = result.key + " saved.";
        window.location.reload();
        return;
      }
      const error = card.querySelector(".card-error");
      let text = result.message || "Refused.";
      if (result.allowed) text += " Allowed moves: " + (result.allowed.map((m) => m.name).join(", ") || "none") + ".";
      error.textContent = text;
      error.hidden = false;
      if (result.version) card.dataset.version = result.version;
      status.textContent = card.dataset.key + ": " + text;
    });
  }

  root.addEventListener("dragstart", (event) => {
    dragged = event.target.closest(".board-card");
    if (dragged) event.dataTransfer.setData("text/plain", dragged.dataset.key);
  });
  root.addEventListener("dragover", (event) => {
    const column = event.target.closest(".board-column");
    if (column && dragged) { event.preventDefault(); column.classList.add("drop-target"); }
  });
  root.addEventListener("dragleave", (event) => {
    const column = event.target.closest(".board-column");
    if (column) column.classList.remove("drop-target");
  });
  root.addEventListener("drop", (event) => {
    const column = event.target.closest(".board-column");
    if (!column || !dragged) return;
    event.preventDefault();
    column.classList.remove("drop-target");
    const card = dragged;
    dragged = null;
    if (column.dataset.status !== card.dataset.status) {
      send(card, { status: column.dataset.status });
      return;
    }
    const over = event.target.closest(".board-card");
    if (!over || over === card) return;
    const box = over.getBoundingClientRect();
    const above = event.clientY < box.top + box.height / 2;
    send(card, above ? { before: over.dataset.key } : { after: over.dataset.key });
  });
  root.addEventListener("submit", (event) => {
    const form = event.target;
    const card = form.closest(".board-card");
    if (!card) return;
    event.preventDefault();
    const fields = {};
    if (form.classList.contains("card-move")) fields.status = form.elements.status.value;
    const button = event.submitter;
    if (button && button.name) fields[button.name] = button.value;
    send(card, fields);
  });
})();

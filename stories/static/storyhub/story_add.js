/* Story add form: when the project changes, offer only its statuses, backlogs and epics
   (no reload). The server narrows them the same way on a post (StoryAdminForm) and
   refuses a status of another project, so this script only saves a round trip.
   Reads the choices from the project's story-choices URL (data-choices-url on the
   script tag, "__project__" standing for the project's id). No library. */
(function () {
  "use strict";
  const script = document.currentScript;
  const template = script && script.dataset.choicesUrl;
  const project = document.getElementById("id_project");
  if (!template || !project) return;
  const fields = ["status", "backlog", "epic"];
  const note = document.createElement("p");
  note.id = "storyhub-choices-note";
  note.className = "help";
  note.setAttribute("role", "status");
  note.setAttribute("aria-live", "polite");
  const statusSelect = document.getElementById("id_status");
  if (statusSelect) statusSelect.closest(".form-row, .fieldBox, div").appendChild(note);
  let asked = 0;

  function fill(select, rows) {
    const keep = select.value;
    const empty = [...select.options].find((o) => o.value === "");
    select.replaceChildren();
    if (empty) select.appendChild(empty);
    for (const row of rows) {
      const option = new Option(row.name, String(row.id));
      option.selected = String(row.id) === keep;
      select.appendChild(option);
    }
    select.dataset.project = project.value;
  }

  async function refresh() {
    const id = project.value;
    if (!/^\d+$/.test(id)) return;
    const mine = ++asked;
    note.textContent = "Loading the project's statuses…";
    let choices;
    try {
      const response = await fetch(template.replace("__project__", id), {
        headers: {Accept: "application/json"}, credentials: "same-origin",
      });
      if (!response.ok) throw new Error(String(response.status));
      choices = await response.json();
    } catch (err) {
      if (mine === asked) note.textContent = "Could not load this project's choices; they are checked when you save.";
      return;
    }
    if (mine !== asked) return; // a later change won
    for (const name of fields) {
      const select = document.getElementById("id_" + name);
      if (select && choices[name]) fill(select, choices[name]);
    }
    note.textContent = `Showing the ${choices.status.length} statuses of the chosen project.`;
    document.body.dataset.choicesProject = id;
  }

  // The project field is Django's autocomplete (select2 on django.jQuery), which signals
  // changes through jQuery; a plain <select> sends a native event (jQuery sees both).
  if (window.django && window.django.jQuery) window.django.jQuery(project).on("change", refresh);
  else project.addEventListener("change", refresh);
})();

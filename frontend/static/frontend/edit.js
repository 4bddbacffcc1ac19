// Comforts of the page edit form. Without JavaScript the form works as it is: its Preview
// button renders the page on the server and the help texts are in the markup.
// - A live preview of the body beside the editor, rendered by the server (the page's own
//   renderer and sanitizer) once typing pauses.
// - Ctrl+S (Cmd+S on a Mac) saves, through the Save button.
// - A warning before leaving the page with changes that are not saved.
"use strict";
(function () {
  const form = document.querySelector("form[data-edit-form]");
  if (!form) return;
  const body = form.elements.namedItem("body");
  const saveButton = form.querySelector('button[name="save"]');
  const snapshot = () => new URLSearchParams(new FormData(form)).toString();
  const initial = snapshot();
  let submitting = false;
  form.addEventListener("submit", () => {
    submitting = true;
  });

  // Live preview.
  const PREVIEW_DELAY_MS = 400;
  const editor = form.querySelector("[data-body-editor]");
  const output = editor.querySelector("[data-live-preview]");
  let timer = null;
  let latest = 0; // the newest request: an older answer that arrives late is dropped
  const showPreview = async () => {
    const asked = ++latest;
    const data = new FormData();
    data.append("csrfmiddlewaretoken", form.elements.namedItem("csrfmiddlewaretoken").value);
    data.append("body", body.value);
    let html;
    try {
      // A redirect means the session ended (to the login page): not a preview.
      const response = await fetch(form.dataset.previewUrl, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        redirect: "error",
      });
      // The fragment is sanitized by the server; a 400 carries its message the same way.
      if (response.ok || response.status === 400) html = await response.text();
      else html = `<p class="error">No preview: the server answered ${response.status}.</p>`;
    } catch {
      html = '<p class="error">No preview: the server could not be reached.</p>';
    }
    if (asked === latest) output.innerHTML = html;
  };
  body.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(showPreview, PREVIEW_DELAY_MS);
  });
  editor.querySelector(".live-preview").hidden = false;
  editor.classList.add("live");
  showPreview();

  // Save with the keyboard.
  const hint = form.querySelector("[data-save-hint]");
  const platform = navigator.userAgentData?.platform ?? navigator.platform;
  if (/mac|iphone|ipad/i.test(platform)) hint.querySelector("kbd").textContent = "⌘S";
  hint.hidden = false;
  document.addEventListener("keydown", (event) => {
    if (!(event.ctrlKey || event.metaKey) || event.altKey || event.shiftKey) return;
    if (event.key.toLowerCase() !== "s") return;
    event.preventDefault(); // not the browser's "save page as"
    if (!submitting) form.requestSubmit(saveButton);
  });

  // Warn before leaving with unsaved changes. A form shown again after a preview, an error
  // or a conflict holds text that was never saved, so it warns even unchanged.
  window.addEventListener("beforeunload", (event) => {
    if (submitting) return;
    if (!("unsaved" in form.dataset) && snapshot() === initial) return;
    event.preventDefault();
    event.returnValue = ""; // still needed by some browsers to show the dialog
  });
})();

// Attachments without leaving the page. Without JavaScript the panel's form uploads the
// chosen files and comes back to the page (frontend/_attachments.html).
// - Files dropped on the attachments panel are uploaded; the panel then lists them.
// - The panel's form uploads in place, so unsaved text in the editor stays where it is.
// - In the page editor, an image pasted into the body, or a file dropped on it, is
//   uploaded and `![name](attachment:name)` goes where the cursor is; the live preview
//   (edit.js) shows it.
// One request per file: a file the server refuses does not hold back the others.
"use strict";
(function () {
  const PANEL = "section[data-attachments]";
  const uploadForm = () => document.querySelector("form[data-attachment-upload]");
  if (!uploadForm()) return;

  const say = (message) => {
    const status = document.querySelector("[data-upload-status]");
    if (status) status.textContent = message;
  };

  const enhance = (panel) => {
    panel.querySelector("[data-drop-hint]")?.removeAttribute("hidden");
  };

  // The server answers an upload with the panel as it is now.
  const replacePanel = (html) => {
    const template = document.createElement("template");
    template.innerHTML = html;
    const fresh = template.content.querySelector(PANEL);
    const panel = document.querySelector(PANEL);
    if (!fresh || !panel) return;
    panel.replaceWith(fresh);
    enhance(fresh);
  };

  // Uploads one file as `name`; returns what the server attached, or throws its reason.
  const upload = async (file, name) => {
    const form = uploadForm();
    const data = new FormData();
    data.append("csrfmiddlewaretoken", form.elements.namedItem("csrfmiddlewaretoken").value);
    data.append("next", form.elements.namedItem("next").value);
    data.append("file", file, name);
    let response;
    try {
      // A redirect means the session ended (to the login page): not an upload.
      response = await fetch(form.action, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        redirect: "error",
        headers: { Accept: "application/json" },
      });
    } catch {
      throw new Error("the server could not be reached (or the session ended).");
    }
    const answer = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Error(answer?.errors?.file?.join(" ") ?? `the server answered ${response.status}.`);
    }
    replacePanel(answer.panel);
    return answer.attachments[0];
  };

  // Uploads each file in turn; `placed(attachment)` is told of each one attached.
  const uploadAll = async (files, nameOf, placed) => {
    const done = [];
    const refused = [];
    for (const [index, file] of files.entries()) {
      const name = nameOf(file, index);
      say(`Uploading ${name}…`);
      try {
        const attached = await upload(file, name);
        done.push(attached.name);
        placed?.(attached);
      } catch (error) {
        refused.push(`${name} was not attached: ${error.message}`);
      }
    }
    say([done.length ? `Attached ${done.join(", ")}.` : "", ...refused].join(" ").trim());
  };
  const ownName = (file) => file.name;

  const hasFiles = (event) => event.dataTransfer?.types.includes("Files");

  // The panel: drop files on it, or choose them and press Upload.
  enhance(document.querySelector(PANEL));
  document.addEventListener("dragover", (event) => {
    const panel = event.target.closest?.(PANEL);
    if (!panel || !hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    panel.classList.add("dropping");
  });
  document.addEventListener("dragleave", (event) => {
    const panel = event.target.closest?.(PANEL);
    if (panel && !panel.contains(event.relatedTarget)) panel.classList.remove("dropping");
  });
  document.addEventListener("drop", (event) => {
    const panel = event.target.closest?.(PANEL);
    if (!panel || !hasFiles(event)) return;
    event.preventDefault();
    panel.classList.remove("dropping");
    uploadAll([...event.dataTransfer.files], ownName);
  });
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.matches("form[data-attachment-upload]")) return;
    const chosen = [...form.elements.namedItem("file").files];
    if (!chosen.length) return; // the browser says a file is required
    event.preventDefault();
    uploadAll(chosen, ownName);
  });

  // The editor: paste or drop into the body.
  const body = document.querySelector("form[data-edit-form]")?.elements.namedItem("body");
  if (!body) return;
  const insert = (attached) => {
    const start = body.selectionStart;
    const text = (start > 0 && !/\s$/.test(body.value.slice(0, start)) ? " " : "") + attached.markdown;
    body.setRangeText(text, start, body.selectionEnd, "end");
    body.dispatchEvent(new Event("input", { bubbles: true })); // the live preview follows
  };
  // A pasted image has no name of its own ("image.png" each time, which would replace the
  // last one): a name from the time; the server adds the extension of its type.
  const stamp = () => new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
  const pastedName = (file, index) => `pasted-${stamp()}${index ? `-${index + 1}` : ""}`;
  body.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files ?? [])];
    if (!files.length) return; // text is pasted as usual
    event.preventDefault();
    uploadAll(files, pastedName, insert);
  });
  body.addEventListener("dragover", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  body.addEventListener("drop", (event) => {
    const files = [...(event.dataTransfer?.files ?? [])];
    if (!files.length) return;
    event.preventDefault();
    body.focus();
    uploadAll(files, ownName, insert);
  });
})();

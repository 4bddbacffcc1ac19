// Moves the progress bar of each export being built, and reloads the page once one ends
// (to show its Download button). Without JavaScript, reloading the page does the same.
"use strict";
(function () {
  const rows = document.querySelectorAll("tr[data-export-status]");
  if (!rows.length) return;
  const poll = async () => {
    let ended = false;
    for (const row of rows) {
      const response = await fetch(row.dataset.exportStatus, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) continue;
      const job = await response.json();
      row.querySelector("progress").value = job.progress;
      row.querySelector("[data-export-label]").textContent = `${job.status} ${job.progress}%`;
      if (job.status === "done" || job.status === "failed") ended = true;
    }
    if (ended) window.location.reload();
    else window.setTimeout(poll, 1000);
  };
  window.setTimeout(poll, 500);
})();

// While a sync is queued or running, reads this page again every two seconds and swaps in
// its state (the progress bar, then the report once it ends). Without JavaScript,
// reloading the page does the same.
"use strict";
(function () {
  const poll = async () => {
    const state = document.getElementById("sync-state-card");
    if (!state || !state.hasAttribute("data-sync-active")) return;
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (response.ok) {
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("sync-state-card");
      if (fresh) state.replaceWith(fresh);
    }
    window.setTimeout(poll, 2000);
  };
  window.setTimeout(poll, 2000);
})();

// The operator page's only script: while a page has parts marked data-live, it fetches the same
// address every few seconds and swaps each such part (found by its id) for its fresh copy. A part
// that comes back without data-live (a job that finished) stops the refresh.
"use strict";
(function () {
  const INTERVAL_MS = 2000;

  async function refresh() {
    const live = document.querySelectorAll("[data-live][id]");
    if (live.length === 0) {
      return;
    }
    if (!document.hidden) {
      try {
        const answer = await fetch(window.location.href, {
          credentials: "same-origin",
          headers: { Accept: "text/html" },
        });
        if (answer.ok) {
          const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
          for (const part of live) {
            const replacement = fresh.getElementById(part.id);
            if (replacement) {
              part.replaceWith(document.importNode(replacement, true));
            }
          }
        }
      } catch (error) {
        // the API restarting, or the network: try again at the next tick
      }
    }
    window.setTimeout(refresh, INTERVAL_MS);
  }

  window.setTimeout(refresh, INTERVAL_MS);
})();

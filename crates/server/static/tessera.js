// Copies the recovery codes to the clipboard. The page works without it (the codes are
// on screen and the Download link needs no script); served from this origin because the
// Content-Security-Policy allows no inline script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-copy-target]")) {
    const list = document.getElementById(button.dataset.copyTarget);
    const status = document.getElementById("copy-status");
    if (!list || !navigator.clipboard) {
      button.hidden = true;
      continue;
    }
    button.addEventListener("click", async () => {
      const text = [...list.querySelectorAll("code")].map((c) => c.textContent).join("\n");
      try {
        await navigator.clipboard.writeText(text + "\n");
        if (status) status.textContent = "Copied.";
      } catch {
        if (status) status.textContent = "Copying failed; select the codes and copy them.";
      }
    });
  }
});

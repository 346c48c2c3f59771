// Progressive enhancement only: every page works without JavaScript.
document.addEventListener("click", (event) => {
  const dismiss = event.target.closest(".flash-dismiss");
  if (dismiss) {
    dismiss.parentElement.remove();
    return;
  }
  // Live preview: the server renders the Markdown exactly as it will store it.
  const preview = event.target.closest("#preview-button");
  if (preview) {
    event.preventDefault();
    const form = document.getElementById("editor");
    const body = new URLSearchParams();
    body.set("content", form.elements.content.value);
    body.set("csrf_token", form.elements.csrf_token.value);
    fetch("/preview", { method: "POST", body, credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => {
        document.getElementById("preview-body").innerHTML = html;
        document.getElementById("preview").hidden = false;
      })
      .catch(() => form.requestSubmit(preview));
  }
});

// Destructive admin actions ask first (the server still decides; without JavaScript they just run).
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

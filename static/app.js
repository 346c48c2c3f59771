// Progressive enhancement only: every page works without JavaScript.

// The menu is open on wide screens (where its toggle is hidden), for browsers that cannot show
// a closed <details>' content through CSS.
const wide = window.matchMedia("(min-width: 760px)");
const menu = document.querySelector(".nav-menu");
const placeMenu = () => { if (menu && wide.matches) menu.open = true; };
placeMenu();
wide.addEventListener("change", placeMenu);

// The first field with an error gets the focus, so one can fix it at once.
const invalid = document.querySelector("[aria-invalid=true]");
if (invalid) {
  if (invalid.matches("fieldset")) {
    const first = invalid.querySelector("input:not([type=hidden])");
    if (first) first.focus();
  } else {
    invalid.focus();
  }
}

document.addEventListener("click", (event) => {
  const dismiss = event.target.closest(".flash-dismiss");
  if (dismiss) {
    dismiss.parentElement.remove();
    return;
  }
  const preview = event.target.closest("#preview-button");
  if (preview) {
    event.preventDefault();
    showPreview(preview.form).catch(() => { unsaved.delete(preview.form); preview.form.requestSubmit(preview); });
    return;
  }
  const tool = event.target.closest(".toolbar button[data-md]");
  if (tool) {
    const textarea = tool.closest("form").elements.content;
    insertMarkdown(textarea, tool.dataset.md);
  }
});

// Live preview: the server renders the Markdown exactly as it will store and show it.
function showPreview(form) {
  const body = new URLSearchParams();
  body.set("content", form.elements.content.value);
  body.set("csrf_token", form.elements.csrf_token.value);
  body.set("title", form.elements.title ? form.elements.title.value : form.dataset.title || "");
  return fetch("/preview", { method: "POST", body, credentials: "same-origin" })
    .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
    .then((html) => {
      document.getElementById("preview-body").innerHTML = html;
      delete document.getElementById("preview").dataset.empty;
    });
}

// Beside the text (wide screens), the preview follows the typing, a moment after it stops.
const sideBySide = window.matchMedia("(min-width: 1100px)");
let previewTimer = null;
document.addEventListener("input", (event) => {
  const form = event.target.closest && event.target.closest("form#editor");
  if (!form || event.target.name !== "content" || !sideBySide.matches) return;
  clearTimeout(previewTimer);
  previewTimer = setTimeout(() => showPreview(form).catch(() => {}), 700);
});

// What each toolbar button wraps the selection in (or inserts).
const MARKS = {
  bold: ["**", "**", "bold text"],
  italic: ["*", "*", "italic text"],
  heading: ["\n## ", "\n", "Heading"],
  link: ["[", "](https://)", "link text"],
  wikilink: ["[[", "]]", "Page title"],
  list: ["\n- ", "\n", "item"],
  code: ["`", "`", "code"],
  table: ["\n| Column | Column |\n|--------|--------|\n| ", " | |\n", "cell"],
};

function insertMarkdown(textarea, kind) {
  const [before, after, placeholder] = MARKS[kind];
  const { selectionStart: start, selectionEnd: end, value } = textarea;
  let selected = value.slice(start, end);
  let open = before;
  if (kind === "code" && selected.includes("\n")) {
    open = "\n```\n";
    selected = selected.replace(/\n?$/, "\n");
  }
  const close = kind === "code" && open !== before ? "```\n" : after;
  const text = selected || placeholder;
  // At the start of the text, a block mark needs no leading line break.
  if (start === 0 || value[start - 1] === "\n") open = open.replace(/^\n/, "");
  textarea.focus();
  textarea.setRangeText(open + text + close, start, end, "end");
  textarea.setSelectionRange(start + open.length, start + open.length + text.length);
  textarea.dispatchEvent(new Event("input", { bubbles: true }));
}

// The toolbar needs script: it is shown only when there is some.
for (const bar of document.querySelectorAll(".toolbar")) bar.hidden = false;

// Unsaved changes: leaving an editor that holds them asks first.
const unsaved = new Set();
for (const form of document.querySelectorAll("form#editor, form#conflict-form")) {
  if (form.dataset.unsaved) unsaved.add(form);
  form.addEventListener("input", () => unsaved.add(form));
  form.addEventListener("change", () => unsaved.add(form));
}
window.addEventListener("beforeunload", (event) => {
  if (unsaved.size > 0) {
    event.preventDefault();
    event.returnValue = "";
  }
});

document.addEventListener("keydown", (event) => {
  const form = event.target.closest && event.target.closest("form#editor, form#conflict-form");
  if (!form || !(event.ctrlKey || event.metaKey) || event.altKey) return;
  const key = event.key.toLowerCase();
  if (key === "s") {
    // Ctrl/Cmd+S saves the page, not the HTML of the browser's tab.
    event.preventDefault();
    form.requestSubmit(form.querySelector("button.btn-primary"));
  } else if ((key === "b" || key === "i") && event.target.name === "content") {
    event.preventDefault();
    insertMarkdown(event.target, key === "b" ? "bold" : "italic");
  }
});

document.addEventListener("submit", (event) => {
  // Destructive admin actions ask first (the server still decides; without JavaScript they just run).
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) {
    event.preventDefault();
    return;
  }
  // Saving (or previewing through the server) is leaving on purpose.
  unsaved.delete(event.target);
});

// Files in the editor: dropped, pasted or picked files are uploaded to the page (one at a time,
// with a progress bar) and their Markdown inserted at the cursor. Without script the page's
// Files screen does the same with a plain form.
const attachBar = document.querySelector(".attach-bar[data-attachments]");
if (attachBar) {
  attachBar.hidden = false;
  const editorForm = attachBar.closest("form");
  const textarea = editorForm.elements.content;
  const progress = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const queue = [];
  let busy = false;

  const upload = (file) => new Promise((done) => {
    const body = new FormData();
    body.append("csrf_token", editorForm.elements.csrf_token.value);
    body.append("file", file, file.name);
    const request = new XMLHttpRequest();
    request.open("POST", attachBar.dataset.attachments);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) progress.value = Math.round((event.loaded / event.total) * 100);
    });
    request.addEventListener("load", () => {
      let answer = null;
      try { answer = JSON.parse(request.responseText); } catch (_) { answer = null; }
      if (request.status === 200 && answer && answer.markdown) {
        insertAtCursor(textarea, answer.markdown);
        status.textContent = `Uploaded ${answer.name}.`;
      } else {
        // The error page says why (too large, not allowed, the form expired).
        const page = new DOMParser().parseFromString(request.responseText || "", "text/html");
        const why = page.querySelector("main p");
        status.textContent = `${file.name} was not uploaded: ${why ? why.textContent.trim() : `the server answered ${request.status}`}`;
      }
      done();
    });
    request.addEventListener("error", () => { status.textContent = `${file.name} was not uploaded: the connection failed.`; done(); });
    request.send(body);
  });

  const next = async () => {
    if (busy) return;
    busy = true;
    while (queue.length > 0) {
      const file = queue.shift();
      progress.value = 0;
      progress.hidden = false;
      status.textContent = `Uploading ${file.name}…`;
      await upload(file);
    }
    progress.hidden = true;
    busy = false;
  };

  const add = (files) => {
    for (const file of files) {
      // A pasted screenshot is called "image.png": give it a name of its own.
      let named = file;
      if (/^image\.(png|jpe?g|gif|webp)$/i.test(file.name)) {
        const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
        named = new File([file], `pasted-${stamp}-${queue.length + 1}.${file.name.split(".").pop()}`, { type: file.type });
      }
      queue.push(named);
    }
    next();
  };

  document.getElementById("attach-file").addEventListener("change", (event) => {
    add([...event.target.files]);
    event.target.value = "";
  });
  textarea.addEventListener("dragover", (event) => {
    if (event.dataTransfer && [...event.dataTransfer.types].includes("Files")) event.preventDefault();
  });
  textarea.addEventListener("drop", (event) => {
    if (!event.dataTransfer || event.dataTransfer.files.length === 0) return;
    event.preventDefault();
    textarea.focus();
    add([...event.dataTransfer.files]);
  });
  textarea.addEventListener("paste", (event) => {
    const files = event.clipboardData ? [...event.clipboardData.files] : [];
    if (files.length === 0) return;
    event.preventDefault();
    add(files);
  });
}

function insertAtCursor(textarea, text) {
  const { selectionStart: start, selectionEnd: end, value } = textarea;
  const before = start > 0 && value[start - 1] !== "\n" ? "\n" : "";
  textarea.focus();
  textarea.setRangeText(`${before}${text}\n`, start, end, "end");
  textarea.dispatchEvent(new Event("input", { bubbles: true }));
}

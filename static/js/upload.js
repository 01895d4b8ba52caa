// Show byte progress while an upload form sends its files, then follow the server's answer.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-upload-progress]");
  if (!form) return;
  const bar = document.getElementById("upload-progress");
  const label = document.getElementById("upload-progress-label");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.href);
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const pct = Math.round((100 * e.loaded) / e.total);
      bar.hidden = false;
      bar.firstElementChild.style.width = pct + "%";
      label.textContent = `Sending ${(e.loaded / 1e6).toFixed(1)} of ${(e.total / 1e6).toFixed(1)} MB (${pct}%)`;
    });
    xhr.addEventListener("load", () => {
      if (xhr.responseURL && xhr.responseURL !== window.location.href) {
        window.location.assign(xhr.responseURL);
      } else {
        document.open();
        document.write(xhr.responseText);
        document.close();
      }
    });
    xhr.addEventListener("error", () => {
      label.textContent = "The upload was interrupted; nothing was kept. Check your connection and try again.";
    });
    form.querySelector("button[type=submit]").disabled = true;
    label.textContent = "Starting upload…";
    xhr.send(new FormData(form));
  });
});

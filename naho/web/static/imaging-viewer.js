// The imaging viewer: one frame of a series at a time, fetched from naho (never from the PACS).
// The mouse wheel, the arrow keys (Page Up/Down, Home, End too) and the slider scroll through the
// series; the window buttons change the grey levels without leaving the page. Without script the
// links of the page do the same, one page per frame.
"use strict";

(() => {
  const viewer = document.getElementById("viewer");
  if (!viewer) return;
  const image = document.getElementById("frame-image");
  const slider = document.getElementById("frame-slider");
  const position = document.getElementById("frame-position");
  const frames = JSON.parse(viewer.dataset.frames || "[]");
  const base = viewer.dataset.images;
  let windowCode = viewer.dataset.window || "";
  let index = Number(slider.value) - 1;
  if (!frames.length) return;

  const source = (i) => {
    const [instance, frame] = frames[i];
    const query = windowCode ? "?fenetre=" + encodeURIComponent(windowCode) : "";
    return base + "/" + encodeURIComponent(instance) + "/" + frame + query;
  };

  const show = (i) => {
    index = Math.min(Math.max(i, 0), frames.length - 1);
    image.src = source(index);
    image.alt = image.alt.replace(/\d+ \/ \d+$/, (index + 1) + " / " + frames.length);
    slider.value = String(index + 1);
    position.textContent = (index + 1) + " / " + frames.length;
    // The next frames, fetched ahead so scrolling does not wait (the browser keeps them a while).
    for (const ahead of [index + 1, index + 2]) {
      if (ahead < frames.length) new Image().src = source(ahead);
    }
  };

  slider.addEventListener("input", () => show(Number(slider.value) - 1));
  image.addEventListener("wheel", (event) => {
    event.preventDefault();
    show(index + (event.deltaY > 0 ? 1 : -1));
  }, { passive: false });
  const keys = { ArrowDown: 1, ArrowRight: 1, PageDown: 5, ArrowUp: -1, ArrowLeft: -1, PageUp: -5 };
  image.addEventListener("keydown", (event) => {
    if (event.key in keys) show(index + keys[event.key]);
    else if (event.key === "Home") show(0);
    else if (event.key === "End") show(frames.length - 1);
    else return;
    event.preventDefault();
  });
  for (const button of viewer.querySelectorAll("[data-window-preset]")) {
    button.addEventListener("click", (event) => {
      event.preventDefault();
      windowCode = button.dataset.windowPreset;
      for (const other of viewer.querySelectorAll("[data-window-preset]")) {
        other.classList.toggle("current", other === button);
        other.setAttribute("aria-pressed", String(other === button));
      }
      show(index);
    });
  }
  for (const step of document.querySelectorAll("#frame-previous, #frame-next")) step.hidden = true;
})();

/* The annotation canvas (Konva): zoom and pan, overlays, smart masks (Segment Anything or
 * GrabCut), boxes, polygons, brush and eraser, tags, undo/redo, review.
 *
 * Every edit is saved at once through the annotation API as a draft (autosave); writes go
 * out one after another, so "Submit and next" waits for them. Each saved annotation carries
 * the version it was loaded at: if someone else changed it meanwhile the API answers 409,
 * and the canvas reloads their version instead of overwriting it. */
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("annotator-config").textContent);
  const RLE = window.StudioRLE;
  const W = cfg.image.width, H = cfg.image.height;
  const csrf = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
  // cfg.classes: the classes this canvas offers; other_classes only draw others' work
  // (a queue limited to some classes offers only those).
  const classes = new Map(cfg.classes.concat(cfg.other_classes || []).map((c) => [c.id, c]));
  const review = cfg.mode === "review";
  const $ = (id) => document.getElementById(id);

  const state = {
    tool: "select",
    classId: (cfg.classes.find((c) => c.kind !== "tag") || cfg.classes[0] || {}).id,
    anns: new Map(), // id → annotation as the API returns it
    bits: new Map(), // id → decoded mask (row-major Uint8Array), for masks
    selected: null,
    opacity: 0.45,
    brush: 16, // screen pixels
    undo: [],
    redo: [],
    smart: null, // {clicks: [{x, y, positive}] in order, box, annId, done: clicks annId holds}
    poly: null, // [x, y, ...] while drawing
    spacePan: false,
    rejecting: new Map(), // annotation id → the reject comment being typed
    generation: 0, // bumped by every reload
    failed: false, // the last save was refused or never reached the server
  };

  /* ---------------------------------------------------------------- API */
  let chain = Promise.resolve();
  let pending = 0;

  function setSave(text, cls) {
    const el = $("save-state");
    el.textContent = text;
    el.className = cls;
  }

  /* One write at a time, in order. ``url`` and ``body`` may be functions: they are read when
   * the request is sent, so a change queued behind another carries the version that the
   * earlier one produced, not the one current when it was queued. */
  function request(method, url, body) {
    pending += 1;
    setSave("Saving…", "saving");
    const run = async () => {
      const target = typeof url === "function" ? url() : url;
      const payload = typeof body === "function" ? body() : body;
      if (target === null || payload === null) return { ok: false, status: 0, data: null, skipped: true };
      const res = await fetch(target, {
        method,
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
        body: payload === undefined ? undefined : JSON.stringify(payload),
        credentials: "same-origin",
      });
      let data = null;
      if (res.status !== 204) data = await res.json().catch(() => null);
      return { ok: res.ok, status: res.status, data };
    };
    const result = chain.then(run, run);
    // The next queued request starts only after this answer's callers have applied it
    // (patch() upserts the new version once its await resumes): a macrotask boundary comes
    // after all those microtasks, so a queued body function reads the fresh version.
    chain = result.catch(() => {}).then(() => new Promise((resolve) => setTimeout(resolve, 0)));
    return result.then(
      (r) => {
        pending -= 1;
        if (r.skipped) {
          if (pending === 0 && !state.failed) setSave("Saved", "saved");
        } else if (r.status === 409) {
          setSave("Changed by someone else: reloaded", "error");
          notify("Someone else changed this annotation since you loaded it. You now see their version; apply your edit again.");
          reload();
        } else if (!r.ok) {
          state.failed = true;
          setSave("Not saved", "error");
          notify(errorMessage(r));
          renderAll(); // show what the server has, not the edit it refused
        } else {
          if (method !== "GET") state.failed = false;
          if (pending === 0) setSave("Saved", "saved");
        }
        return r;
      },
      (err) => {
        pending -= 1;
        state.failed = true;
        renderAll();
        setSave("Offline: not saved", "error");
        notify("The server did not answer: " + err.message);
        return { ok: false, status: 0, data: null };
      }
    );
  }

  function errorMessage(r) {
    const d = r.data || {};
    const message = (d.error && d.error.message) || d.detail || d.message;
    return typeof message === "string" ? message : "Could not save (" + r.status + ").";
  }

  function notify(text) {
    $("tool-hint").textContent = text;
    $("tool-hint").classList.add("warn");
  }
  function hint(text) {
    $("tool-hint").textContent = text;
    $("tool-hint").classList.remove("warn");
  }

  /* Reload what the server has. Undo history is dropped: its steps were made against
   * versions that are gone, and replaying them would overwrite someone else's work. */
  async function reload() {
    const load = () => fetch(cfg.api.list || cfg.api.annotations, { credentials: "same-origin" });
    const r = await (chain = chain.then(load, load));
    chain = chain.catch(() => {});
    if (!r.ok) return notify("Could not reload the annotations (" + r.status + ").");
    const rows = await r.json();
    state.undo.length = 0;
    state.redo.length = 0;
    state.generation += 1;
    state.anns.clear();
    state.bits.clear();
    for (const a of rows) state.anns.set(a.id, a);
    if (state.selected && !state.anns.has(state.selected)) state.selected = null;
    renderAll();
  }

  function upsert(a) {
    state.bits.delete(a.id);
    if (a.deleted) state.anns.delete(a.id);
    else state.anns.set(a.id, a);
    if (state.selected === a.id && a.deleted) state.selected = null;
    renderAll();
  }

  async function create(classId, geometry, extra) {
    const r = await request("POST", cfg.api.annotations, Object.assign({ label_class: classId, geometry }, extra || {}));
    if (r.ok) upsert(r.data);
    return r;
  }

  async function patch(id, changes) {
    if (!state.anns.has(id)) return { ok: false };
    const body = () => (state.anns.has(id) ? Object.assign({ version: state.anns.get(id).version }, changes) : null);
    const r = await request("PATCH", cfg.api.annotation + id + "/", body);
    if (r.ok) upsert(r.data);
    return r;
  }

  async function remove(id) {
    if (!state.anns.has(id)) return { ok: false };
    const url = () => (state.anns.has(id) ? cfg.api.annotation + id + "/?version=" + state.anns.get(id).version : null);
    const r = await request("DELETE", url);
    if (r.ok) upsert(r.data);
    return r;
  }

  async function restoreLive(id) {
    const h = await request("GET", cfg.api.annotation + id + "/history/");
    if (!h.ok) return h;
    const live = h.data.filter((rev) => rev.after && !rev.after.deleted).pop();
    if (!live) return { ok: false };
    const r = await request("POST", cfg.api.annotation + id + "/history/" + live.id + "/restore/");
    if (r.ok) upsert(r.data);
    return r;
  }

  /* ---------------------------------------------------------------- undo / redo */
  function editable(a) {
    return { label_class: a.label_class, geometry: a.geometry, attributes: a.attributes };
  }
  function record(op) {
    state.undo.push(op);
    state.redo.length = 0;
  }
  async function apply(op, backwards) {
    if (op.t === "group") {
      const ops = backwards ? op.ops.slice().reverse() : op.ops;
      for (const o of ops) if (!(await apply(o, backwards))) return false;
      return true;
    }
    let r;
    if (op.t === "create") r = await (backwards ? remove(op.id) : restoreLive(op.id));
    else if (op.t === "delete") r = await (backwards ? restoreLive(op.id) : remove(op.id));
    else r = await patch(op.id, backwards ? op.before : op.after);
    return !!(r && r.ok);
  }
  /* Undo and redo steps run one after another (a second Ctrl+Z waits for the first); a
   * step moves to the other stack only once it is saved. */
  let steps = Promise.resolve();
  async function step(from, to, backwards, done) {
    const op = from.pop();
    if (!op) return hint(backwards ? "Nothing to undo." : "Nothing to redo.");
    const generation = state.generation;
    const ok = await apply(op, backwards);
    if (generation !== state.generation) return; // a reload dropped the history meanwhile
    if (ok) {
      to.push(op);
      hint(done);
    } else {
      from.push(op);
    }
  }
  function queueStep(...args) {
    steps = steps.then(() => step(...args)).catch(() => {});
    return steps;
  }
  const undo = () => queueStep(state.undo, state.redo, true, "Undone.");
  const redo = () => queueStep(state.redo, state.undo, false, "Redone.");
  async function update(id, changes) {
    const before = editable(state.anns.get(id));
    const r = await patch(id, changes);
    if (r.ok) record({ t: "update", id, before, after: editable(r.data) });
    return r;
  }

  /* ---------------------------------------------------------------- stage */
  const container = $("stage");
  const stage = new Konva.Stage({ container: "stage", width: container.clientWidth, height: container.clientHeight });
  const world = new Konva.Layer();
  stage.add(world);
  const imageNode = new Konva.Image({ x: 0, y: 0, width: W, height: H, listening: false });
  const annGroup = new Konva.Group({ listening: true });
  const uiGroup = new Konva.Group();
  const paintGroup = new Konva.Group({ listening: false }); // a stroke in progress; redraws leave it
  const transformer = new Konva.Transformer({ rotateEnabled: false, keepRatio: false, ignoreStroke: true, flipEnabled: false });
  world.add(imageNode, annGroup, paintGroup, uiGroup, transformer);
  stage.on("dragend transformend", () => {
    if (renderWhenIdle) renderAll();
  });
  const photo = new window.Image();
  photo.onload = () => {
    imageNode.image(photo);
    fit();
  };
  photo.src = cfg.image.url;

  function scale() {
    return world.scaleX();
  }
  function fit() {
    const s = Math.min(stage.width() / W, stage.height() / H) * 0.98;
    world.scale({ x: s, y: s });
    world.position({ x: (stage.width() - W * s) / 2, y: (stage.height() - H * s) / 2 });
    renderAll();
  }
  function pointer() {
    const p = world.getRelativePointerPosition();
    return { x: Math.min(W, Math.max(0, p.x)), y: Math.min(H, Math.max(0, p.y)) };
  }
  stage.on("wheel", (e) => {
    e.evt.preventDefault();
    const old = scale();
    const p = stage.getPointerPosition();
    const at = { x: (p.x - world.x()) / old, y: (p.y - world.y()) / old };
    const s = Math.min(40, Math.max(0.05, old * (e.evt.deltaY > 0 ? 1 / 1.15 : 1.15)));
    world.scale({ x: s, y: s });
    world.position({ x: p.x - at.x * s, y: p.y - at.y * s });
    renderAll();
  });
  window.addEventListener("resize", () => {
    stage.size({ width: container.clientWidth, height: container.clientHeight });
  });
  container.addEventListener("contextmenu", (e) => e.preventDefault());

  /* ---------------------------------------------------------------- drawing */
  function rgb(hex) {
    const n = parseInt(hex.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }
  function rgba(hex, alpha) {
    const [r, g, b] = rgb(hex);
    return "rgba(" + r + "," + g + "," + b + "," + alpha + ")";
  }
  /* A mask decoded once, cropped to its box: {box, bits (row-major, box-sized), canvas}. */
  function maskOf(a) {
    const c = classes.get(a.label_class);
    const colour = c ? c.colour : "#999999";
    let m = state.bits.get(a.id);
    if (m && m.colour === colour) return m;
    const full = RLE.decode(a.geometry);
    const [bx, by, bw, bh] = a.bbox.map((v) => Math.round(v));
    const bits = new Uint8Array(Math.max(1, bw * bh));
    for (let y = 0; y < bh; y++) bits.set(full.subarray((by + y) * W + bx, (by + y) * W + bx + bw), y * bw);
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, bw);
    canvas.height = Math.max(1, bh);
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(canvas.width, canvas.height);
    const [r, g, b] = rgb(colour);
    for (let i = 0; i < bits.length; i++) {
      if (bits[i]) {
        img.data[i * 4] = r;
        img.data[i * 4 + 1] = g;
        img.data[i * 4 + 2] = b;
        img.data[i * 4 + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    m = { box: [bx, by, bw, bh], bits, canvas, colour };
    state.bits.set(a.id, m);
    return m;
  }
  function machine(a) {
    return a.source !== "human";
  }

  // A save's answer can land while the user is dragging or resizing a shape (a slow
  // network): redrawing then would destroy the node under the pointer and lose the gesture.
  // Wait for the gesture to end; its own dragend/transformend handlers save it first.
  let renderWhenIdle = false;
  function renderAll() {
    if (Konva.isDragging() || Konva.isTransforming()) {
      renderWhenIdle = true;
      return;
    }
    renderWhenIdle = false;
    annGroup.destroyChildren();
    transformer.nodes([]);
    const s = scale();
    const ordered = Array.from(state.anns.values()).sort((p, q) => q.area - p.area); // small on top
    for (const a of ordered) {
      const c = classes.get(a.label_class);
      if (!c || a.kind === "tag" || a.id === state.painting) continue;
      const selected = state.selected === a.id;
      const stroke = { stroke: c.colour, strokeWidth: selected ? 3 : 1.5, strokeScaleEnabled: false, dash: machine(a) && a.status === "draft" ? [6, 4] : null };
      if (a.kind === "mask") {
        const { box, canvas } = maskOf(a);
        annGroup.add(new Konva.Image({ x: box[0], y: box[1], image: canvas, opacity: selected ? Math.min(0.9, state.opacity + 0.2) : state.opacity, listening: false }));
        if (selected) annGroup.add(new Konva.Rect(Object.assign({ x: box[0], y: box[1], width: box[2], height: box[3], listening: false, dash: [4, 4] }, stroke)));
      } else if (a.kind === "polygon") {
        for (const part of polygonParts(a)) annGroup.add(new Konva.Line(Object.assign({ points: part, closed: true, fill: rgba(c.colour, state.opacity), listening: false }, stroke)));
        if (selected && state.tool === "select" && !multiPart(a)) vertexHandles(a, s);
      } else if (a.kind === "box") {
        const [x, y, w, h] = a.geometry;
        const rect = new Konva.Rect(Object.assign({ x, y, width: w, height: h, fill: rgba(c.colour, state.opacity * 0.5), draggable: selected && state.tool === "select" }, stroke));
        annGroup.add(rect);
        if (selected && state.tool === "select") {
          transformer.nodes([rect]);
          const save = () => {
            const g = [rect.x(), rect.y(), rect.width() * rect.scaleX(), rect.height() * rect.scaleY()];
            const x0 = Math.max(0, g[0]), y0 = Math.max(0, g[1]);
            const box = [x0, y0, Math.min(W, g[0] + g[2]) - x0, Math.min(H, g[1] + g[3]) - y0].map((v) => Math.round(v * 10) / 10);
            update(a.id, { geometry: box });
          };
          rect.on("transformend", save);
          rect.on("dragend", save);
        }
      }
    }
    renderUi();
    renderList();
    $("zoom").textContent = Math.round(s * 100) + "%";
  }

  window.addEventListener("mouseup", (e) => {
    if (container.contains(e.target)) return; // the stage's own handler has it
    if (paint) endPaint();
    if (drag) {
      if (drag.rect) drag.rect.destroy();
      drag = null;
      renderUi();
    }
  });

  /* A polygon's parts: one flat vertex list, or several for a multi-part polygon (drawn and
   * hit as a whole; its vertices are edited in the file it came from, not here). */
  function multiPart(a) { return Array.isArray(a.geometry[0]); }
  function polygonParts(a) { return multiPart(a) ? a.geometry : [a.geometry]; }

  function vertexHandles(a, s) {
    const pts = a.geometry.slice();
    const line = annGroup.getChildren().at(-1);
    for (let i = 0; i < pts.length; i += 2) {
      const handle = new Konva.Circle({ x: pts[i], y: pts[i + 1], radius: 5 / s, fill: "#fff", stroke: "#111", strokeWidth: 1, strokeScaleEnabled: false, draggable: true, name: "vertex" });
      handle.on("dragmove", () => {
        pts[i] = Math.min(W, Math.max(0, handle.x()));
        pts[i + 1] = Math.min(H, Math.max(0, handle.y()));
        handle.position({ x: pts[i], y: pts[i + 1] });
        line.points(pts);
      });
      handle.on("dragend", () => update(a.id, { geometry: pts.map((v) => Math.round(v * 10) / 10) }));
      handle.on("dblclick", (e) => {
        e.cancelBubble = true;
        if (pts.length <= 6) return hint("A polygon keeps at least 3 vertices; delete the polygon instead.");
        const next = pts.slice();
        next.splice(i, 2);
        update(a.id, { geometry: next });
      });
      annGroup.add(handle);
    }
  }

  function renderUi() {
    uiGroup.destroyChildren();
    const s = scale();
    if (state.smart) {
      if (state.smart.box) {
        const [x, y, w, h] = state.smart.box;
        uiGroup.add(new Konva.Rect({ x, y, width: w, height: h, stroke: "#f59e0b", strokeWidth: 2, strokeScaleEnabled: false, dash: [6, 4], listening: false }));
      }
      for (const { x, y, positive } of state.smart.clicks) uiGroup.add(new Konva.Circle({ x, y, radius: 5 / s, fill: positive ? "#16a34a" : "#dc2626", stroke: "#fff", strokeWidth: 1.5, strokeScaleEnabled: false, listening: false }));
    }
    if (state.poly && state.poly.length) {
      const c = classes.get(state.classId);
      uiGroup.add(new Konva.Line({ points: state.poly, stroke: c ? c.colour : "#111", strokeWidth: 2, strokeScaleEnabled: false, listening: false }));
      for (let i = 0; i < state.poly.length; i += 2) uiGroup.add(new Konva.Circle({ x: state.poly[i], y: state.poly[i + 1], radius: (i === 0 ? 6 : 4) / s, fill: i === 0 ? "#fff" : c.colour, stroke: "#111", strokeWidth: 1, strokeScaleEnabled: false, listening: false }));
    }
  }

  /* ---------------------------------------------------------------- side panel */
  function renderClasses() {
    const list = $("classes");
    list.innerHTML = "";
    cfg.classes.forEach((c, n) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "class-pick" + (state.classId === c.id ? " active" : "");
      button.dataset.classId = c.id;
      button.innerHTML = '<span class="swatch"></span><span class="name"></span><span class="muted small kind"></span><kbd></kbd>';
      button.querySelector(".swatch").style.background = c.colour;
      button.querySelector(".name").textContent = c.name;
      button.querySelector(".kind").textContent = c.kind;
      button.querySelector("kbd").textContent = n < 9 ? String(n + 1) : "";
      button.addEventListener("click", () => pickClass(c.id));
      li.appendChild(button);
      list.appendChild(li);
    });
    const tags = cfg.classes.filter((c) => c.kind === "tag");
    $("tags-section").hidden = tags.length === 0;
  }

  function renderTags() {
    const box = $("tags");
    box.innerHTML = "";
    for (const c of cfg.classes.filter((k) => k.kind === "tag")) {
      const on = Array.from(state.anns.values()).find((a) => a.label_class === c.id);
      const chip = document.createElement("button");
      chip.type = "button";
      chip.className = "tag-chip" + (on ? " on" : "");
      chip.textContent = (on ? "✓ " : "+ ") + c.name;
      chip.style.borderColor = c.colour;
      chip.setAttribute("aria-pressed", on ? "true" : "false");
      chip.addEventListener("click", async () => {
        if (on) {
          const r = await remove(on.id);
          if (r.ok) record({ t: "delete", id: on.id });
        } else {
          const r = await create(c.id, null);
          if (r.ok) record({ t: "create", id: r.data.id });
        }
      });
      box.appendChild(chip);
    }
  }

  /* Who made an annotation: its author, and the machine source of a draft it came from. */
  function sourceName(a) {
    return (cfg.sources || {})[a.source] || a.source;
  }
  function authorLine(a) {
    const name = (cfg.people || {})[String(a.author)] || (a.author ? "a former member" : "nobody");
    if (a.source === "human") return "by " + name;
    return "by " + name + " · " + (a.source === "import" ? "imported" : sourceName(a) + " draft");
  }

  function renderList() {
    const list = $("annotations");
    list.innerHTML = "";
    const rows = Array.from(state.anns.values());
    $("count").textContent = rows.length ? "(" + rows.length + ")" : "";
    for (const a of rows) {
      const c = classes.get(a.label_class) || { name: "?", colour: "#999" };
      const li = document.createElement("li");
      li.className = "ann" + (state.selected === a.id ? " selected" : "");
      li.dataset.id = a.id;
      li.innerHTML = '<button type="button" class="pick"><span class="swatch"></span><span class="name"></span> <span class="muted small meta"></span><span class="small author"></span></button> <span class="badge"></span> <button type="button" class="del" title="Delete (Del)">×</button>';
      li.querySelector(".swatch").style.background = c.colour;
      li.querySelector(".name").textContent = (machine(a) ? "✦ " : "") + c.name;
      li.querySelector(".meta").textContent = a.kind + (a.source !== "human" && a.confidence != null ? " · score " + a.confidence.toFixed(2) : "");
      const by = li.querySelector(".author");
      by.textContent = authorLine(a);
      if (a.source_detail) by.title = a.source_detail;
      const badge = li.querySelector(".badge");
      badge.textContent = a.status;
      badge.classList.add(a.status);
      li.querySelector(".pick").addEventListener("click", () => select(a.id));
      li.querySelector(".del").addEventListener("click", () => deleteAnnotation(a.id));
      if (review && a.status === "submitted") {
        const actions = document.createElement("div");
        actions.className = "review-actions";
        actions.innerHTML = '<button type="button" class="btn accept">Accept</button> <button type="button" class="btn danger reject">Reject</button>';
        actions.querySelector(".accept").addEventListener("click", () => decide(a.id, "accept", ""));
        // The comment being typed survives redraws (state.rejecting holds it until sent).
        const askWhy = (focus) => {
          actions.innerHTML = '<input type="text" class="comment" placeholder="Why? (the author sees this)" aria-label="Reason for rejecting"> <button type="button" class="btn danger send">Reject</button>';
          const input = actions.querySelector(".comment");
          input.value = state.rejecting.get(a.id) || "";
          input.addEventListener("input", () => state.rejecting.set(a.id, input.value));
          if (focus) input.focus();
          const send = async () => {
            if (!input.value.trim()) return hint("Say why it is rejected, so its author can fix it.");
            const r = await decide(a.id, "reject", input.value.trim());
            if (r.ok) state.rejecting.delete(a.id);
          };
          actions.querySelector(".send").addEventListener("click", send);
          input.addEventListener("keydown", (e) => e.key === "Enter" && send());
        };
        actions.querySelector(".reject").addEventListener("click", () => {
          state.rejecting.set(a.id, state.rejecting.get(a.id) || "");
          askWhy(true);
        });
        if (state.rejecting.has(a.id)) askWhy(document.activeElement === document.body);
        li.appendChild(actions);
      }
      list.appendChild(li);
    }
    renderTags();
    renderSelected();
  }

  function renderSelected() {
    const section = $("selected");
    const a = state.anns.get(state.selected);
    section.hidden = !a;
    if (!a) return;
    const c = classes.get(a.label_class);
    const body = $("selected-body");
    body.innerHTML = "";
    const info = document.createElement("p");
    info.className = "muted small";
    info.textContent = a.kind + " · version " + a.version + " · " + a.status + " · area " + Math.round(a.area) + " px";
    body.appendChild(info);
    const sameKind = cfg.classes.filter((k) => k.kind === a.kind);
    if (sameKind.length > 1) {
      const label = document.createElement("label");
      label.textContent = "Class ";
      const select = document.createElement("select");
      for (const k of sameKind) select.add(new Option(k.name, k.id, false, k.id === a.label_class));
      select.addEventListener("change", () => update(a.id, { label_class: Number(select.value), attributes: {} }));
      label.appendChild(select);
      body.appendChild(label);
    }
    for (const [name, values] of Object.entries((c && c.attributes) || {})) {
      const label = document.createElement("label");
      label.textContent = name + " ";
      const select = document.createElement("select");
      select.add(new Option("—", ""));
      for (const v of values) select.add(new Option(v, v, false, a.attributes[name] === v));
      select.addEventListener("change", () => {
        const attributes = Object.assign({}, a.attributes);
        if (select.value) attributes[name] = select.value;
        else delete attributes[name];
        update(a.id, { attributes });
      });
      label.appendChild(select);
      body.appendChild(label);
    }
  }

  const deciding = new Set();
  async function decide(id, decision, comment) {
    if (deciding.has(id)) return { ok: false };
    deciding.add(id);
    const body = () => (state.anns.has(id) ? { decision, comment, version: state.anns.get(id).version } : null);
    const r = await request("POST", cfg.review + id + "/review/", body).finally(() => deciding.delete(id));
    if (r.ok) {
      upsert(r.data);
      hint(decision === "accept" ? "Accepted." : "Rejected: it goes back to its author.");
    }
    return r;
  }

  /* ---------------------------------------------------------------- tools */
  const hints = {
    select: "Click an annotation to select it; drag polygon vertices or box handles; double-click a polygon edge to add a vertex, a vertex to delete it.",
    pan: "Drag to pan; the wheel zooms.",
    smart: "Click an object to mask it (" + cfg.preannotator + "); right-click to exclude a part; drag a box around it. Enter keeps the mask.",
    box: "Drag a box.",
    polygon: "Click the vertices; click the first one or press Enter to close; Backspace removes the last.",
    brush: "Paint onto the selected mask (or start a new one). [ and ] change the size.",
    eraser: "Erase from the selected mask. [ and ] change the size.",
  };
  function setTool(tool) {
    finishSmart();
    state.poly = null;
    state.tool = tool;
    for (const b of document.querySelectorAll("[data-tool]")) b.classList.toggle("active", b.dataset.tool === tool);
    world.draggable(tool === "pan");
    container.dataset.tool = tool;
    hint(hints[tool]);
    renderAll();
  }
  function pickClass(id) {
    const c = classes.get(id);
    if (!c) return;
    const a = state.anns.get(state.selected);
    if (c.kind === "tag") {
      const on = Array.from(state.anns.values()).find((x) => x.label_class === id);
      return on ? remove(on.id).then((r) => r.ok && record({ t: "delete", id: on.id })) : create(id, null).then((r) => r.ok && record({ t: "create", id: r.data.id }));
    }
    state.classId = id;
    if (a && a.kind === c.kind && a.label_class !== id) update(a.id, { label_class: id, attributes: {} });
    renderClasses();
    if (c.kind === "mask" && !["smart", "brush", "eraser", "select", "pan"].includes(state.tool)) setTool("smart");
    if (c.kind === "polygon" && state.tool !== "polygon" && state.tool !== "select") setTool("polygon");
    if (c.kind === "box" && state.tool !== "box" && state.tool !== "select") setTool("box");
  }
  function currentClass(kinds) {
    const c = classes.get(state.classId);
    if (!c || !kinds.includes(c.kind)) {
      notify("Pick a " + kinds.join(" or ") + " class first (the list on the right, or keys 1–9).");
      return null;
    }
    return c;
  }

  function select(id) {
    state.selected = id;
    const a = state.anns.get(id);
    if (a && a.kind !== "tag") state.classId = a.label_class;
    renderClasses();
    renderAll();
  }

  async function deleteAnnotation(id) {
    const r = await remove(id);
    if (r.ok) {
      record({ t: "delete", id });
      hint("Deleted (Ctrl+Z brings it back).");
    }
  }

  function inside(a, x, y) {
    if (a.kind === "mask") {
      const { box, bits } = maskOf(a);
      const px = Math.floor(x) - box[0], py = Math.floor(y) - box[1];
      return px >= 0 && py >= 0 && px < box[2] && py < box[3] && !!bits[py * box[2] + px];
    }
    if (a.kind === "box") {
      const [bx, by, bw, bh] = a.geometry;
      return x >= bx && x <= bx + bw && y >= by && y <= by + bh;
    }
    if (a.kind === "polygon") {
      let hit = false;
      for (const p of polygonParts(a)) {
        for (let i = 0, j = p.length - 2; i < p.length; j = i, i += 2) {
          if (p[i + 1] > y !== p[j + 1] > y && x < ((p[j] - p[i]) * (y - p[i + 1])) / (p[j + 1] - p[i + 1]) + p[i]) hit = !hit;
        }
      }
      return hit;
    }
    return false;
  }
  function annotationAt(x, y) {
    const hits = Array.from(state.anns.values()).filter((a) => a.kind !== "tag" && inside(a, x, y));
    hits.sort((p, q) => p.area - q.area);
    return hits[0] || null;
  }

  /* Smart masks: every click refines one draft; the previous draft of the same prompt is
   * replaced (as one undo step). Clicks go out in the order they were made (the last one
   * wins), with the draft they refine and how many of them it already holds, so the server
   * applies only the new ones. */
  async function smartPrompt() {
    const c = currentClass(["mask"]);
    if (!c) return;
    const s = state.smart;
    const seq = (s.seq = (s.seq || 0) + 1);
    const started = performance.now();
    hint("Finding the object…");
    // Read when sent: a prompt overtaken by a newer click of the same object is not sent.
    let sent = 0;
    const body = () => {
      if (seq !== s.seq) return null;
      sent = s.clicks.length;
      const b = { label_class: c.id, clicks: s.clicks.map((k) => ({ ...k })) };
      if (s.box) b.box = s.box.slice();
      if (s.annId && s.done !== null && state.anns.has(s.annId)) Object.assign(b, { previous: s.annId, previous_clicks: s.done });
      return b;
    };
    const r = await request("POST", cfg.api.preannotate, body);
    if (!r.ok) return;
    const ms = Math.round(performance.now() - started);
    upsert(r.data);
    const old = s.annId; // taken before any await: the next response replaces this one
    s.annId = r.data.id;
    s.done = sent;
    const ops = [{ t: "create", id: r.data.id }];
    if (old && state.anns.has(old)) {
      const d = await remove(old);
      if (d.ok) ops.unshift({ t: "delete", id: old });
    }
    state.selected = r.data.id;
    record(ops.length === 1 ? ops[0] : { t: "group", ops });
    renderAll();
    hint("Mask in " + ms + " ms (" + r.data.source + (r.data.confidence != null ? ", score " + r.data.confidence.toFixed(2) : "") + "). Click to add, right-click to exclude, Enter to keep.");
  }
  function finishSmart() {
    if (state.smart) {
      state.smart = null;
      renderUi();
    }
  }

  async function closePolygon() {
    const c = currentClass(["polygon"]);
    const pts = state.poly;
    state.poly = null;
    renderUi();
    if (!c || !pts || pts.length < 6) return hint("A polygon needs at least 3 vertices.");
    const r = await create(c.id, pts.map((v) => Math.round(v * 10) / 10));
    if (r.ok) {
      record({ t: "create", id: r.data.id });
      hint("Polygon saved as a draft.");
    }
  }

  /* Brush and eraser paint on a full-size canvas of the mask being edited; on release the
   * pixels are encoded and saved. */
  /* Brush and eraser: each dab sets or clears the pixels whose centres lie within the
   * brush radius, in a bitmap of the whole image (no anti-aliasing: what is shown is what
   * is saved, pixel for pixel). The preview redraws only the rectangle a dab touched. */
  let paint = null;
  function startPaint(erase) {
    let a = state.anns.get(state.selected);
    if (a && a.kind !== "mask") a = null;
    const c = a ? classes.get(a.label_class) : currentClass(["mask"]);
    if (!c) return;
    if (!a && erase) return hint("Select a mask to erase from.");
    if (pending > 0) return notify("Saving the last change… paint again in a moment.");
    const bits = new Uint8Array(W * H);
    if (a) {
      const m = maskOf(a);
      const [bx, by, bw, bh] = m.box;
      for (let y = 0; y < bh; y++) bits.set(m.bits.subarray(y * bw, (y + 1) * bw), (by + y) * W + bx);
    }
    const canvas = document.createElement("canvas");
    canvas.width = W;
    canvas.height = H;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(W, H);
    const colour = rgb(c.colour);
    for (let i = 0; i < bits.length; i++) if (bits[i]) paintPixel(img.data, i, colour, 1);
    ctx.putImageData(img, 0, 0);
    const node = new Konva.Image({ x: 0, y: 0, image: canvas, opacity: Math.min(0.9, state.opacity + 0.2), listening: false });
    paintGroup.add(node);
    const radius = Math.max(0.5, state.brush / scale() / 2);
    paint = { a, c, bits, ctx, img, colour, node, erase, radius, last: pointer(), any: false };
    state.painting = a ? a.id : null; // its stored pixels are hidden while the stroke shows them
    renderAll();
    dab(paint.last);
  }
  function paintPixel(data, i, [r, g, b], on) {
    data[i * 4] = r;
    data[i * 4 + 1] = g;
    data[i * 4 + 2] = b;
    data[i * 4 + 3] = on ? 255 : 0;
  }
  function stamp(cx, cy) {
    const { bits, img, colour, erase, radius } = paint;
    const x0 = Math.max(0, Math.floor(cx - radius)), x1 = Math.min(W - 1, Math.ceil(cx + radius));
    const y0 = Math.max(0, Math.floor(cy - radius)), y1 = Math.min(H - 1, Math.ceil(cy + radius));
    const r2 = radius * radius;
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r2) {
          const i = y * W + x;
          bits[i] = erase ? 0 : 1;
          paintPixel(img.data, i, colour, !erase);
        }
      }
    }
    return [x0, y0, x1, y1];
  }
  function dab(p) {
    const from = paint.last;
    const steps = Math.max(1, Math.ceil(Math.hypot(p.x - from.x, p.y - from.y) / Math.max(0.5, paint.radius / 2)));
    let box = null;
    for (let k = 0; k <= steps; k++) {
      const [x0, y0, x1, y1] = stamp(from.x + ((p.x - from.x) * k) / steps, from.y + ((p.y - from.y) * k) / steps);
      box = box ? [Math.min(box[0], x0), Math.min(box[1], y0), Math.max(box[2], x1), Math.max(box[3], y1)] : [x0, y0, x1, y1];
    }
    if (box && box[2] >= box[0] && box[3] >= box[1]) {
      paint.ctx.putImageData(paint.img, 0, 0, box[0], box[1], box[2] - box[0] + 1, box[3] - box[1] + 1);
    }
    paint.last = p;
    world.batchDraw();
  }
  async function endPaint() {
    const { a, c, bits, node } = paint;
    paint = null;
    state.painting = null;
    node.destroy();
    const any = bits.some((v) => v);
    const geometry = { size: [H, W], counts: RLE.encode(bits, W, H) };
    if (!a) {
      if (!any) return renderAll();
      const r = await create(c.id, geometry);
      if (r.ok) {
        record({ t: "create", id: r.data.id });
        state.selected = r.data.id;
        renderAll();
      }
    } else if (!any) {
      await deleteAnnotation(a.id);
    } else {
      await update(a.id, { geometry });
    }
  }

  let drag = null;
  stage.on("mousedown", (e) => {
    if (state.tool === "pan" || state.spacePan) return;
    if (e.target.name && e.target.name() === "vertex") return;
    const p = pointer();
    if (state.tool === "brush" || state.tool === "eraser") {
      if (e.evt.button === 0) startPaint(state.tool === "eraser");
      return;
    }
    if (state.tool === "smart" || state.tool === "box") {
      drag = { start: p, screen: stage.getPointerPosition(), button: e.evt.button, rect: null };
    }
  });
  stage.on("mousemove", (e) => {
    if (paint && e.evt.buttons === 0) return endPaint(); // released outside the canvas
    if (paint) return dab(pointer());
    if (!drag) return;
    const p = pointer();
    const sp = stage.getPointerPosition();
    if (!drag.rect && Math.hypot(sp.x - drag.screen.x, sp.y - drag.screen.y) > 6) {
      drag.rect = new Konva.Rect({ stroke: "#f59e0b", strokeWidth: 2, strokeScaleEnabled: false, dash: [6, 4], listening: false });
      uiGroup.add(drag.rect);
    }
    if (drag.rect) {
      drag.rect.setAttrs({ x: Math.min(p.x, drag.start.x), y: Math.min(p.y, drag.start.y), width: Math.abs(p.x - drag.start.x), height: Math.abs(p.y - drag.start.y) });
    }
  });
  stage.on("mouseup", async () => {
    if (paint) return endPaint();
    if (!drag) return;
    const d = drag;
    drag = null;
    const p = pointer();
    const box = d.rect ? [Math.min(p.x, d.start.x), Math.min(p.y, d.start.y), Math.abs(p.x - d.start.x), Math.abs(p.y - d.start.y)].map((v) => Math.round(v)) : null;
    if (d.rect) d.rect.destroy();
    if (state.tool === "box") {
      if (!box || box[2] < 2 || box[3] < 2) return renderUi();
      const c = currentClass(["box"]);
      if (!c) return renderUi();
      const r = await create(c.id, box);
      if (r.ok) {
        record({ t: "create", id: r.data.id });
        state.selected = r.data.id;
        renderAll();
      }
      return;
    }
    if (state.tool === "smart") {
      if (!currentClass(["mask"])) return renderUi();
      if (!state.smart || (box && state.smart.box)) state.smart = { clicks: [], box: null, annId: null, done: 0 };
      if (box) Object.assign(state.smart, { box, done: null }); // the old draft had no box: start again
      else state.smart.clicks.push({ x: Math.round(p.x), y: Math.round(p.y), positive: d.button !== 2 });
      renderUi();
      await smartPrompt();
    }
  });
  stage.on("click", (e) => {
    if (e.evt.button !== 0) return;
    const p = pointer();
    if (state.tool === "select") {
      if (e.target.name && e.target.name() === "vertex") return;
      if (e.target.getParent && e.target.getParent() === transformer) return;
      const current = state.anns.get(state.selected);
      if (current && current.kind === "polygon" && nearEdge(current, p) !== null) return; // keep it for a double-click
      const a = annotationAt(p.x, p.y);
      state.selected = a ? a.id : null;
      if (a) state.classId = a.label_class;
      renderClasses();
      renderAll();
    } else if (state.tool === "polygon") {
      if (!currentClass(["polygon"])) return;
      state.poly = state.poly || [];
      const s = scale();
      if (state.poly.length >= 6 && Math.hypot(p.x - state.poly[0], p.y - state.poly[1]) * s < 8) return closePolygon();
      state.poly.push(p.x, p.y);
      renderUi();
    }
  });
  /* The index of the polygon edge within 10 screen px of p, or null. */
  function nearEdge(a, p) {
    const pts = a.geometry;
    let best = null, bestDist = Infinity;
    for (let i = 0; i < pts.length; i += 2) {
      const j = (i + 2) % pts.length;
      const d = segmentDistance(p, pts[i], pts[i + 1], pts[j], pts[j + 1]);
      if (d < bestDist) {
        bestDist = d;
        best = i;
      }
    }
    return bestDist * scale() <= 10 ? best : null;
  }
  stage.on("dblclick", () => {
    if (state.tool !== "select") return;
    const a = state.anns.get(state.selected);
    if (!a || a.kind !== "polygon" || multiPart(a)) return;
    const p = pointer();
    const edge = nearEdge(a, p);
    if (edge === null) return;
    const next = a.geometry.slice();
    next.splice(edge + 2, 0, Math.round(p.x * 10) / 10, Math.round(p.y * 10) / 10);
    update(a.id, { geometry: next });
  });
  function segmentDistance(p, x1, y1, x2, y2) {
    const dx = x2 - x1, dy = y2 - y1;
    const t = Math.max(0, Math.min(1, ((p.x - x1) * dx + (p.y - y1) * dy) / (dx * dx + dy * dy || 1)));
    return Math.hypot(p.x - (x1 + t * dx), p.y - (y1 + t * dy));
  }

  /* ---------------------------------------------------------------- keys and buttons */
  document.addEventListener("keydown", (e) => {
    if (e.target.matches("input, textarea, select")) return;
    const key = e.key.toLowerCase();
    const mod = e.ctrlKey || e.metaKey;
    if (e.repeat && key !== "[" && key !== "]") return; // a held key acts once
    if (mod && key === "enter") {
      e.preventDefault();
      return submit();
    }
    if (mod && key === "z") {
      e.preventDefault();
      return e.shiftKey ? redo() : undo();
    }
    if (mod && key === "y") {
      e.preventDefault();
      return redo();
    }
    if (mod) return;
    if (key === " " && !state.spacePan) {
      e.preventDefault();
      state.spacePan = true;
      world.draggable(true);
      return;
    }
    const tools = { v: "select", h: "pan", s: "smart", b: "box", p: "polygon", r: "brush", e: "eraser" };
    if (tools[key]) return setTool(tools[key]);
    if (/^[1-9]$/.test(key) && cfg.classes[Number(key) - 1]) return pickClass(cfg.classes[Number(key) - 1].id);
    if (key === "f") return fit();
    if (key === "[" || key === "]") {
      state.brush = Math.max(2, Math.min(200, state.brush * (key === "]" ? 1.25 : 0.8)));
      return hint("Brush " + Math.round(state.brush) + " px");
    }
    if (key === "enter" && (state.poly || state.smart)) e.preventDefault();
    if (key === "enter") {
      if (state.poly) return closePolygon();
      if (state.smart) {
        finishSmart();
        return hint("Kept. Click the next object.");
      }
    }
    if (key === "escape") {
      state.poly = null;
      finishSmart();
      state.selected = null;
      return renderAll();
    }
    if (key === "backspace" && state.poly) {
      state.poly.splice(-2, 2);
      return renderUi();
    }
    if ((key === "delete" || key === "backspace") && state.selected) {
      e.preventDefault();
      return deleteAnnotation(state.selected);
    }
  });
  document.addEventListener("keyup", (e) => {
    if (e.key === " ") {
      state.spacePan = false;
      world.draggable(state.tool === "pan");
    }
  });
  for (const b of document.querySelectorAll("[data-tool]")) b.addEventListener("click", () => setTool(b.dataset.tool));
  document.querySelector('[data-action="undo"]').addEventListener("click", undo);
  document.querySelector('[data-action="redo"]').addEventListener("click", redo);
  document.querySelector('[data-action="fit"]').addEventListener("click", fit);
  $("opacity").addEventListener("input", (e) => {
    state.opacity = Number(e.target.value);
    renderAll();
  });

  function go(url, method) {
    if (method !== "POST") {
      window.location.href = url;
      return;
    }
    const form = document.createElement("form");
    form.method = "post";
    form.action = url;
    const token = document.createElement("input");
    token.type = "hidden";
    token.name = "csrfmiddlewaretoken";
    token.value = csrf;
    form.appendChild(token);
    document.body.appendChild(form);
    form.submit();
  }

  let submitting = false;
  async function submit() {
    if (review || submitting) return;
    if (paint || state.poly) return notify("Finish the stroke or polygon first (Enter closes a polygon, Esc drops it).");
    submitting = true;
    try {
      await chain;
      if (state.failed) return notify("The last change was not saved (see above); fix or undo it before submitting.");
      const r = await request("POST", cfg.submit);
      if (r.ok) go(cfg.next, "POST");
    } finally {
      submitting = false;
    }
  }
  if ($("submit")) $("submit").addEventListener("click", submit);
  // Skip is a plain form (it works without script); with script it first lets the
  // changes under way reach the server, since leaving the page would cancel them.
  const skipForm = document.querySelector("form.skip");
  if (skipForm) {
    skipForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (paint || state.poly) return notify("Finish the stroke or polygon first (Enter closes a polygon, Esc drops it).");
      hint("Saving your last change, then skipping…");
      await settled();
      skipForm.submit(); // does not fire "submit" again
    });
  }
  if ($("accept-all")) {
    $("accept-all").addEventListener("click", async () => {
      for (const a of Array.from(state.anns.values())) {
        if (a.status === "submitted") {
          const r = await decide(a.id, "accept", "");
          if (!r.ok) return;
        }
      }
      go(cfg.next, "GET");
    });
  }

  /* The task's lease: a countdown in the status line, and a warning once it has run out
   * (someone else may take the task; submitting then tells whether it is still yours). */
  if (cfg.lease_expires_at) {
    const ends = new Date(cfg.lease_expires_at).getTime();
    const lease = document.createElement("span");
    lease.id = "lease";
    $("zoom").before(lease);
    const tick = () => {
      const left = Math.round((ends - Date.now()) / 1000);
      if (left > 0) {
        lease.textContent = "lease " + Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0") + " · ";
        lease.className = left < 120 ? "warn" : "";
        return;
      }
      lease.textContent = "lease ended · ";
      lease.className = "warn";
      notify("Your lease on this task ran out: submit now to keep your work on it (if nobody has taken it), or start annotating again for a task.");
      clearInterval(timer);
    };
    const timer = setInterval(tick, 1000);
    tick();
  }

  /* Resolve once no write is queued or in flight, counting the writes that the answers of
   * earlier ones queue (a smart click deletes its previous draft once the new one is saved):
   * the chain must be unchanged and idle across a macrotask, after every continuation ran. */
  async function settled() {
    for (;;) {
      const seen = chain;
      await seen;
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (seen === chain && pending === 0) return pending;
    }
  }

  // Exposed for tests and for people driving the canvas from the console.
  window.studioCanvas = { state, setTool, pickClass, select, undo, redo, fit, stage, world, settled };

  /* Segment Anything: run the image encoder now, so the first click costs only the decoder. */
  if (cfg.preannotator === "Segment Anything" && !review) {
    const started = performance.now();
    hint("Preparing Segment Anything for this image…");
    fetch(cfg.api.prepare, { method: "POST", headers: { "X-CSRFToken": csrf }, credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null))
      .then((data) => {
        if (data && state.tool === "smart") hint("Segment Anything is ready" + (data.encoded ? " (image encoded in " + Math.round(performance.now() - started) + " ms)" : "") + ". " + hints.smart);
      });
  }

  renderClasses();
  setTool(review ? "select" : state.classId && classes.get(state.classId).kind === "mask" ? "smart" : "select");
  reload();
})();

// airlab AT console front end (anywidget ESM): the log box and the command line.
// The log scrolls to the newest line unless the reader has scrolled up; Enter sends,
// leaving the box does not; Up/Down walk the history like a shell (edits are kept
// until the next Enter); the body field appears after DOWNLOAD / '>'.

const MARK = { tx: "发→◇", rx: "收←◆", "!!": "!! " };
const NEAR_BOTTOM = 8; // px: closer than this to the end counts as "at the newest line"

function renderLog({ model, el }) {
  el.classList.add("airlab-console");
  const box = document.createElement("div");
  box.className = "airlab-log";
  box.tabIndex = 0;
  box.setAttribute("role", "log");
  box.setAttribute("aria-live", "polite");
  const jump = document.createElement("button");
  jump.className = "airlab-jump";
  jump.hidden = true;
  el.append(box, jump);

  let stuck = true; // follow the newest line
  let unseen = 0;
  let first = null; // n of the first row drawn
  let last = -1; // n of the last row drawn

  const atBottom = () => box.scrollTop + box.clientHeight >= box.scrollHeight - NEAR_BOTTOM;
  const toBottom = () => {
    box.scrollTop = box.scrollHeight;
    stuck = true;
    unseen = 0;
    jump.hidden = true;
  };
  box.addEventListener("scroll", () => {
    stuck = atBottom();
    if (stuck) {
      unseen = 0;
      jump.hidden = true;
    }
  });
  jump.addEventListener("click", toBottom);

  const fill = (row, line) => {
    const hex = model.get("hex_view") && line.hex;
    row.querySelector(".airlab-text").textContent = hex ? line.hex : line.text;
    row.querySelector(".airlab-crlf").textContent = !hex && line.kind === "sent" ? "□" : "";
  };
  const rowOf = (line) => {
    const row = document.createElement("div");
    row.className = `airlab-row airlab-${line.kind} airlab-dir-${line.dir === "!!" ? "err" : line.dir}`;
    row.dataset.n = line.n;
    row.dataset.kind = line.kind;
    const time = document.createElement("span");
    time.className = "airlab-time";
    time.textContent = line.time ? `[${line.time}]` : "";
    const mark = document.createElement("span");
    mark.className = "airlab-mark";
    mark.textContent = MARK[line.dir] || "";
    const text = document.createElement("span");
    text.className = "airlab-text";
    const crlf = document.createElement("span");
    crlf.className = "airlab-crlf";
    const tag = document.createElement("span");
    tag.className = "airlab-tag";
    tag.textContent = line.tag || "";
    row.append(time, mark, text, crlf, tag);
    row._line = line;
    fill(row, line);
    return row;
  };

  const draw = () => {
    const lines = model.get("lines");
    const follow = stuck || atBottom();
    if (!lines.length) {
      box.replaceChildren();
      first = null;
      last = -1;
    } else {
      if (first === null || lines[0].n < first || lines[lines.length - 1].n < last) {
        box.replaceChildren(); // new view, or the log was rebuilt: draw it all
        last = -1;
      }
      while (box.firstChild && Number(box.firstChild.dataset.n) < lines[0].n) {
        box.firstChild.remove(); // left the kept window (max_lines)
      }
      const fresh = lines.filter((l) => l.n > last);
      if (fresh.length) {
        const frag = document.createDocumentFragment();
        for (const line of fresh) frag.append(rowOf(line));
        box.append(frag);
        last = fresh[fresh.length - 1].n;
        if (!follow) unseen += fresh.length;
      }
      first = lines[0].n;
    }
    if (follow) {
      toBottom();
    } else if (unseen) {
      jump.textContent = `▼ ${unseen} new line${unseen === 1 ? "" : "s"}`;
      jump.hidden = false;
    }
  };
  const refill = () => {
    for (const row of box.children) fill(row, row._line);
    if (stuck) toBottom();
  };
  const size = () => {
    box.style.height = model.get("height");
  };

  size();
  draw();
  // a view drawn before it is attached has no size yet: follow once it has one
  const seen = new ResizeObserver(() => {
    if (stuck) toBottom();
  });
  seen.observe(box);
  model.on("change:lines", draw);
  model.on("change:hex_view", refill);
  model.on("change:height", size);
  return () => {
    seen.disconnect();
    model.off("change:lines", draw);
    model.off("change:hex_view", refill);
    model.off("change:height", size);
  };
}

function renderInput({ model, el }) {
  el.classList.add("airlab-console", "airlab-console-input");
  el.dataset.lmSuppressShortcuts = "true"; // JupyterLab: keys typed here are text

  const row = document.createElement("div");
  row.className = "airlab-line";
  const wrap = document.createElement("div");
  wrap.className = "widget-text airlab-line-text"; // ipywidgets' look for the input
  const input = document.createElement("input");
  input.type = "text";
  input.spellcheck = false;
  input.autocomplete = "off";
  wrap.append(input);
  const send = document.createElement("button");
  send.className = "jupyter-button widget-button mod-primary airlab-send";
  send.textContent = "Send";
  row.append(wrap, send);

  const body = document.createElement("div");
  body.className = "airlab-bodyfield";
  const hint = document.createElement("div");
  hint.className = "airlab-body-hint";
  const area = document.createElement("textarea");
  area.rows = 3;
  area.spellcheck = false;
  area.placeholder = "the body, sent exactly as written (no CR LF added)";
  const foot = document.createElement("div");
  foot.className = "airlab-body-foot";
  const count = document.createElement("span");
  count.className = "airlab-body-count";
  const ctrlz = document.createElement("label");
  const ctrlzBox = document.createElement("input");
  ctrlzBox.type = "checkbox";
  ctrlz.append(ctrlzBox, " end with Ctrl+Z (1A)");
  const sendBody = document.createElement("button");
  sendBody.className = "jupyter-button widget-button mod-primary airlab-send-body";
  sendBody.textContent = "Send body";
  foot.append(count, ctrlz, sendBody);
  body.append(hint, area, foot);
  el.append(row, body);

  // ---- history: a shell's Up/Down, with edits kept until the next Enter
  let drafts = null;
  let at = 0;
  const recall = (step) => {
    if (drafts === null) {
      drafts = [...model.get("history"), input.value];
      at = drafts.length - 1;
    }
    const to = at + step;
    if (to < 0 || to >= drafts.length) return;
    drafts[at] = input.value;
    at = to;
    input.value = drafts[at];
    input.setSelectionRange(input.value.length, input.value.length);
  };
  const submit = () => {
    const text = input.value;
    if (text === "" || model.get("disabled")) return;
    model.send({ event: "submit", text });
    input.value = "";
    drafts = null;
  };
  input.addEventListener("keydown", (e) => {
    if (e.isComposing || e.keyCode === 229) return; // an IME (pinyin) is composing
    if (e.key === "Enter") {
      e.preventDefault();
      submit();
    } else if (e.key === "ArrowUp") {
      e.preventDefault();
      recall(-1);
    } else if (e.key === "ArrowDown") {
      e.preventDefault();
      recall(+1);
    } else {
      return;
    }
    e.stopPropagation(); // not a notebook shortcut
  });
  // no change or blur handler: leaving the box sends nothing
  send.addEventListener("click", submit);

  // ---- the body field
  const bytes = (s) => new TextEncoder().encode(s).length;
  const showCount = () => {
    const n = bytes(area.value);
    const want = model.get("body_expected");
    count.textContent = want >= 0 ? `${n} of ${want} bytes` : `${n} bytes`;
    count.classList.toggle("airlab-mismatch", want >= 0 && n !== want);
  };
  const showBody = () => {
    body.hidden = !model.get("body_open");
    hint.textContent = model.get("body_hint");
    ctrlzBox.checked = model.get("body_ctrl_z");
    ctrlz.hidden = model.get("body_expected") >= 0;
    showCount();
    if (!body.hidden) area.focus();
  };
  area.addEventListener("input", showCount);
  area.addEventListener("keydown", (e) => e.stopPropagation());
  ctrlzBox.addEventListener("change", () => {
    model.set("body_ctrl_z", ctrlzBox.checked);
    model.save_changes();
  });
  sendBody.addEventListener("click", () => {
    model.send({ event: "body", text: area.value, ctrl_z: ctrlzBox.checked });
    area.value = "";
  });

  const state = () => {
    input.disabled = send.disabled = sendBody.disabled = model.get("disabled");
    input.placeholder = model.get("placeholder");
  };
  state();
  showBody();
  const events = {
    "change:disabled": state,
    "change:placeholder": state,
    "change:body_open": showBody,
    "change:body_hint": showBody,
    "change:body_expected": showBody,
  };
  for (const [name, fn] of Object.entries(events)) model.on(name, fn);
  return () => {
    for (const [name, fn] of Object.entries(events)) model.off(name, fn);
  };
}

function render(ctx) {
  return ctx.model.get("_view") === "input" ? renderInput(ctx) : renderLog(ctx);
}

export default { render };

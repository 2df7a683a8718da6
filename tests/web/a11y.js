// The accessibility checks of tests/web/test_every_page.py, run in the page by page.evaluate: one call
// returns every problem found (as "what: which element") and starts recording what keyboard focus
// reaches; a second call (A11Y_FOCUS_REPORT) says which focusable elements the Tab key never reached
// and which were focused without a visible indicator. Nothing is fetched: plain DOM and CSSOM.
({ lang, phone }) => {
  const problems = [];
  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) { s += "#" + el.id; } else if (typeof el.className === "string" && el.className) { s += "." + el.className.trim().split(/\s+/).join("."); }
    const text = (el.textContent || el.value || "").replace(/\s+/g, " ").trim().slice(0, 40);
    return text ? `${s} "${text}"` : s;
  };
  const say = (what, el) => problems.push(el ? `${what}: ${describe(el)}` : what);
  const shown = (el) => el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true });
  const textOf = (id) => { const el = id && document.getElementById(id); return el ? el.textContent.trim() : ""; };
  const labelledBy = (el) => (el.getAttribute("aria-labelledby") || "").split(/\s+/).some(textOf);

  // -- the document ----------------------------------------------------------------------------------
  if (document.documentElement.lang !== lang) { say(`html lang is "${document.documentElement.lang}", not "${lang}"`); }
  const h1s = document.querySelectorAll("h1").length;
  if (h1s !== 1) { say(`${h1s} h1 headings, not one`); }
  const ids = new Map();
  for (const el of document.querySelectorAll("[id]")) { ids.set(el.id, (ids.get(el.id) || 0) + 1); }
  for (const [id, n] of ids) { if (n > 1) { say(`id "${id}" used ${n} times`); } }

  // -- names: form fields, images, links and buttons ---------------------------------------------------
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    const label = el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`);
    if (!(label && label.textContent.trim()) && !el.closest("label") && !(el.getAttribute("aria-label") || "").trim() && !labelledBy(el)) {
      say("form field without a label", el);
    }
  }
  for (const img of document.querySelectorAll("img")) { if (!img.hasAttribute("alt")) { say("image without alt", img); } }
  for (const svg of document.querySelectorAll("svg")) {
    if (svg.parentElement.closest("svg")) { continue; }
    const hidden = svg.getAttribute("aria-hidden") === "true" || svg.getAttribute("role") === "presentation";
    const titled = svg.querySelector(":scope > title") || (svg.getAttribute("aria-label") || "").trim() || labelledBy(svg);
    if (!hidden && !titled) { say("drawing without a title or aria-hidden", svg); }
  }
  for (const el of document.querySelectorAll("a[href], button")) {
    const named = (el.textContent || "").trim() || (el.getAttribute("aria-label") || "").trim() || labelledBy(el)
      || (el.getAttribute("title") || "").trim() || el.querySelector("img[alt]:not([alt='']), title");
    if (!named) { say("link or button without a name", el); }
  }

  // -- contrast of every visible text against what is behind it ---------------------------------------
  const rgba = (text) => {
    const m = /rgba?\(([^)]*)\)/.exec(text);
    if (!m) { return null; }
    const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, below) => top.slice(0, 3).map((c, i) => c * top[3] + below[i] * (1 - top[3]));
  const behind = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) { break; } }
    }
    return layers.reverse().reduce((below, top) => over(top, below), [255, 255, 255]);
  };
  const luminance = (rgb) => {
    const [r, g, b] = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => { const [l1, l2] = [luminance(a), luminance(b)].sort((x, y) => y - x); return (l1 + 0.05) / (l2 + 0.05); };
  const texts = [...document.body.querySelectorAll("*")].filter((el) =>
    !el.closest("svg, option, optgroup, script, style") && ([...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())
      || (el.matches("input:not([type=checkbox]):not([type=radio]):not([type=hidden]), select") && el.value)));
  for (const el of texts) {
    const box = el.getBoundingClientRect();
    if (!shown(el) || box.width <= 1 || box.height <= 1) { continue; }  // not shown, or for screen readers only
    const style = getComputedStyle(el);
    const bg = behind(el), fg = rgba(style.color), size = parseFloat(style.fontSize);
    const large = size >= 24 || (parseInt(style.fontWeight, 10) >= 700 && size >= 18.66);
    const r = ratio(over(fg, bg), bg);
    if (r < (large ? 3 : 4.5)) { say(`contrast ${r.toFixed(2)}:1 (${style.color} on rgb(${bg.map(Math.round)}))`, el); }
  }

  // -- phone width: nothing wider than the screen, targets big enough for a finger -----------------------
  if (phone) {
    const width = window.innerWidth;
    if (document.documentElement.scrollWidth > width + 1) {
      const scrolls = (el) => { for (let e = el.parentElement; e; e = e.parentElement) { if (/auto|scroll|hidden/.test(getComputedStyle(e).overflowX)) { return true; } } return false; };
      const wide = [...document.body.querySelectorAll("*")].filter((el) => el.getBoundingClientRect().right > width + 1 && !scrolls(el));
      const outer = wide.filter((el) => !wide.includes(el.parentElement)).slice(0, 3);
      say(`page ${document.documentElement.scrollWidth} px wide at ${width} px, widest: ${outer.map(describe).join("; ")}`);
    }
    for (const el of document.querySelectorAll("nav a, header a, button, a.button, input[type=submit]")) {
      const box = el.getBoundingClientRect();
      if (shown(el) && (box.width < 44 || box.height < 44)) { say(`touch target ${Math.round(box.width)}x${Math.round(box.height)} px`, el); }
    }
  }

  // -- keyboard: record what Tab reaches, and whether focus shows ---------------------------------------
  const focusable = [...document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex='-1'])")]
    .filter((el) => !el.disabled && !el.closest("[inert]") && shown(el));
  const record = { reached: new Set(), unmarked: [] };
  const indicator = (el) => {
    const s = getComputedStyle(el);
    if ((s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none") { return true; }
    const shape = el.namespaceURI.endsWith("svg") && el.querySelector("path, rect");  // a map area: its outline thickens
    return Boolean(shape) && parseFloat(getComputedStyle(shape).strokeWidth) >= 3;
  };
  // the walk starts at the top of the page, as on a page just opened
  const start = document.createElement("span");
  start.tabIndex = -1;
  document.body.prepend(start);
  start.focus({ preventScroll: true });
  start.remove();
  document.addEventListener("focusin", (event) => {
    record.reached.add(event.target);
    if (!indicator(event.target)) { record.unmarked.push(describe(event.target)); }
  }, true);
  window.__a11yFocus = () => {
    const radiosReached = new Set([...record.reached].filter((el) => el.type === "radio").map((el) => el.name));
    const missed = focusable.filter((el) => !record.reached.has(el) && !(el.type === "radio" && radiosReached.has(el.name)));
    return [...missed.map((el) => "not reached by Tab: " + describe(el)),
            ...[...new Set(record.unmarked)].map((d) => "no visible focus: " + d)];
  };
  return { problems, tabs: focusable.length };
}

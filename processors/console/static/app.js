// usagestream console: reads the query API (/v1/, docs/openapi.yaml) and
// draws it. No framework, no CDN: the binary serves this file. Every value
// from the API reaches the page as text (textContent, setAttribute), never
// as markup. The bearer token lives in sessionStorage and travels in the
// Authorization header only.
"use strict";

const TOKEN_KEY = "usagestream-api-token";
const SVG = "http://www.w3.org/2000/svg";
const DAY = 86400000;
const rulesURL = document.querySelector('meta[name="rules-url"]').content;
const tokenRequired = document.querySelector('meta[name="token-required"]').content === "true";

// ---------- DOM helpers ----------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  setAttrs(e, attrs);
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    e.setAttribute(k, v === true ? "" : String(v));
  }
}

function title(text) { return svg("title", {}, text); }

function num(v) {
  if (v === null || v === undefined) return "";
  return Number.isInteger(v) ? v.toLocaleString("en-US") : v.toLocaleString("en-US", { maximumFractionDigits: 3 });
}

// money is a charge with its cents always shown (59.30, not 59.3).
function money(v) {
  if (v === null || v === undefined) return "";
  return v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

function ruleLink(rule) {
  if (!rule) return "";
  return el("a", { href: rulesURL + "#" + encodeURIComponent(rule), target: "_blank", rel: "noopener noreferrer", class: "rule" }, rule);
}

function sourceText(s) {
  if (!s) return "";
  if (s.file) return s.file + ":" + s.line;
  if (s.topic) return s.topic + " " + s.partition + "@" + s.offset;
  return "";
}

function spLink(id, date) {
  const h = "#sp/" + encodeURIComponent(id) + (date ? "@" + date : "");
  return el("a", { href: h }, id);
}

function table(cls, head, rows, empty) {
  if (!rows.length) return el("p", { class: "empty" }, empty || "none");
  return el("table", { class: cls },
    el("thead", {}, el("tr", {}, head.map(h => el("th", {}, h)))),
    el("tbody", {}, rows));
}

function td(content, attrs) { return el("td", attrs || {}, content); }

function stat(label, value, key) {
  return el("div", { class: "stat" }, el("span", { class: "stat-v", "data-k": key }, num(value)), el("span", { class: "stat-l" }, label));
}

// ---------- API ----------

class Unauthorized extends Error {}

async function api(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  const resp = await fetch(path, { headers, credentials: "omit", cache: "no-store" });
  if (resp.status === 401) throw new Unauthorized("the API refused the token");
  let body = null;
  try { body = await resp.json(); } catch (e) { /* not JSON: said below */ }
  if (!resp.ok) {
    const err = new Error((body && body.error) || ("HTTP " + resp.status));
    err.status = resp.status;
    throw err;
  }
  return body;
}

// ---------- login ----------

const $ = id => document.getElementById(id);

function showLogin(message) {
  $("login").hidden = false;
  $("main").hidden = true;
  $("search").hidden = true;
  $("nav").hidden = true;
  $("signout").hidden = true;
  $("login-error").textContent = message || "";
  $("token").focus();
}

function showApp() {
  $("login").hidden = true;
  $("main").hidden = false;
  $("search").hidden = false;
  $("nav").hidden = false;
  $("signout").hidden = !sessionStorage.getItem(TOKEN_KEY);
}

async function start() {
  if (tokenRequired && !sessionStorage.getItem(TOKEN_KEY)) {
    showLogin("");
    return;
  }
  try {
    await api("/v1/stages");
  } catch (e) {
    if (e instanceof Unauthorized) {
      showLogin(sessionStorage.getItem(TOKEN_KEY) ? "The token was refused." : "");
      return;
    }
  }
  showApp();
  route();
}

$("login-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value);
  $("token").value = "";
  try {
    await api("/v1/stages");
  } catch (e) {
    if (e instanceof Unauthorized) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin("The token was refused.");
      return;
    }
  }
  showApp();
  route();
});

$("signout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  $("view").replaceChildren();
  showLogin("");
});

$("search").addEventListener("submit", ev => {
  ev.preventDefault();
  const id = $("search-id").value.trim();
  if (!id) return;
  location.hash = "#" + $("search-kind").value + "/" + encodeURIComponent(id);
});

// ---------- routing ----------

let refresh = null;

async function route() {
  if (refresh) { clearInterval(refresh); refresh = null; }
  const h = location.hash.slice(1);
  const slash = h.indexOf("/");
  const kind = slash < 0 ? h : h.slice(0, slash);
  // The raw argument: an id's own "@" is encoded (%40), so a raw "@" can
  // only start the date a service point's timeline is opened at.
  const raw = slash < 0 ? "" : h.slice(slash + 1);
  const arg = decode(raw);
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("on", a.dataset.nav === kind);
  const view = $("view");
  setStatus("Loading…");
  try {
    switch (kind) {
      case "sp": {
        const at = raw.lastIndexOf("@");
        const id = at > 0 ? decode(raw.slice(0, at)) : arg;
        $("search-kind").value = "sp"; $("search-id").value = id;
        view.replaceChildren(await servicePointView(id, at > 0 ? raw.slice(at + 1) : ""));
        break;
      }
      case "customer":
        $("search-kind").value = "customer"; $("search-id").value = arg;
        view.replaceChildren(await customerView(arg));
        break;
      case "premise":
        $("search-kind").value = "premise"; $("search-id").value = arg;
        view.replaceChildren(await premiseView(arg));
        break;
      case "files":
        view.replaceChildren(await filesView());
        break;
      case "stages":
        view.replaceChildren(await stagesView());
        refresh = setInterval(async () => {
          try { view.replaceChildren(await stagesView()); } catch (e) { setStatus(e.message, true); }
        }, 5000);
        break;
      default:
        view.replaceChildren(homeView());
    }
    setStatus("");
  } catch (e) {
    if (e instanceof Unauthorized) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin("The token was refused.");
      return;
    }
    view.replaceChildren();
    setStatus(e.message, true);
  }
}

// decode is decodeURIComponent that takes a malformed hash as it is.
function decode(s) {
  try { return decodeURIComponent(s); } catch (e) { return s; }
}

function setStatus(text, isError) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", !!isError);
}

window.addEventListener("hashchange", route);

function homeView() {
  return el("section", { class: "home" },
    el("h1", {}, "Why is this customer not getting reports?"),
    el("p", {}, "Search a service point, a customer or a premise above. A service point shows its usage timeline: billing periods, gaps and overlaps, corrections, accounts, rate changes and interval coverage. A customer shows every program at each premise, eligible or not, with every reason, its rule, dates and the file line that caused it."),
    el("p", {}, el("a", { href: "#files" }, "Files ingested"), " · ", el("a", { href: "#stages" }, "Stages")));
}

// ---------- service point ----------

const toDay = iso => Math.round(Date.parse(iso + "T00:00:00Z") / DAY);
const fromDay = d => new Date(d * DAY).toISOString().slice(0, 10);

// gapsAndOverlaps derives, from the timeline in date order, the days no
// period covers between two periods and the days two periods share.
function gapsAndOverlaps(timeline) {
  const gaps = [], overlaps = [];
  for (let i = 1; i < timeline.length; i++) {
    const prev = timeline[i - 1], next = timeline[i];
    const prevEnd = toDay(prev.date_to), nextStart = toDay(next.start);
    if (nextStart > prevEnd + 1) gaps.push({ from: prevEnd + 1, to: nextStart - 1 });
    else if (nextStart <= prevEnd) overlaps.push({ from: nextStart, to: Math.min(prevEnd, toDay(next.date_to)) });
  }
  return { gaps, overlaps };
}

async function servicePointView(id, highlight) {
  const enc = encodeURIComponent(id);
  const [sp, corr, cov] = await Promise.all([
    api("/v1/service-points/" + enc),
    api("/v1/service-points/" + enc + "/corrections"),
    api("/v1/service-points/" + enc + "/intervals").catch(e => { if (e instanceof Unauthorized) throw e; return { channels: [], error: e.message }; }),
  ]);
  const { gaps, overlaps } = gapsAndOverlaps(sp.timeline);
  const total = sp.timeline.reduce((s, p) => s + p.value, 0);
  const days = cov.channels.reduce((n, c) => n + c.days.length, 0);
  const complete = cov.channels.reduce((n, c) => n + c.days.filter(d => d.missing === 0).length, 0);

  const customers = [...new Set(sp.accounts.map(a => a.customer_id))];
  return el("section", { class: "sp" },
    el("h1", {}, "Service point ", el("span", { class: "id", "data-k": "sp-id" }, sp.service_point_id),
      sp.service_type ? el("span", { class: "tag" }, sp.service_type) : null),
    el("p", { class: "sub" }, "Partition " + sp.partition + " · customers ",
      customers.length ? customers.map((c, i) => [i ? ", " : "", el("a", { href: "#customer/" + encodeURIComponent(c) }, c)]) : "none",
      " · premises ",
      [...new Set(sp.accounts.map(a => a.premise_id))].map((p, i) => [i ? ", " : "", el("a", { href: "#premise/" + encodeURIComponent(p) }, p)])),
    el("div", { class: "stats" },
      stat("billing periods", sp.timeline.length, "periods"),
      stat("usage in the timeline", total, "usage-total"),
      stat("gaps", gaps.length, "gaps"),
      stat("overlaps", overlaps.length, "overlaps"),
      stat("corrections", corr.corrections.length, "corrections"),
      stat("accounts", sp.accounts.length, "accounts"),
      stat("open anomalies", sp.anomalies.length, "anomalies"),
      stat("days with interval reads", days, "interval-days"),
      stat("complete interval days", complete, "interval-complete")),
    timelineChart(sp, corr.corrections, cov, gaps, overlaps, highlight),
    legend(),
    el("h2", {}, "Open anomalies"),
    table("anomalies", ["code", "rule", "account", "from", "to", "since", "until", "caused by"],
      sp.anomalies.map(a => el("tr", {}, td(a.code), td(ruleLink(a.rule)), td(a.account_id || ""), td(a.from || ""), td(a.to || ""),
        td(a.effective_date), td(a.until || ""), td(sourceText(a.source), { class: "src" }))), "none open"),
    el("h2", {}, "Accounts"),
    table("accounts", ["account", "customer", "premise", "status", "active", "inactive", "rate", "rate since", "from", "ended by"],
      sp.accounts.map(a => el("tr", { class: "st-" + a.status }, td(a.account_id), td(el("a", { href: "#customer/" + encodeURIComponent(a.customer_id) }, a.customer_id)),
        td(el("a", { href: "#premise/" + encodeURIComponent(a.premise_id) }, a.premise_id)), td(a.status), td(a.active_date), td(a.inactive_date || a.deleted_on || ""),
        td(a.rate_code || ""), td(a.rate_since || ""), td(sourceText(a.source), { class: "src" }), td(sourceText(a.end_source), { class: "src" }))), "no account"),
    el("h2", {}, "Corrections"),
    table("corrections", ["rule", "kind", "period", "old value", "new value", "old charge", "new charge", "caused by"],
      corr.corrections.map(c => el("tr", {}, td(ruleLink(c.rule)), td(c.kind),
        td(c.channel ? (c.interval_end || c.date_to) + " " + c.channel : periodText(c.date_to, c.duration) + (c.new_date_to && c.new_date_to !== c.date_to ? " → " + periodText(c.new_date_to, c.new_duration) : "")),
        td(num(c.old_value), { class: "n" }), td(num(c.new_value), { class: "n" }), td(money(c.old_charge), { class: "n" }), td(money(c.new_charge), { class: "n" }),
        td(sourceText(c.source), { class: "src" }))), "no correction"),
    el("h2", {}, "Billing periods"),
    table("periods", ["start", "end", "days", "usage", "charge", "before it"],
      sp.timeline.map((p, i) => {
        const prev = i ? sp.timeline[i - 1] : null;
        let note = "";
        if (prev) {
          const d = toDay(p.start) - toDay(prev.date_to) - 1;
          if (d > 0) note = "gap of " + d + " days";
          else if (d < 0) note = "overlap of " + (-d) + " days";
        }
        return el("tr", { id: "period-" + p.date_to, class: note.startsWith("gap") ? "gap" : note ? "overlap" : "" },
          td(p.start), td(p.date_to), td(p.duration, { class: "n" }), td(num(p.value), { class: "n" }), td(money(p.charge), { class: "n" }), td(note));
      }), "no billing period"),
    el("h2", {}, "Interval coverage"),
    cov.error ? el("p", { class: "error" }, cov.error) :
      table("coverage", ["channel", "interval", "days", "complete days", "missing intervals", "estimated"],
        cov.channels.map(c => el("tr", {}, td(c.channel || "(main)"), td(c.minutes + " min"), td(c.days.length, { class: "n" }),
          td(c.days.filter(d => d.missing === 0).length, { class: "n" }),
          td(c.days.reduce((n, d) => n + d.missing, 0), { class: "n" }), td(c.days.reduce((n, d) => n + d.estimated, 0), { class: "n" }))),
        "no interval reads"));
}

function periodText(dateTo, duration) {
  if (!dateTo) return "";
  return fromDay(toDay(dateTo) - duration + 1) + " – " + dateTo;
}

function legend() {
  const item = (cls, text) => el("span", { class: "lg" }, el("i", { class: cls }), text);
  return el("p", { class: "legend" },
    item("lg-bar", "billing period"), item("lg-gap", "gap"), item("lg-overlap", "overlap"), item("lg-corr", "correction (old → new)"),
    item("lg-active", "account active"), item("lg-ended", "account ended"), item("lg-rate", "rate change"),
    item("lg-full", "interval day complete"), item("lg-part", "interval day incomplete"));
}

function timelineChart(sp, corrections, cov, gaps, overlaps, highlight) {
  const dates = [];
  for (const p of sp.timeline) { dates.push(toDay(p.start), toDay(p.date_to) + 1); }
  for (const a of sp.accounts) {
    dates.push(toDay(a.active_date));
    if (a.inactive_date) dates.push(toDay(a.inactive_date) + 1);
  }
  for (const c of cov.channels) for (const d of c.days) dates.push(toDay(d.date), toDay(d.date) + 1);
  if (!dates.length) return el("p", { class: "empty" }, "Nothing to draw yet.");
  let lo = Math.min(...dates), hi = Math.max(...dates);
  if (hi - lo < 30) { hi = lo + 30; }
  const pad = Math.max(3, Math.round((hi - lo) * 0.01));
  lo -= pad; hi += pad;

  const W = 1100, L = 120, R = 16;
  const x = d => L + (d - lo) / (hi - lo) * (W - L - R);
  const accounts = sp.accounts;
  const usageTop = 28, usageH = 150;
  const corrY = usageTop + usageH + 26;
  const acctTop = corrY + 30, laneH = 20;
  const rateY = acctTop + accounts.length * laneH + 14;
  const covY = rateY + 30;
  const H = covY + cov.channels.length * 18 + 34;

  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": "usage timeline of " + sp.service_point_id });
  const label = (y, text) => g.append(svg("text", { x: 8, y, class: "lane" }, text));

  // Axis: a line per month, a label per quarter (or per year on long spans).
  const first = new Date(lo * DAY);
  const years = (hi - lo) / 365;
  for (let d = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + 1, 1)); d.getTime() / DAY < hi; d.setUTCMonth(d.getUTCMonth() + 1)) {
    const xd = x(d.getTime() / DAY);
    const m = d.getUTCMonth();
    g.append(svg("line", { x1: xd, x2: xd, y1: usageTop - 6, y2: H - 24, class: m === 0 ? "grid year" : "grid" }));
    if ((years <= 4 && m % 3 === 0) || m === 0) {
      g.append(svg("text", { x: xd + 2, y: H - 10, class: "tick" }, m === 0 ? String(d.getUTCFullYear()) : d.toISOString().slice(0, 7)));
    }
  }

  // Usage: bars scaled to the largest value; gaps and overlaps over them.
  label(usageTop + 14, "usage");
  const maxV = Math.max(1, ...sp.timeline.map(p => Math.abs(p.value)));
  const corrected = new Set(corrections.filter(c => !c.channel).map(c => c.new_date_to || c.date_to));
  for (const p of sp.timeline) {
    const x0 = x(toDay(p.start)), x1 = x(toDay(p.date_to) + 1);
    const h = Math.max(1, Math.abs(p.value) / maxV * usageH);
    g.append(svg("rect", { x: x0 + 0.5, y: usageTop + usageH - h, width: Math.max(1, x1 - x0 - 1), height: h,
      class: "bar" + (corrected.has(p.date_to) ? " corrected" : "") }, title(`${p.start} – ${p.date_to}: ${num(p.value)}` + (p.charge !== null ? `, charge ${money(p.charge)}` : ""))));
  }
  for (const gp of gaps) {
    g.append(svg("rect", { x: x(gp.from), y: usageTop, width: Math.max(2, x(gp.to + 1) - x(gp.from)), height: usageH, class: "gap" },
      title(`gap ${fromDay(gp.from)} – ${fromDay(gp.to)} (${gp.to - gp.from + 1} days)`)));
  }
  for (const o of overlaps) {
    g.append(svg("rect", { x: x(o.from), y: usageTop, width: Math.max(2, x(o.to + 1) - x(o.from)), height: usageH, class: "overlap" },
      title(`overlap ${fromDay(o.from)} – ${fromDay(o.to)} (${o.to - o.from + 1} days)`)));
  }
  g.append(svg("text", { x: L - 6, y: usageTop + 4, class: "tick end" }, num(maxV)));
  g.append(svg("line", { x1: L, x2: W - R, y1: usageTop + usageH, y2: usageTop + usageH, class: "base" }));

  // Corrections: a mark at the corrected period's end, old and new value.
  label(corrY + 4, "corrections");
  for (const c of corrections) {
    const d = toDay(c.channel && c.interval_end ? c.interval_end.slice(0, 10) : (c.new_date_to || c.date_to));
    const cx = x(d + 0.5);
    g.append(svg("path", { d: `M${cx} ${corrY - 7} L${cx + 6} ${corrY} L${cx} ${corrY + 7} L${cx - 6} ${corrY} Z`, class: "corr" },
      title(`${c.rule} ${c.kind}: ${num(c.old_value)} → ${num(c.new_value)} (${sourceText(c.source)})`)));
    // The values beside the mark while few enough to be read.
    if (corrections.length <= 12) {
      const right = cx < W - 160;
      g.append(svg("text", { x: right ? cx + 9 : cx - 9, y: corrY + 4, class: "corr-label" + (right ? "" : " end") },
        `${c.rule} ${num(c.old_value)} → ${num(c.new_value)}`));
    }
  }

  // Accounts: one lane each, active to inactive (open: to the end).
  label(acctTop - 6, "accounts");
  accounts.forEach((a, i) => {
    const y = acctTop + i * laneH;
    const from = toDay(a.active_date);
    const endDate = a.inactive_date || a.deleted_on;
    const to = endDate ? toDay(endDate) + 1 : hi - pad;
    g.append(svg("rect", { x: x(from), y: y + 2, width: Math.max(2, x(to) - x(from)), height: laneH - 6, class: "acct " + a.status },
      title(`account ${a.account_id} (${a.status}) ${a.active_date} – ${endDate || "open"}, customer ${a.customer_id}`)));
    g.append(svg("text", { x: x(from) + 4, y: y + laneH - 7, class: "acct-label" }, `${a.account_id} · ${a.status}`));
  });

  // Rate changes: the rate each account had since its date.
  label(rateY + 4, "rates");
  for (const a of accounts) {
    if (!a.rate_code) continue;
    const d = toDay(a.rate_since || a.active_date);
    g.append(svg("line", { x1: x(d), x2: x(d), y1: rateY - 8, y2: rateY + 8, class: "rate" }, title(`rate ${a.rate_code} since ${a.rate_since || a.active_date}`)));
    g.append(svg("text", { x: x(d) + 3, y: rateY + 4, class: "rate-label" }, a.rate_code));
  }

  // Interval coverage: a cell per day, complete or not.
  label(covY + 4, "intervals");
  cov.channels.forEach((c, i) => {
    const y = covY + i * 18 - 6;
    for (const d of c.days) {
      const dd = toDay(d.date);
      g.append(svg("rect", { x: x(dd), y, width: Math.max(1, x(dd + 1) - x(dd)), height: 12, class: d.missing === 0 ? "cov full" : "cov part" },
        title(`${d.date} ${c.channel || "main"}: ${d.present} intervals, ${d.missing} missing, ${d.estimated} estimated`)));
    }
  });
  if (!cov.channels.length) g.append(svg("text", { x: L, y: covY + 4, class: "tick" }, "no interval reads"));

  if (highlight && /^\d{4}-\d{2}-\d{2}$/.test(highlight)) {
    const hx = x(toDay(highlight));
    g.append(svg("line", { x1: hx, x2: hx, y1: usageTop - 10, y2: H - 24, class: "highlight" }));
    g.append(svg("text", { x: hx + 3, y: usageTop - 12, class: "highlight-label" }, highlight));
  }
  return el("figure", { class: "timeline" }, g);
}

// ---------- customer ----------

async function customerView(id) {
  const enc = encodeURIComponent(id);
  const c = await api("/v1/customers/" + enc);
  const premises = await Promise.all(c.premises.map(p => api("/v1/customers/" + enc + "/premises/" + encodeURIComponent(p.premise_id))));
  let eligible = 0, blocked = 0;
  for (const p of premises) for (const prog of p.programs) { if (prog.eligible) eligible++; else blocked++; }
  return el("section", { class: "customer" },
    el("h1", {}, "Customer ", el("span", { class: "id", "data-k": "customer-id" }, c.customer_id)),
    el("p", { class: "sub" }, "Partition " + c.partition),
    el("div", { class: "stats" },
      stat("premises", c.premises.length, "premises"),
      stat("active premises", c.active_premises, "active-premises"),
      stat("programs eligible", eligible, "eligible"),
      stat("programs blocked", blocked, "blocked")),
    c.property_manager ? el("p", { class: "warn" }, "Property manager: ", c.property_manager.code, " (", ruleLink(c.property_manager.rule), ") since ",
      c.property_manager.effective_date, " — ", sourceText(c.property_manager.source)) : null,
    premises.map(p => premiseBlock(p)));
}

function premiseBlock(p) {
  return el("article", { class: "premise", "data-premise": p.premise_id },
    el("h2", {}, "At premise ", el("a", { href: "#premise/" + encodeURIComponent(p.premise_id) }, p.premise_id)),
    p.evaluated ? null : el("p", { class: "warn" }, "Not evaluated yet: no usage has reached the customer stage for this premise."),
    table("programs", ["program", "eligible", "reason", "rule", "service point", "since", "until", "caused by"],
      p.programs.flatMap(prog => {
        if (!prog.reasons.length) {
          return [el("tr", { class: prog.eligible ? "ok" : "no", "data-program": prog.program },
            td(prog.program), td(prog.eligible ? "eligible" : "not eligible", { class: "verdict" }), td("—"), td(""), td(""), td(""), td(""), td(""))];
        }
        return prog.reasons.map((r, i) => el("tr", { class: prog.eligible ? "ok" : "no", "data-program": i ? null : prog.program },
          td(i ? "" : prog.program), td(i ? "" : (prog.eligible ? "eligible" : "not eligible"), { class: "verdict" }),
          td(r.code), td(ruleLink(r.rule)), td(r.service_point_id ? spLink(r.service_point_id, r.effective_date) : ""),
          td(r.effective_date), td(r.until || ""), td(sourceText(r.source), { class: "src" })));
      }), "no program evaluated"),
    el("h3", {}, "Service points"),
    table("memberships", ["service point", "type", "account", "active since", "active", "last bill", "chained months", "reasons"],
      p.service_points.map(m => el("tr", {}, td(spLink(m.service_point_id)), td(m.service_type || ""), td(m.account_id || ""), td(m.active_date || ""),
        td(m.deleted ? "deleted" : m.active ? "yes" : "no"), td(m.last_date_to || ""), td(m.chained_months, { class: "n" }),
        td(m.reasons.map((r, i) => [i ? ", " : "", r.code, " (", ruleLink(r.rule), ")"]), { class: "wrap" }))), "none"));
}

// ---------- premise ----------

async function premiseView(id) {
  const p = await api("/v1/premises/" + encodeURIComponent(id));
  const sps = new Set(p.members.map(m => m.service_point_id));
  const customers = new Set(p.members.map(m => m.customer_id));
  return el("section", { class: "premise-site" },
    el("h1", {}, "Premise ", el("span", { class: "id", "data-k": "premise-id" }, p.premise_id)),
    el("p", { class: "sub" }, "Partition " + p.partition),
    el("div", { class: "stats" }, stat("service points", sps.size, "service-points"), stat("customers", customers.size, "customers"),
      stat("active accounts", p.members.filter(m => m.active).length, "active")),
    table("members", ["service point", "type", "customer", "account", "active since", "active", "last bill"],
      p.members.map(m => el("tr", {}, td(spLink(m.service_point_id)), td(m.service_type || ""),
        td(el("a", { href: "#customer/" + encodeURIComponent(m.customer_id) }, m.customer_id)), td(m.account_id || ""), td(m.active_date || ""),
        td(m.deleted ? "deleted" : m.active ? "yes" : "no"), td(m.last_date_to || ""))), "no account"));
}

// ---------- files ----------

async function filesView() {
  const f = await api("/v1/files");
  // One row per ingestion of a file (its bytes and generation): its newest
  // event, RECEIVED while it is read, then COMPLETED or FAILED.
  const seen = new Set();
  const files = f.files.filter(x => {
    const k = x.sha256 + "/" + x.generation;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  const sum = k => files.reduce((n, x) => n + x[k], 0);
  return el("section", { class: "files" },
    el("h1", {}, "Files ingested"),
    el("div", { class: "stats" },
      stat("files", files.length, "files"),
      stat("rows read", sum("rows_read"), "rows-read"),
      stat("rows published", sum("rows_published"), "rows-published"),
      stat("rows rejected", sum("rows_rejected"), "rows-rejected"),
      stat("failed", files.filter(x => x.status === "FAILED").length, "failed"),
      stat("being read", files.filter(x => x.status === "RECEIVED").length, "receiving")),
    f.truncated ? el("p", { class: "warn" }, "Only the newest events are listed.") : null,
    table("files", ["time", "file", "kind", "status", "read", "published", "rejected", "rejected by code", "error"],
      files.map(x => el("tr", { class: "fs-" + x.status },
        td(x.event_time.replace("T", " ").replace("Z", "")), td(x.file, { class: "file" }), td(x.kind), td(x.status),
        td(num(x.rows_read), { class: "n" }), td(num(x.rows_published), { class: "n" }), td(num(x.rows_rejected), { class: "n" }),
        td(Object.entries(x.rejected_by_code).sort().map(([k, v]) => el("span", { class: "code" }, k + " " + v)), { class: "wrap" }), td(x.error || "", { class: "wrap" }))), "No file ingested yet."));
}

// ---------- stages ----------

async function stagesView() {
  const s = await api("/v1/stages");
  const aborted = st => Object.entries(st.aborted).filter(([, v]) => v > 0).sort().map(([k, v]) => k + " " + num(v)).join(", ") || "0";
  return el("section", { class: "stages" },
    el("h1", {}, "Stages"),
    el("p", { class: "sub" }, "This process's stages and sinks, from its metrics (refreshed every 5 s). Another instance shows its own."),
    table("stages", ["stage", "records in", "records out", "lag", "restore remaining", "restored", "transactions", "aborted", "quarantined", "restarts"],
      s.stages.map(st => el("tr", { "data-stage": st.stage, class: (st.lag > 0 ? "lagging " : "") + (st.restore_remaining > 0 ? "restoring" : "") },
        td(st.stage), td(num(st.records_in), { class: "n" }), td(num(st.records_out), { class: "n" }), td(num(st.lag), { class: "n" }),
        td(num(st.restore_remaining), { class: "n" }), td(num(st.restored), { class: "n" }), td(num(st.transactions_committed), { class: "n" }),
        td(aborted(st), { class: "wrap" }), td(num(st.quarantined), { class: "n" + (st.quarantined ? " bad" : "") }), td(num(st.restarts), { class: "n" }))),
      "No stage runs in this process."),
    el("h2", {}, "Sinks"),
    table("sinks", ["sink", "events", "lag", "write errors", "quarantined", "restarts"],
      s.sinks.map(k => el("tr", { "data-sink": k.sink }, td(k.sink), td(num(k.events), { class: "n" }), td(num(k.lag), { class: "n" }),
        td(num(k.write_errors), { class: "n" }), td(num(k.quarantined), { class: "n" }), td(num(k.restarts), { class: "n" }))),
      "No sink runs in this process."));
}

start();

// Cardinal's status page: reads /api/v1/stats and /metrics every 5 s and renders them.
// Everything the server returns is user data (metric and label names, label values, reasons):
// it goes into the page through textContent and setAttribute only, never as HTML.
'use strict';

const REFRESH_MS = 5000;
const FAMILIES = 25;      // families per refresh
const LABELS = 8;         // labels per family
const byId = (id) => document.getElementById(id);

// ---- small DOM helpers --------------------------------------------------------------------

function el(tag, opts, ...children) {
  const e = document.createElement(tag);
  if (opts) {
    if (opts.cls) e.className = opts.cls;
    if (opts.text !== undefined && opts.text !== null) e.textContent = String(opts.text);
    if (opts.title) e.title = String(opts.title);
    if (opts.attrs) for (const [k, v] of Object.entries(opts.attrs)) e.setAttribute(k, String(v));
  }
  for (const c of children) if (c) e.appendChild(c);
  return e;
}

// A name that may wrap after its underscores (metric names are long): text nodes and <wbr>.
function breakable(tag, cls, name) {
  const e = el(tag, { cls });
  const parts = String(name).split('_');
  parts.forEach((p, i) => {
    e.appendChild(document.createTextNode(i < parts.length - 1 ? p + '_' : p));
    if (i < parts.length - 1) e.appendChild(document.createElement('wbr'));
  });
  e.title = name;
  return e;
}

function setText(id, text) {
  byId(id).textContent = text;
}

// ---- formatting -------------------------------------------------------------------------

const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const compactFmt = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

function count(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return Math.abs(n) >= 1e6 ? compactFmt.format(n) : intFmt.format(n);
}

function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
}

function ago(ms) {
  if (!(ms >= 0)) return '';
  const s = Math.round(ms / 1000);
  if (s < 60) return s + 's ago';
  const m = Math.round(s / 60);
  if (m < 60) return m + 'm ago';
  const h = Math.round(m / 60);
  if (h < 48) return h + 'h ago';
  return Math.round(h / 24) + 'd ago';
}

function clock(date) {
  return date.toLocaleTimeString('en-GB', { hour12: false });
}

// "uuid 100%" from {"uuid": 1.0}; the two largest shares.
function shapeText(shapes) {
  const entries = Object.entries(shapes || {}).sort((a, b) => b[1] - a[1]);
  if (!entries.length) return '';
  return entries.slice(0, 2).map(([k, v]) => k + ' ' + Math.round(v * 100) + '%').join(', ');
}

// ---- Prometheus text exposition ---------------------------------------------------------

function parseMetrics(text) {
  const out = [];
  const lineRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = lineRe.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) for (const l of m[2].matchAll(labelRe)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

// Sum of the samples named `name` whose labels include `match`; null when there is none.
function metric(samples, name, match) {
  let found = false;
  let sum = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (match && !Object.entries(match).every(([k, v]) => s.labels[k] === v)) continue;
    found = true;
    sum += s.value;
  }
  return found ? sum : null;
}

function byLabel(samples, name, label) {
  const out = {};
  for (const s of samples)
    if (s.name === name && s.labels[label] !== undefined) out[s.labels[label]] = (out[s.labels[label]] || 0) + s.value;
  return out;
}

// ---- state ------------------------------------------------------------------------------

const state = {
  timer: null,
  inFlight: false,
  previous: null,  // {at, received, forwarded} for rates
};

function params() {
  return {
    family: byId('family-filter').value.trim(),
    decision: byId('decision-filter').value,
    tenant: byId('tenant-filter').value,
    sort: byId('sort').value,
  };
}

// With --tenant.header the stats rows name their tenant: the tenant filter appears and offers
// every tenant seen so far (and the one asked for in the query string).
function addTenantOption(name) {
  if (!name) return;
  const select = byId('tenant-filter');
  if (![...select.options].some((o) => o.value === name)) select.appendChild(el('option', { text: name, attrs: { value: name } }));
  byId('tenant-label').hidden = false;
}

// The filters live in the query string, so a reload or a shared link keeps them.
function saveParams() {
  const p = params();
  const q = new URLSearchParams();
  if (p.family) q.set('family', p.family);
  if (p.decision) q.set('decision', p.decision);
  if (p.tenant) q.set('tenant', p.tenant);
  if (p.sort !== 'series') q.set('sort', p.sort);
  const explain = byId('explain-input').value.trim();
  if (explain) q.set('explain', explain);
  const s = q.toString();
  history.replaceState(null, '', s ? '?' + s : location.pathname);
}

function loadParams() {
  const q = new URLSearchParams(location.search);
  byId('family-filter').value = q.get('family') || '';
  const d = q.get('decision') || '';
  if ([...byId('decision-filter').options].some((o) => o.value === d)) byId('decision-filter').value = d;
  const t = q.get('tenant') || '';
  addTenantOption(t);
  byId('tenant-filter').value = t;
  const s = q.get('sort') || 'series';
  if ([...byId('sort').options].some((o) => o.value === s)) byId('sort').value = s;
  byId('explain-input').value = q.get('explain') || '';
}

function setStatus(kind, text) {
  byId('status').dataset.state = kind;
  byId('status-text').textContent = text;
}

async function fetchJson(url) {
  const res = await fetch(url, { cache: 'no-store', headers: { Accept: 'application/json' } });
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    throw new Error(url.split('?')[0] + ': HTTP ' + res.status);
  }
  if (!res.ok || body.status !== 'success') throw new Error((body && body.error) || 'HTTP ' + res.status);
  return body.data;
}

async function fetchText(url) {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) throw new Error(url + ': HTTP ' + res.status);
  return res.text();
}

// ---- refresh ------------------------------------------------------------------------------

async function refresh() {
  if (state.inFlight) return;
  state.inFlight = true;
  const p = params();
  const q = new URLSearchParams({ limit: FAMILIES, labels: LABELS, top: 1, sort: p.sort });
  if (p.family) q.set('family', p.family);
  if (p.decision) q.set('decision', p.decision);
  if (p.tenant) q.set('tenant', p.tenant);
  try {
    const [stats, metricsText] = await Promise.all([
      fetchJson('/api/v1/stats?' + q.toString()).catch((e) => ({ error: e })),
      fetchText('/metrics').catch(() => null),
    ]);
    const samples = metricsText === null ? [] : parseMetrics(metricsText);
    renderSummary(stats.error ? null : stats, samples);
    const filterError = byId('filter-error');
    if (stats.error) {
      filterError.textContent = stats.error.message;
      filterError.hidden = false;
      setStatus('error', 'stats unavailable: ' + stats.error.message);
    } else {
      filterError.hidden = true;
      renderFamilies(stats);
      setStatus(metricsText === null ? 'error' : 'live',
                (metricsText === null ? '/metrics unavailable · ' : 'live · ') + 'updated ' + clock(new Date()));
    }
  } catch (e) {
    setStatus('error', 'cannot reach Cardinal: ' + e.message);
  } finally {
    state.inFlight = false;
  }
}

function renderSummary(stats, samples) {
  const received = metric(samples, 'cardinal_received_samples_total');
  const forwarded = metric(samples, 'cardinal_forwarded_samples_total');
  setText('samples-received', count(received));
  setText('samples-forwarded', count(forwarded));
  const now = Date.now();
  if (state.previous && received !== null && forwarded !== null && now > state.previous.at) {
    const secs = (now - state.previous.at) / 1000;
    const rin = Math.max(0, (received - state.previous.received) / secs);
    const rout = Math.max(0, (forwarded - state.previous.forwarded) / secs);
    setText('samples-rate', count(rin) + '/s in · ' + count(rout) + '/s out');
  } else if (received !== null) {
    setText('samples-rate', 'rates after the next refresh');
  }
  if (received !== null && forwarded !== null) state.previous = { at: now, received, forwarded };

  if (stats) {
    const t = stats.totals || {};
    const d = t.labels_by_decision || {};
    setText('labels-drop', count(d.drop || 0));
    setText('labels-normalize', count(d.normalize || 0));
    setText('labels-fold', count(d.fold || 0));
    setText('families-tracked', count(t.families_tracked));
    const mode = byId('mode');
    mode.textContent = stats.dry_run ? 'dry-run' : 'enforce';
    mode.className = 'big ' + (stats.dry_run ? 'bad' : 'ok');
    const used = t.memory_bytes || 0;
    const cap = t.memory_cap_bytes || 0;
    const meter = byId('memory-meter');
    meter.value = cap > 0 ? Math.min(1, used / cap) : 0;
    let mem = bytes(used) + ' of ' + bytes(cap) + ' memory';
    if (t.families_untracked) mem += ' · ' + count(t.families_untracked) + ' untracked';
    if (t.families_evicted) mem += ' · ' + count(t.families_evicted) + ' evicted';
    setText('memory', mem);
  }
  const rewritten = metric(samples, 'cardinal_cardinality_series_total', { result: 'rewritten' });
  const would = metric(samples, 'cardinal_cardinality_series_total', { result: 'would_rewrite' });
  if (rewritten !== null || would !== null) {
    let s = count(rewritten || 0) + ' series rewritten';
    if (would) s += ' · ' + count(would) + ' would be (dry-run)';
    setText('series-rewritten', s);
  }

  // A counter family with no series yet is absent from /metrics: 0 once /metrics answered.
  const orZero = (v) => (v === null && samples.length ? 0 : v);
  const redacted = orZero(metric(samples, 'cardinal_sanitize_redacted_total'));
  const exemplar = metric(samples, 'cardinal_sanitize_exemplar_labels_redacted_total');
  setText('redacted', count(redacted === null ? null : redacted + (exemplar || 0)));
  setText('normalized-values', count(orZero(metric(samples, 'cardinal_normalize_values_total'))));
  const bySource = byLabel(samples, 'cardinal_sanitize_redacted_total', 'method');
  const parts = Object.entries(bySource).filter(([, v]) => v > 0).map(([k, v]) => k + ' ' + count(v));
  if (exemplar) parts.push('exemplar labels ' + count(exemplar));
  setText('redacted-detail', parts.length ? parts.join(' · ') : 'nothing redacted yet');

  const ok = metric(samples, 'cardinal_config_last_reload_successful');
  const reload = byId('reload-status');
  reload.textContent = ok === null ? '–' : ok === 1 ? 'OK' : 'failed';
  reload.className = 'big ' + (ok === null ? '' : ok === 1 ? 'ok' : 'bad');
  setText('rules-loaded', count(orZero(metric(samples, 'cardinal_rules_loaded'))));
  const ts = metric(samples, 'cardinal_config_last_reload_success_timestamp_seconds');
  if (ts) {
    const at = new Date(ts * 1000);
    const sameDay = at.toDateString() === new Date(now).toDateString();
    const when = 'last success ' + (sameDay ? clock(at) : at.toISOString().slice(0, 10)) + ' (' + ago(now - at.getTime()) + ')';
    setText('reload-time', ok === 0 ? 'failing; ' + when + ' still applies' : when);
  }
}

function decisionBadge(l) {
  const b = el('span', { cls: 'badge ' + l.decision, text: l.decision });
  if (l.decision === 'normalize' && l.normalizer) b.appendChild(el('span', { cls: 'detail', text: ' · ' + l.normalizer }));
  if (l.decision === 'fold' && l.kept_values !== undefined)
    b.appendChild(el('span', { cls: 'detail', text: ' · top ' + l.kept_values }));
  return b;
}

function appliedCell(l, family) {
  if (l.decision === 'keep') {
    const td = el('td', { cls: 'applied muted', text: l.managed ? '–' : 'rule' });
    if (!l.managed) td.title = 'a rule or protection owns this label';
    return td;
  }
  if (l.enforced) return el('td', { cls: 'applied applied-enforced', text: 'enforced' });
  return el('td', { cls: 'applied applied-dry', text: family.mode === 'observe' ? 'observe' : 'dry-run' });
}

function renderFamilies(stats) {
  const body = byId('families-body');
  const rows = document.createDocumentFragment();
  const generated = Date.parse(stats.generated_at) || Date.now();
  for (const f of stats.families) addTenantOption(f.tenant);
  for (const f of stats.families) {
    const labels = f.labels.length ? f.labels : [null];
    const familyCell = el('td', { cls: 'family-cell', attrs: { rowspan: labels.length } },
      breakable('div', 'family-name', f.family),
      el('div', {
        cls: 'family-meta',
        text: (f.tenant ? 'tenant ' + f.tenant + ' · ' : '') +
              count(f.samples_in) + ' samples in · ' + count(f.samples_rewritten) + ' rewritten · ' + f.mode +
              (f.series_limit_unresolved ? ' · over series limit' : ''),
      }));
    const seriesCell = el('td', {
      cls: 'num', text: count(f.series_estimate), attrs: { rowspan: labels.length },
      title: 'label sets in the window (±' + Math.round(f.series_error * 100) + '%), limit ' + count(f.series_limit),
    });
    labels.forEach((l, i) => {
      const tr = el('tr', { cls: i === 0 ? 'first' : '', attrs: { 'data-family': f.family } });
      if (f.tenant) tr.setAttribute('data-tenant', f.tenant);
      if (i === 0) { tr.appendChild(familyCell); tr.appendChild(seriesCell); }
      if (!l) {
        tr.appendChild(el('td', { cls: 'muted', text: 'no labels tracked', attrs: { colspan: 7 } }));
        rows.appendChild(tr);
        return;
      }
      tr.setAttribute('data-label', l.label);
      tr.setAttribute('data-decision', l.decision);
      tr.appendChild(el('td', { cls: 'label-name', text: l.label }));
      tr.appendChild(el('td', {
        cls: 'num', text: count(l.distinct_estimate),
        title: 'limit ' + count(l.limit) + ' · ±' + Math.round(l.distinct_error * 100) + '%' +
               (l.normalized_distinct_estimate !== undefined ? ' · ' + count(l.normalized_distinct_estimate) + ' after normalizing' : ''),
      }));
      tr.appendChild(el('td', { cls: 'shape', text: shapeText(l.shapes), title: l.class }));
      tr.appendChild(el('td', {}, decisionBadge(l)));
      tr.appendChild(appliedCell(l, f));
      tr.appendChild(el('td', { cls: 'reason', text: l.reason || '' }));
      const since = l.since ? Date.parse(l.since) : NaN;
      tr.appendChild(el('td', { cls: 'since', text: Number.isNaN(since) ? '' : ago(generated - since), title: l.since || '' }));
      rows.appendChild(tr);
    });
  }
  body.replaceChildren(rows);
  byId('families-empty').hidden = stats.families.length > 0;
  let meta = count(stats.families_matching) + ' famil' + (stats.families_matching === 1 ? 'y' : 'ies') + ' matching';
  if (stats.truncated) meta += ', the first ' + stats.families.length + ' shown';
  const w = stats.window || {};
  const lim = stats.limits || {};
  meta += ' · window ' + Math.round((w.seconds || 0) / 60) + 'm · limits: identifier ' + count(lim.identifier) +
          ', enumerated ' + count(lim.enumerated) + ', series ' + count(lim.max_series);
  byId('families-meta').textContent = meta;
}

// ---- explain ------------------------------------------------------------------------------

function selectorText(labels) {
  const name = labels.__name__ || '';
  const rest = Object.entries(labels).filter(([k]) => k !== '__name__')
    .map(([k, v]) => k + '="' + String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"');
  return name + '{' + rest.join(', ') + '}';
}

async function explain() {
  const series = byId('explain-input').value.trim();
  const out = byId('explain-result');
  saveParams();
  if (!series) { out.replaceChildren(); return; }
  let data;
  try {
    const tenant = byId('tenant-filter').value;
    data = await fetchJson('/api/v1/stats/explain?series=' + encodeURIComponent(series) +
                           (tenant ? '&tenant=' + encodeURIComponent(tenant) : ''));
  } catch (e) {
    out.replaceChildren(el('p', { cls: 'error', text: e.message }));
    return;
  }
  const parts = [];
  parts.push(el('h4', { text: 'Output' }));
  parts.push(data.dropped
    ? el('div', { cls: 'explain-out dropped', text: 'dropped: the series is not forwarded' })
    : el('div', { cls: 'explain-out', text: selectorText(data.output || {}) }));

  const steps = el('tbody');
  for (const s of data.steps) {
    const labels = s.labels ? selectorText(s.labels) : (s.dropped ? 'dropped' : 'values hidden until the sanitize stage');
    steps.appendChild(el('tr', { attrs: { 'data-stage': s.stage } },
      el('td', { cls: 'label-name', text: s.stage }),
      el('td', { cls: s.changed ? 'yes' : 'no', text: s.changed ? 'changed' : 'unchanged' }),
      el('td', { cls: 'labels-cell' + (s.labels ? '' : ' muted'), text: labels })));
  }
  parts.push(el('h4', { text: 'Stages' }));
  parts.push(el('table', { attrs: { id: 'explain-steps' } },
    el('thead', {}, el('tr', {}, el('th', { text: 'Stage' }), el('th', { text: 'Result' }), el('th', { text: 'Labels after the stage' }))),
    steps));

  if (data.notes && data.notes.length) {
    parts.push(el('h4', { text: 'Notes' }));
    const ul = el('ul');
    for (const n of data.notes) ul.appendChild(el('li', { text: n }));
    parts.push(ul);
  }

  const c = data.cardinality || {};
  parts.push(el('h4', { text: 'Cardinality engine' }));
  parts.push(el('p', {
    cls: 'sub',
    text: 'family ' + (c.family || '?') + ' · type ' + (c.type || '?') + ' (from ' + (c.type_source || '?') + ') · ' +
          (c.tracked ? count(c.series_estimate) + ' series in the window' : 'not tracked yet'),
  }));
  if (c.labels && c.labels.length) {
    const tb = el('tbody');
    for (const l of c.labels) {
      tb.appendChild(el('tr', { attrs: { 'data-label': l.label, 'data-decision': l.decision } },
        el('td', { cls: 'label-name', text: l.label }),
        el('td', { cls: 'num', text: count(l.distinct_estimate) }),
        el('td', {}, decisionBadge(l)),
        el('td', { cls: 'applied', text: l.decision === 'keep' ? '–' : l.enforced ? 'enforced' : 'dry-run' }),
        el('td', { cls: 'reason', text: l.reason || '' })));
    }
    parts.push(el('table', {},
      el('thead', {}, el('tr', {}, el('th', { text: 'Label' }), el('th', { cls: 'num', text: 'Distinct' }),
        el('th', { text: 'Decision' }), el('th', { text: 'Applied' }), el('th', { text: 'Reason' }))),
      tb));
  }
  out.replaceChildren(...parts);
}

// ---- wiring -------------------------------------------------------------------------------

function schedule() {
  clearInterval(state.timer);
  state.timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
}

function init() {
  loadParams();
  let debounce = null;
  byId('family-filter').addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { saveParams(); refresh(); schedule(); }, 300);
  });
  for (const id of ['decision-filter', 'tenant-filter', 'sort'])
    byId(id).addEventListener('change', () => { saveParams(); refresh(); schedule(); });
  byId('filters').addEventListener('submit', (e) => e.preventDefault());
  byId('explain-form').addEventListener('submit', (e) => { e.preventDefault(); explain(); });
  // Clicking a family puts its name into the explain box.
  byId('families-body').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-family]');
    if (!tr || !e.target.closest('.family-name')) return;
    byId('explain-input').value = tr.getAttribute('data-family') + '{}';
    byId('explain-input').focus();
  });
  refresh();
  schedule();
  if (byId('explain-input').value) explain();
}

document.addEventListener('DOMContentLoaded', init);

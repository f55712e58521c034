// The tidewater operator console: reads GET /console/overview every 2 s and
// the last hour of samples from GET /console/history; actions go through the admin API.
import { h, render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import uPlot from 'uplot';

const html = htm.bind(h);
const POLL_MS = 2000;

function token() {
  return sessionStorage.getItem('cdc-token') || '';
}

async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token()) headers.authorization = `Bearer ${token()}`;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status}: ${payload.error || 'no details'}${response.status === 401 ? ' — enter the admin token above' : ''}`);
  return payload;
}

const number = (n, digits = 0) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const seconds = (s) => (s === null || s === undefined ? '–' : s < 60 ? `${number(s, 1)} s` : s < 3600 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${number(s / 3600, 1)} h`);
const bytes = (b) => {
  if (b === null || b === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) (b /= 1024), i++;
  return `${number(b, i ? 1 : 0)} ${units[i]}`;
};
const eta = (s) => (s === null || s === undefined ? 'ETA unknown yet' : s <= 0 ? 'done' : `ETA ${seconds(s)}`);

function State({ state }) {
  return html`<span class="state state-${state}" data-state=${state}>${state}</span>`;
}

function Bar({ percent, label, testid }) {
  const unknown = percent === null || percent === undefined;
  const cls = `bar${unknown ? ' unknown' : percent >= 100 ? ' done' : ''}`;
  return html`<div class=${cls} data-testid=${testid} data-percent=${unknown ? '' : percent}>
    <div style=${`width: ${unknown ? 30 : Math.min(100, percent)}%`}></div><span>${label ?? (unknown ? '…' : `${number(percent, percent >= 100 ? 0 : 1)} %`)}</span>
  </div>`;
}

function Pipeline({ data }) {
  const sinkState = (s) => (s.state === 'streaming' && s.tables.some((t) => t.paused) ? 'paused' : s.state);
  return html`<section><h2>Pipeline</h2><div class="pipeline">
    <div class="column">${data.sources.map((s) => html`<div class="node state-${s.state}" data-testid="node-source-${s.name}">
      <div class="name">${s.name} <${State} state=${s.state} /></div>
      <div class="facts">lag ${seconds(s.lagSeconds)} · ${number(s.eventsPerSecond, 1)} events/s · backlog ${bytes(s.backlogBytes)}</div>
      ${s.lastError && html`<div class="error" data-testid="last-error">${s.since ? `since ${new Date(s.since).toLocaleTimeString()}: ` : ''}${s.lastError}</div>`}
    </div>`)}</div>
    <div class="arrow">→</div>
    <div class="column"><div class="node log" data-testid="node-log">
      <div class="name">log <span class="muted">(${data.log.type})</span></div>
      <div class="facts">${data.log.partitions} partitions · ${number(data.log.endOffsets.reduce((a, b) => a + b, 0))} records · ${bytes(data.log.sizeBytes)}</div>
    </div></div>
    <div class="arrow">→</div>
    <div class="column">${data.sinks.map((s) => html`<div class="node state-${sinkState(s)}" data-testid="node-sink-${s.name}">
      <div class="name">${s.name} <${State} state=${sinkState(s)} /></div>
      <div class="facts">lag ${number(s.lagEvents)} events / ${seconds(s.lagSeconds)} · ${number(s.eventsPerSecond, 1)} events/s</div>
      ${s.tables.filter((t) => t.paused).map((t) => html`<div class="facts">paused: ${t.table}, ${number(t.heldEvents)} change(s) held</div>`)}
      ${s.lastError && html`<div class="error" data-testid="last-error">${s.since ? `since ${new Date(s.since).toLocaleTimeString()}: ` : ''}${s.lastError}</div>`}
    </div>`)}</div>
  </div></section>`;
}

function Sources({ data, act }) {
  return html`<section><h2>Sources</h2>
    <table><thead><tr><th>source</th><th>state</th><th>position</th><th class="num">lag</th><th class="num">backlog</th><th class="num">events/s</th><th class="num">events</th></tr></thead>
    <tbody>${data.sources.map((s) => html`<tr data-testid="source-${s.name}">
      <td><b>${s.name}</b></td><td><${State} state=${s.state} /></td><td class="mono">${s.position ?? '–'}</td>
      <td class="num" data-testid="source-lag">${seconds(s.lagSeconds)}</td><td class="num" data-testid="source-backlog">${bytes(s.backlogBytes)}</td>
      <td class="num">${number(s.eventsPerSecond, 1)}</td><td class="num" data-testid="source-events" data-value=${s.eventsTotal}>${number(s.eventsTotal)}</td>
    </tr>`)}</tbody></table>
    ${data.sources.map((s) => html`<h3>${s.name}: tables</h3>
      <table><thead><tr><th>table</th><th>snapshot</th><th>resync</th><th>actions</th></tr></thead><tbody>
      ${s.tables.map((t) => html`<${SourceTable} source=${s} table=${t} act=${act} />`)}
      </tbody></table>`)}
  </section>`;
}

function SourceTable({ source, table, act }) {
  const [where, setWhere] = useState('');
  const snap = table.snapshot;
  const resync = table.resync;
  return html`<tr data-testid="table-${source.name}-${table.table}">
    <td>${table.table}</td>
    <td>${snap ? html`<${Bar} percent=${snap.percent} testid="snapshot-bar" label=${`${number(snap.rows)}${snap.total ? ` / ${number(snap.total)}` : ''} rows · ${eta(snap.etaSeconds)}`} />` : html`<span class="muted">–</span>`}</td>
    <td>${resync
      ? html`<${Bar} percent=${resync.percent} testid="resync-bar" label=${`${resync.queued ? 'queued · ' : ''}${number(resync.rows)}${resync.total ? ` / ${number(resync.total)}` : ''} rows · ${eta(resync.etaSeconds)}`} />`
      : html`<span class="muted">–</span>`}</td>
    <td><div class="actions">
      <input class="where" placeholder="optional WHERE" value=${where} onInput=${(e) => setWhere(e.target.value)} data-testid="resync-where" />
      <button class="primary" data-testid="resync-button" onClick=${() => act(`resync ${table.table}`, 'POST', '/api/resync', { source: source.name, tables: [table.table], where: where || undefined })}>Resync</button>
      ${resync && html`<button class="danger" data-testid="resync-cancel" onClick=${() => act(`cancel resync ${resync.requestId}`, 'POST', '/api/resync/cancel', { source: source.name, requestId: resync.requestId })}>Cancel</button>`}
    </div></td>
  </tr>`;
}

function Resyncs({ data, act }) {
  if (!data.resyncs.length) return null;
  const progressOf = (r, t) => {
    if (t.state === 'done') return 100;
    const view = data.sources.find((s) => s.name === r.source)?.tables.find((x) => x.table === t.table)?.resync;
    return view && view.requestId === r.requestId ? view.percent : t.state === 'running' ? null : 0;
  };
  return html`<section><h2>Resyncs requested here</h2>
    <table><thead><tr><th>request</th><th>source</th><th>table</th><th>where</th><th>state</th><th class="num">rows</th><th>progress</th><th></th></tr></thead><tbody>
    ${data.resyncs.slice().reverse().flatMap((r) => r.tables.map((t) => html`<tr data-testid="resync-${r.requestId}-${t.table}">
      <td class="mono">${r.requestId.slice(0, 8)}</td><td>${r.source}</td><td>${t.table}</td><td class="mono">${r.where ?? ''}</td>
      <td><${State} state=${t.state} /></td><td class="num">${number(t.rows)}</td>
      <td><${Bar} percent=${progressOf(r, t)} testid="resync-request-bar" /></td>
      <td>${t.state !== 'done' && t.state !== 'cancelled' && html`<button class="danger" onClick=${() => act(`cancel resync ${r.requestId}`, 'POST', '/api/resync/cancel', { source: r.source, requestId: r.requestId })}>Cancel</button>`}</td>
    </tr>`))}
    </tbody></table></section>`;
}

function Log({ log }) {
  return html`<section data-testid="log"><h2>Log</h2>
    <table><tbody>
      <tr><th>type</th><td>${log.type}</td><th>partitions</th><td data-testid="log-partitions">${log.partitions}</td></tr>
      <tr><th>size on disk</th><td data-testid="log-size">${bytes(log.sizeBytes)}</td><th>disk free</th><td>${bytes(log.diskFreeBytes)}</td></tr>
      <tr><th>last compaction</th><td colspan="3">${log.lastCompaction ? `${log.lastCompaction.at} (partition ${log.lastCompaction.partition})` : 'none since the service started'}</td></tr>
      <tr><th>end offsets</th><td colspan="3"><div class="offsets">${log.endOffsets.map((o, p) => html`<span data-testid="log-end-${p}" data-value=${o}>p${p}: ${number(o)}</span>`)}</div></td></tr>
    </tbody></table></section>`;
}

function Sinks({ data, act }) {
  const [letters, setLetters] = useState({});
  const showLetters = async (sink) => {
    if (letters[sink]) return setLetters({ ...letters, [sink]: undefined });
    try {
      setLetters({ ...letters, [sink]: await api('GET', `/api/dead-letters?sink=${encodeURIComponent(sink)}&limit=50`) });
    } catch (error) {
      act.report(false, error.message);
    }
  };
  return html`<section><h2>Sinks</h2>
    <table><thead><tr><th>sink</th><th>state</th><th class="num">lag events</th><th class="num">lag</th><th class="num">events/s</th><th class="num">applied</th><th>generation</th><th>reprocess</th><th class="num">dead letters</th><th></th></tr></thead>
    <tbody>${data.sinks.map((s) => html`<tr data-testid="sink-${s.name}">
      <td><b>${s.name}</b></td><td><${State} state=${s.state} />${s.tables.some((t) => t.paused) ? html` <span class="muted">${s.tables.filter((t) => t.paused).length} table(s) paused</span>` : ''}</td>
      <td class="num" data-testid="sink-lag-events" data-value=${s.lagEvents}>${number(s.lagEvents)}</td>
      <td class="num" data-testid="sink-lag-seconds">${seconds(s.lagSeconds)}</td>
      <td class="num">${number(s.eventsPerSecond, 1)}</td>
      <td class="num" data-testid="sink-events" data-value=${s.eventsTotal}>${number(s.eventsTotal)}</td>
      <td>${s.generation ?? '–'}</td>
      <td>${s.reprocess
        ? html`<${Bar} percent=${s.reprocess.percent} testid="reprocess-bar" label=${`gen ${s.reprocess.generation} ${s.reprocess.phase}: ${number(s.reprocess.percent, 1)} % · ${eta(s.reprocess.etaSeconds)}`} />`
        : html`<span class="muted">–</span>`}</td>
      <td class="num"><button onClick=${() => showLetters(s.name)} data-testid="dead-letters-button">${number(s.deadLetters)}</button></td>
      <td><button onClick=${() => confirm(`Rebuild sink ${s.name} from log offset zero into a new generation?`) && act(`reprocess ${s.name}`, 'POST', '/api/reprocess', { sink: s.name })}>Reprocess</button></td>
    </tr>${s.lastError && html`<tr><td></td><td colspan="9" class="error-row">${s.since ? `${s.state} since ${new Date(s.since).toLocaleTimeString()}: ` : ''}${s.lastError}</td></tr>`}`)}</tbody></table>
    ${data.sinks.map((s) => html`
      ${letters[s.name] && html`<h3>${s.name}: last ${letters[s.name].letters.length} dead letters <span class="muted">(${number(letters[s.name].total)} counted since the service started; file ${letters[s.name].file})</span></h3>
        <table class="letters"><thead><tr><th>time</th><th>table</th><th>key</th><th>position</th><th>reason</th></tr></thead><tbody>
        ${letters[s.name].letters.length === 0 ? html`<tr><td colspan="5" class="muted">none</td></tr>` : letters[s.name].letters.slice().reverse().map((l) => html`<tr>
          <td>${l.time}</td><td>${l.table}</td><td class="mono">${l.key}</td><td class="mono">${l.position}</td><td>${l.reason}</td></tr>`)}
        </tbody></table>`}
      <h3>${s.name}: tables</h3>
      <table><thead><tr><th>table</th><th>state</th><th class="num">held changes</th><th></th></tr></thead><tbody>
      ${s.tables.map((t) => html`<tr data-testid="sink-table-${s.name}-${t.table}">
        <td>${t.table}</td><td><${State} state=${t.paused ? 'paused' : 'flowing'} />${t.since && html` <span class="muted">since ${new Date(t.since).toLocaleString()}</span>`}</td>
        <td class="num">${t.paused ? number(t.heldEvents) : ''}</td>
        <td>${t.paused
          ? html`<button class="primary" data-testid="resume-button" onClick=${() => act(`resume ${t.table}`, 'POST', '/api/resume', { table: t.table, sink: s.name })}>Resume</button>`
          : html`<button data-testid="pause-button" onClick=${() => act(`pause ${t.table}`, 'POST', '/api/pause', { table: t.table, sink: s.name })}>Pause</button>`}</td>
      </tr>`)}</tbody></table>`)}
  </section>`;
}

function Chart({ title, series, testid }) {
  const ref = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const names = series.names;
    const width = Math.max(300, ref.current.clientWidth);
    const colors = ['#2563eb', '#12805c', '#b45309', '#7c3aed', '#b42318', '#0e7490'];
    if (!plot.current || plot.current.series.length !== names.length + 1) {
      plot.current?.destroy();
      plot.current = new uPlot(
        { width, height: 220, series: [{}, ...names.map((name, i) => ({ label: name, stroke: colors[i % colors.length], width: 2 }))], axes: [{}, { size: 60 }], legend: { show: true } },
        series.data,
        ref.current,
      );
    } else plot.current.setData(series.data);
  }, [series]);
  useEffect(() => () => plot.current?.destroy(), []);
  return html`<div class="chart" data-testid=${testid}><h3>${title}</h3><div ref=${ref}></div></div>`;
}

function Charts({ history }) {
  if (!history || history.points.length < 2) return html`<section><h2>Last hour</h2><p class="muted">Collecting samples (one every 5 s): the charts appear with the second.</p></section>`;
  const points = history.points;
  const t = points.map((p) => p.t / 1000);
  const sourceNames = [...new Set(points.flatMap((p) => Object.keys(p.sources)))];
  const sinkNames = [...new Set(points.flatMap((p) => Object.keys(p.sinks)))];
  const lag = {
    names: [...sourceNames.map((n) => `source ${n} (s)`), ...sinkNames.map((n) => `sink ${n} (s)`)],
    data: [t, ...sourceNames.map((n) => points.map((p) => p.sources[n]?.lagSeconds ?? null)), ...sinkNames.map((n) => points.map((p) => p.sinks[n]?.lagSeconds ?? null))],
  };
  const rate = (get) => points.map((p, i) => (i === 0 ? null : Math.max(0, ((get(p) ?? 0) - (get(points[i - 1]) ?? 0)) / ((p.t - points[i - 1].t) / 1000))));
  const throughput = {
    names: [...sourceNames.map((n) => `source ${n}`), ...sinkNames.map((n) => `sink ${n}`)],
    data: [t, ...sourceNames.map((n) => rate((p) => p.sources[n]?.eventsTotal)), ...sinkNames.map((n) => rate((p) => p.sinks[n]?.eventsTotal))],
  };
  return html`<section><h2>Last hour <span class="muted">(${points.length} samples, every 5 s)</span></h2><div class="charts">
    <${Chart} title="Lag (seconds)" series=${lag} testid="chart-lag" />
    <${Chart} title="Throughput (events/s)" series=${throughput} testid="chart-throughput" />
  </div></section>`;
}

function App() {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [history, setHistory] = useState(null);
  const [message, setMessage] = useState(null);
  const [tokenText, setTokenText] = useState(token());

  const refresh = async () => {
    try {
      setData(await api('GET', '/console/overview'));
      setError(null);
    } catch (e) {
      setError(e.message);
    }
  };
  const refreshHistory = async () => {
    try {
      setHistory(await api('GET', '/console/history'));
    } catch {
      /* the overview shows the same problem */
    }
  };
  useEffect(() => {
    refresh();
    refreshHistory();
    const a = setInterval(refresh, POLL_MS);
    const b = setInterval(refreshHistory, 5000);
    return () => (clearInterval(a), clearInterval(b));
  }, []);

  const report = (ok, text) => setMessage({ ok, text, at: Date.now() });
  const act = async (what, method, path, body) => {
    try {
      const result = await api(method, path, body);
      const outcome = Array.isArray(result.cancelled)
        ? `done (removed ${result.cancelled.join(', ') || 'nothing: it had finished'})`
        : result.requestId
        ? `request ${result.requestId} queued`
        : result.generation
          ? `building generation ${result.generation} from log offset zero; the live generation serves until the switch`
          : Array.isArray(result.paused)
            ? `done (paused now: ${result.paused.map((p) => `${p.table}${p.sink ? ` for ${p.sink}` : ''}`).join(', ') || 'none'})`
            : 'done';
      report(true, `${what}: ${outcome}`);
      refresh();
    } catch (e) {
      report(false, `${what} failed: ${e.message}`);
    }
  };
  act.report = report;

  return html`<header>
      <h1>tidewater</h1><span class="service" data-testid="service">${data?.service ?? ''}</span>
      <span class="spacer"></span>
      <span class="updated" data-testid="updated">${data ? `updated ${new Date(data.now).toLocaleTimeString()}` : ''}</span>
      <input type="password" placeholder="admin token (if set)" value=${tokenText}
        onChange=${(e) => (setTokenText(e.target.value), sessionStorage.setItem('cdc-token', e.target.value), refresh())} />
    </header>
    <main>
      ${error && html`<div class="message error" data-testid="error">${error}</div>`}
      ${message && html`<div class="message ${message.ok ? 'ok' : 'error'}" data-testid="message">${message.text}</div>`}
      ${data
        ? html`<${Pipeline} data=${data} /><${Sources} data=${data} act=${act} /><${Resyncs} data=${data} act=${act} />
               <${Sinks} data=${data} act=${act} /><${Log} log=${data.log} /><${Charts} history=${history} />`
        : !error && html`<p class="loading">Loading…</p>`}
    </main>`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);

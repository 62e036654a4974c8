/**
 * A DAG's graph as SVG from the server's layout, with zoom (wheel, buttons) and pan (drag). Zoomed out,
 * nodes are drawn as one path per state (a 10,000-task graph is a few elements); zoomed in, only the
 * nodes in view are drawn, with their names, and can be clicked.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { STATE_COLORS } from './util.js';

export interface Layout {
  width: number;
  height: number;
  nodes: Array<{ id: string; x: number; y: number; w: number; h: number; operator: string }>;
  edges: Array<{ from: string; to: string; points: number[] }>;
  algorithm: string;
}

const DETAIL_SCALE = 0.45;

export function Graph(p: {
  layout: Layout;
  states?: Record<string, string>;
  selected?: string | null;
  onSelect?: (id: string) => void;
  height?: number;
}) {
  const { layout } = p;
  const box = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(900);
  // Small graphs get a short box; big ones 460 px to zoom and pan in.
  const H = p.height ?? Math.max(140, Math.min(460, layout.height + 50));
  const [view, setView] = useState<{ k: number; x: number; y: number } | null>(null);
  useEffect(() => {
    const w = box.current?.clientWidth ?? 900;
    setWidth(w);
    const fit = Math.min(w / (layout.width + 20), H / (layout.height + 20), 1.2);
    // A huge graph starts readable at its top left rather than as a speck.
    const k = Math.max(fit, Math.min(0.6, 1));
    setView({
      k,
      x: fit === k ? (w - layout.width * k) / 2 : 10,
      y: fit === k ? (H - layout.height * k) / 2 : 10,
    });
  }, [layout]);
  // Each edge's path and bounding box, once per layout; drawn zoomed in only when in view.
  const edgePaths = useMemo(
    () =>
      layout.edges.map((e) => {
        const pts = e.points;
        let d = `M${pts[0]} ${pts[1]}`;
        let x0 = Infinity,
          y0 = Infinity,
          x1 = -Infinity,
          y1 = -Infinity;
        for (let i = 0; i < pts.length; i += 2) {
          if (i > 0) d += `L${pts[i]} ${pts[i + 1]}`;
          x0 = Math.min(x0, pts[i]!);
          x1 = Math.max(x1, pts[i]!);
          y0 = Math.min(y0, pts[i + 1]!);
          y1 = Math.max(y1, pts[i + 1]!);
        }
        return { d, x0, y0, x1, y1 };
      }),
    [layout],
  );
  const allEdges = useMemo(() => edgePaths.map((e) => e.d).join(''), [edgePaths]);
  const drag = useRef<{ x: number; y: number } | null>(null);
  // For the benchmark (bench/b8-dashboard.ts): when the graph was first drawn, since navigation.
  useEffect(() => {
    if (view && performance.getEntriesByName('airtasks:graph-drawn').length === 0)
      performance.mark('airtasks:graph-drawn');
  }, [view]);
  if (!view) return <div ref={box} class="graph" style={{ height: H }} />;
  const { k } = view;
  const x0 = -view.x / k;
  const y0 = -view.y / k;
  const x1 = x0 + width / k;
  const y1 = y0 + H / k;
  const colorOf = (id: string, op: string) =>
    p.states ? (STATE_COLORS[p.states[id] ?? 'none'] ?? '#ccc') : op === 'docker' ? '#cfe3ff' : '#e8ecf3';
  const zoom = (f: number, cx = width / 2, cy = H / 2) =>
    setView((v) => {
      if (!v) return v;
      const nk = Math.min(3, Math.max(0.005, v.k * f));
      return { k: nk, x: cx - ((cx - v.x) * nk) / v.k, y: cy - ((cy - v.y) * nk) / v.k };
    });
  let body;
  if (k < DETAIL_SCALE) {
    const byColor = new Map<string, string>();
    for (const n of layout.nodes) {
      const c = colorOf(n.id, n.operator);
      byColor.set(c, (byColor.get(c) ?? '') + `M${n.x} ${n.y}h${n.w}v${n.h}h${-n.w}z`);
    }
    body = [...byColor].map(([c, d]) => <path key={c} d={d} fill={c} stroke="#555" stroke-width={1 / k} />);
  } else {
    body = layout.nodes
      .filter((n) => n.x + n.w >= x0 && n.x <= x1 && n.y + n.h >= y0 && n.y <= y1)
      .map((n) => (
        <g
          key={n.id}
          class="node"
          data-task={n.id}
          onClick={() => p.onSelect?.(n.id)}
          transform={`translate(${n.x},${n.y})`}
        >
          <rect
            width={n.w}
            height={n.h}
            rx={4}
            fill={colorOf(n.id, n.operator)}
            stroke={p.selected === n.id ? '#111' : '#777'}
            stroke-width={p.selected === n.id ? 2.5 : 1}
          />
          <text
            x={8}
            y={n.h / 2 + 4}
            class={
              p.states && ['success', 'failed', 'running', 'cancelled'].includes(p.states[n.id] ?? '')
                ? 'on-dark'
                : ''
            }
          >
            {n.id.length > 34 ? n.id.slice(0, 33) + '…' : n.id}
          </text>
          <title>{`${n.id} (${n.operator})${p.states ? ': ' + (p.states[n.id] ?? 'none') : ''}`}</title>
        </g>
      ));
  }
  return (
    <div ref={box} class="graph" style={{ height: H }} data-testid="graph">
      <div class="graph-tools">
        <button onClick={() => zoom(1.25)} title="Zoom in">
          +
        </button>
        <button onClick={() => zoom(0.8)} title="Zoom out">
          −
        </button>
        <button
          onClick={() => {
            const fit = Math.min(width / (layout.width + 20), H / (layout.height + 20), 1.2);
            setView({ k: fit, x: (width - layout.width * fit) / 2, y: (H - layout.height * fit) / 2 });
          }}
          title="Fit the whole graph"
        >
          fit
        </button>
        <span class="muted">
          {layout.nodes.length} tasks · {layout.algorithm} layout
        </span>
      </div>
      <svg
        width={width}
        height={H}
        onWheel={(e) => {
          e.preventDefault();
          const r = (e.currentTarget as SVGElement).getBoundingClientRect();
          zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - r.left, e.clientY - r.top);
        }}
        onMouseDown={(e) => (drag.current = { x: e.clientX, y: e.clientY })}
        onMouseMove={(e) => {
          const d = drag.current;
          if (!d) return;
          drag.current = { x: e.clientX, y: e.clientY };
          setView((v) => v && { ...v, x: v.x + e.clientX - d.x, y: v.y + e.clientY - d.y });
        }}
        onMouseUp={() => (drag.current = null)}
        onMouseLeave={() => (drag.current = null)}
      >
        <g transform={`translate(${view.x},${view.y}) scale(${k})`}>
          <path
            d={
              k < DETAIL_SCALE
                ? allEdges
                : edgePaths
                    .filter((e) => e.x1 >= x0 && e.x0 <= x1 && e.y1 >= y0 && e.y0 <= y1)
                    .map((e) => e.d)
                    .join('')
            }
            fill="none"
            stroke="#9aa1ab"
            stroke-width={1 / Math.min(1, k)}
          />
          {body}
        </g>
      </svg>
    </div>
  );
}

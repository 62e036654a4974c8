/** A DAG's graph laid out for an SVG: dagre's layered layout, left to right. */
import dagre from '@dagrejs/dagre';

export interface LayoutInput {
  tasks: Array<{ taskId: string; upstream: string[]; operator: string }>;
}

export interface GraphLayout {
  width: number;
  height: number;
  nodes: Array<{ id: string; x: number; y: number; w: number; h: number; operator: string }>;
  /** Each edge as points (x1,y1,x2,y2,...), from upstream to downstream. */
  edges: Array<{ from: string; to: string; points: number[] }>;
  algorithm: 'dagre' | 'layered';
}

export const NODE_H = 28;
export const nodeWidth = (id: string) => Math.min(260, 24 + id.length * 7);

export function dagreLayout(input: LayoutInput): GraphLayout {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 12, ranksep: 48, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const t of input.tasks) g.setNode(t.taskId, { width: nodeWidth(t.taskId), height: NODE_H });
  for (const t of input.tasks) for (const u of t.upstream) g.setEdge(u, t.taskId);
  dagre.layout(g);
  const op = new Map(input.tasks.map((t) => [t.taskId, t.operator]));
  const graph = g.graph();
  return {
    width: Math.ceil(graph.width ?? 0),
    height: Math.ceil(graph.height ?? 0),
    nodes: g.nodes().map((id: string) => {
      const n = g.node(id);
      return {
        id,
        x: n.x - n.width / 2,
        y: n.y - n.height / 2,
        w: n.width,
        h: n.height,
        operator: op.get(id) ?? '',
      };
    }),
    edges: g.edges().map((e: { v: string; w: string }) => ({
      from: e.v,
      to: e.w,
      points: (g.edge(e).points ?? []).flatMap((p: { x: number; y: number }) => [
        Math.round(p.x),
        Math.round(p.y),
      ]),
    })),
    algorithm: 'dagre',
  };
}

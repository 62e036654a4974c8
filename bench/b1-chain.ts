/**
 * B1 chain latency: a 50-task linear DAG of no-op tasks, run after run. The gap from a task's end to the
 * next one's start, start-to-start per link, and trigger -> first task start; peers run the same chain.
 * Every system's tasks record their own start and end (the engine's timestamps would not show the time
 * between a task's code returning and its result being stored, nor between a claim and the next code).
 */
import { chainDagSource, type Benchmark, type BenchContext } from './context.js';
import { timeout, withEnv } from './engine.js';
import { celeryChain, celeryMissing } from './peers/celery.js';
import { graphileChain, type ChainTimes } from './peers/graphile.js';
import { atMost, mean, quantile, skipped, type Figure } from './stats.js';

const LENGTH = 50;
/**
 * More API triggers, for trigger -> first start alone (a 2-task chain each): the chains' few API-triggered
 * runs cannot show a change of half a millisecond on a noisy machine.
 */
const FIRST_STARTS = { quick: 10, full: 40 };

export interface ChainSummary {
  gapP50: number;
  gapP99: number;
  perLink: number;
  triggerToFirst: number;
}

/** Summarises chains: every link's gap pooled across runs; per link and trigger latency averaged over runs. */
export function summarizeChains(t: ChainTimes): ChainSummary {
  const gaps: number[] = [];
  const perLink: number[] = [];
  const first: number[] = [];
  for (const r of t.runs) {
    const l = r.links;
    for (let i = 1; i < l.length; i++) gaps.push(l[i]!.start - l[i - 1]!.end);
    perLink.push((l[l.length - 1]!.start - l[0]!.start) / (l.length - 1));
    first.push(l[0]!.start - r.triggered);
  }
  return {
    gapP50: quantile(gaps, 0.5),
    gapP99: quantile(gaps, 0.99),
    perLink: mean(perLink),
    triggerToFirst: quantile(first, 0.5),
  };
}

async function airtasksChain(ctx: BenchContext, runs: number): Promise<AirtasksChains> {
  return withEnv(async (e) => {
    const dag = (await e.addDagFile('chain.ts', chainDagSource('chain', LENGTH))).get('chain')!;
    const short = (await e.addDagFile('short.ts', chainDagSource('short', 2))).get('short')!;
    await e.scheduler();
    await e.worker(1);
    const out: AirtasksChains = { runs: [], published: [], apiFirstStarts: [] };
    for (let r = 0; r <= runs; r++) {
      // Every other run is triggered as the API triggers (a process with its broker open, sending the first
      // message itself); the others with `airtasks trigger dag`, a process of its own.
      const publish = r % 2 === 0;
      const id = publish ? (await e.trigger(dag, 1, { publish }))[0] : await e.triggerCli(dag);
      await e.waitRuns([id!], 60_000);
      if (r === 0) continue; // warms up: the worker imports the DAG file on its first task
      const [run] = await e.runTimes([id!]);
      const links = (await e.taskOutputs<{ start: number; end: number }>([id!]))
        .sort((a, b) => Number(a.task_id.slice(1)) - Number(b.task_id.slice(1)))
        .map((t) => t.output);
      out.runs.push({ triggered: run!.created, links });
      out.published.push(publish);
    }
    const firstStarts = ctx.quick ? FIRST_STARTS.quick : FIRST_STARTS.full;
    for (let r = 0; r <= firstStarts; r++) {
      const [id] = await e.trigger(short, 1, { publish: true });
      await e.waitRuns([id!], 60_000);
      if (r === 0) continue; // the worker imports the DAG file on its first task
      const [run] = await e.runTimes([id!]);
      const first = (await e.taskOutputs<{ start: number }>([id!])).find((t) => t.task_id === 't0')!;
      out.apiFirstStarts.push(first.output.start - run!.created);
    }
    ctx.log(`  airtasks: ${runs} chains and ${firstStarts} API triggers done`);
    return out;
  });
}

interface AirtasksChains extends ChainTimes {
  /** Per run: whether the triggering process sent its first message (as the API does). */
  published: boolean[];
  /** Trigger -> first start of the extra API-triggered runs (FIRST_STARTS). */
  apiFirstStarts: number[];
}

export const b1: Benchmark = {
  id: 'b1',
  title: 'B1 chain latency',
  timeoutMs: (quick) => (quick ? 90_000 : 240_000),
  async run(ctx) {
    const runs = ctx.quick ? 5 : 20;
    const B = 'B1 chain';
    const pg = { name: 'pg commit', value: ctx.floors.pgCommitMs };
    const chains = await airtasksChain(ctx, runs);
    const a = summarizeChains(chains);
    // Trigger to first start by the way the run was triggered (summarizeChains pools them all); the API's
    // with the extra API-triggered runs.
    const firstBy = (published: boolean) =>
      quantile(
        chains.runs
          .filter((_, i) => chains.published[i] === published)
          .map((r) => r.links[0]!.start - r.triggered)
          .concat(published ? chains.apiFirstStarts : []),
        0.5,
      );
    const figures: Figure[] = [
      {
        bench: B,
        metric: 'gap end->next start p50',
        value: a.gapP50,
        unit: 'ms',
        baseline: pg,
        target: atMost(a.gapP50, 3, '<= 3 ms'),
      },
      {
        bench: B,
        metric: 'gap end->next start p99',
        value: a.gapP99,
        unit: 'ms',
        baseline: pg,
        target: atMost(a.gapP99, 20, '<= 20 ms'),
      },
      {
        bench: B,
        metric: 'trigger -> first task start p50 (CLI)',
        value: firstBy(false),
        unit: 'ms',
        baseline: pg,
        target: atMost(firstBy(false), 5, '< 5 ms'),
      },
      {
        bench: B,
        metric: 'trigger -> first task start p50 (API)',
        value: firstBy(true),
        unit: 'ms',
        baseline: pg,
        target: atMost(firstBy(true), 5, '< 5 ms'),
      },
    ];
    const perLink: Figure = {
      bench: B,
      metric: 'airtasks per link (start-to-start)',
      value: a.perLink,
      unit: 'ms',
      baseline: pg,
    };
    figures.push(perLink);
    const peers: Array<{ name: string; perLink: number }> = [];
    // Runs one peer's chains; its figures, or why there are none.
    const peer = async (name: string, missing: string | null, chains: () => Promise<ChainTimes>) => {
      ctx.log(`  ${name} chain`);
      if (missing) return void figures.push(skipped(B, `${name} per link`, missing));
      try {
        const p = summarizeChains(await chains());
        peers.push({ name, perLink: p.perLink });
        figures.push(
          {
            bench: B,
            metric: `${name} per link`,
            value: p.perLink,
            unit: 'ms',
            baseline: { name: 'airtasks per link', value: a.perLink },
          },
          {
            bench: B,
            metric: `${name} gap p50`,
            value: p.gapP50,
            unit: 'ms',
            baseline: { name: 'airtasks gap p50', value: a.gapP50 },
          },
        );
      } catch (err) {
        figures.push(skipped(B, `${name} per link`, `failed: ${(err as Error).message}`));
      }
    };
    await peer('graphile-worker', null, () =>
      timeout('graphile-worker chain', 120_000, graphileChain(LENGTH, runs)),
    );
    await peer('celery', await celeryMissing(), () => celeryChain(LENGTH, runs, 180_000));
    if (peers.length > 0) {
      const best = Math.min(...peers.map((p) => p.perLink));
      perLink.target = atMost(
        a.perLink,
        best - 1e-9,
        `< every peer (${peers.map((p) => p.name).join(', ')})`,
      );
    }
    return figures;
  },
};

import { expect } from 'chai';
import type { SerializedTask } from '../../src/core/dag-model.js';
import {
  checkId,
  DagValidationError,
  findCycle,
  ID_PATTERN,
  topologicalOrder,
  validateDag,
} from '../../src/engine/dag/validate.js';
import { seededRandom } from '../helpers/faults.js';
import { serialized, task } from './fixtures.js';

type Edges = Array<{ taskId: string; upstream: string[] }>;

function caught(fn: () => unknown): DagValidationError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(DagValidationError);
    return e as DagValidationError;
  }
  throw new Error('expected a DagValidationError, nothing was thrown');
}

/** Kahn's algorithm, written independently of the code under test. */
function isAcyclic(tasks: Edges): boolean {
  const remaining = new Map(tasks.map((t) => [t.taskId, new Set(t.upstream)]));
  let progress = true;
  while (progress) {
    progress = false;
    for (const [id, ups] of remaining) {
      if ([...ups].every((u) => !remaining.has(u))) {
        remaining.delete(id);
        progress = true;
      }
    }
  }
  return remaining.size === 0;
}

/** A cycle in execution order: first == last, and each id is an upstream of the next. */
function expectValidCycle(cycle: string[], tasks: Edges): void {
  const up = new Map(tasks.map((t) => [t.taskId, t.upstream]));
  expect(cycle.length).to.be.greaterThan(1);
  expect(cycle[0]).to.equal(cycle[cycle.length - 1]);
  expect(new Set(cycle.slice(0, -1)).size, 'no id repeats inside the cycle').to.equal(cycle.length - 1);
  for (let i = 0; i + 1 < cycle.length; i++) {
    const from = cycle[i]!;
    const to = cycle[i + 1]!;
    expect(up.get(to) ?? [], `${from} -> ${to} must be an edge`).to.include(from);
  }
}

function expectTopological(order: string[], tasks: Edges): void {
  expect([...order].sort()).to.deep.equal(tasks.map((t) => t.taskId).sort());
  const pos = new Map(order.map((id, i) => [id, i]));
  for (const t of tasks) for (const u of t.upstream) expect(pos.get(u)!).to.be.lessThan(pos.get(t.taskId)!);
}

function randomGraph(rand: () => number, n: number, acyclic: boolean): Edges {
  const ids = Array.from({ length: n }, (_, i) => `t${i}`);
  return ids.map((id, i) => {
    const upstream: string[] = [];
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      if (acyclic && j > i) continue;
      if (rand() < (acyclic ? 0.3 : 0.12)) upstream.push(ids[j]!);
    }
    return { taskId: id, upstream };
  });
}

function shuffle<T>(rand: () => number, xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

describe('checkId', () => {
  for (const id of ['a', 'A', '0', '_', '_private', 'print_date_0', 'a.b-c', 'v1.2.3', 'x'.repeat(250)]) {
    it(`accepts ${JSON.stringify(id.length > 20 ? `${id.slice(0, 5)}...(${id.length})` : id)} and returns it`, () => {
      expect(checkId('task', id)).to.equal(id);
    });
  }

  const bad: unknown[] = [
    '',
    '.hidden',
    '-flag',
    'a b',
    'a/b',
    'a:b',
    'a\n',
    'né',
    'x'.repeat(251),
    1,
    null,
    undefined,
    {},
  ];
  for (const id of bad) {
    const label =
      typeof id === 'string' && id.length > 20 ? `a ${id.length}-char id` : String(JSON.stringify(id));
    it(`rejects ${label}`, () => {
      const e = caught(() => checkId('queue', id));
      expect(e.message).to.match(/^invalid queue id /);
      expect(e.message).to.include(String(JSON.stringify(id)));
      expect(e.name).to.equal('DagValidationError');
    });
  }

  it('names the kind of id in the message', () => {
    expect(caught(() => checkId('DAG', 'no way')).message).to.match(/^invalid DAG id "no way"/);
    expect(caught(() => checkId('task', '')).message).to.match(/^invalid task id ""/);
  });

  it('ID_PATTERN is anchored at both ends', () => {
    expect(ID_PATTERN.test('ok')).to.equal(true);
    expect(ID_PATTERN.test('ok;rm')).to.equal(false);
    expect(ID_PATTERN.test(' ok')).to.equal(false);
  });
});

describe('findCycle', () => {
  it('returns null for acyclic graphs', () => {
    expect(findCycle([])).to.equal(null);
    expect(findCycle([{ taskId: 'a', upstream: [] }])).to.equal(null);
    const diamond = [
      { taskId: 'a', upstream: [] },
      { taskId: 'b', upstream: ['a'] },
      { taskId: 'c', upstream: ['a'] },
      { taskId: 'd', upstream: ['b', 'c'] },
    ];
    expect(findCycle(diamond)).to.equal(null);
  });

  it('finds a self-loop', () => {
    expect(findCycle([{ taskId: 'a', upstream: ['a'] }])).to.deep.equal(['a', 'a']);
  });

  it('finds a two-task cycle', () => {
    const tasks = [
      { taskId: 'a', upstream: ['b'] },
      { taskId: 'b', upstream: ['a'] },
    ];
    const cycle = findCycle(tasks)!;
    expectValidCycle(cycle, tasks);
    expect(cycle).to.have.length(3);
  });

  it('returns the path in execution order (a -> b -> c -> a)', () => {
    // b runs after a, c after b, a after c.
    const tasks = [
      { taskId: 'a', upstream: ['c'] },
      { taskId: 'b', upstream: ['a'] },
      { taskId: 'c', upstream: ['b'] },
    ];
    expect(findCycle(tasks)).to.deep.equal(['a', 'b', 'c', 'a']);
  });

  it('leaves out the tasks that only lead into the cycle', () => {
    const tasks = [
      { taskId: 'root', upstream: [] },
      { taskId: 'z', upstream: ['y'] },
      { taskId: 'y', upstream: ['x'] },
      { taskId: 'x', upstream: ['root', 'w'] },
      { taskId: 'w', upstream: ['y'] },
    ];
    const cycle = findCycle(tasks)!;
    expectValidCycle(cycle, tasks);
    expect(new Set(cycle)).to.deep.equal(new Set(['x', 'y', 'w']));
    expect(cycle).not.to.include('z');
    expect(cycle).not.to.include('root');
  });

  it('ignores upstream ids that name no task', () => {
    expect(findCycle([{ taskId: 'a', upstream: ['ghost'] }])).to.equal(null);
  });

  it('agrees with an independent acyclicity check on 300 random graphs, and every cycle it returns is real', () => {
    const rand = seededRandom(20240601);
    let cyclic = 0;
    for (let i = 0; i < 300; i++) {
      const tasks = shuffle(rand, randomGraph(rand, 2 + Math.floor(rand() * 9), false));
      const cycle = findCycle(tasks);
      expect(cycle === null, JSON.stringify(tasks)).to.equal(isAcyclic(tasks));
      if (cycle) {
        cyclic++;
        expectValidCycle(cycle, tasks);
      }
    }
    // The generator must produce both kinds, or this test proves little.
    expect(cyclic).to.be.within(30, 270);
  });
});

describe('topologicalOrder', () => {
  it('is empty for no tasks', () => {
    expect(topologicalOrder([])).to.deep.equal([]);
  });

  it('orders a chain declared backwards', () => {
    const tasks = [
      { taskId: 'c', upstream: ['b'] },
      { taskId: 'b', upstream: ['a'] },
      { taskId: 'a', upstream: [] },
    ];
    expect(topologicalOrder(tasks)).to.deep.equal(['a', 'b', 'c']);
  });

  it('puts every task after all of its upstreams (diamond)', () => {
    const tasks = [
      { taskId: 'd', upstream: ['b', 'c'] },
      { taskId: 'c', upstream: ['a'] },
      { taskId: 'b', upstream: ['a'] },
      { taskId: 'a', upstream: [] },
    ];
    expectTopological(topologicalOrder(tasks), tasks);
  });

  it('returns a valid order for 200 random DAGs in random declaration order', () => {
    const rand = seededRandom(7);
    for (let i = 0; i < 200; i++) {
      const tasks = shuffle(rand, randomGraph(rand, 1 + Math.floor(rand() * 15), true));
      expectTopological(topologicalOrder(tasks), tasks);
    }
  });
});

describe('validateDag', () => {
  const ok = (): SerializedTask[] => [task('a'), task('b', ['a']), task('c', ['a', 'b'])];

  it('accepts a valid DAG', () => {
    expect(() => validateDag(serialized(ok()))).not.to.throw();
  });

  it('rejects a DAG without tasks', () => {
    const e = caught(() => validateDag(serialized([], 'empty')));
    expect(e.message).to.equal('DAG "empty" is invalid: a DAG needs at least one task');
    expect(e.dagId).to.equal('empty');
  });

  it('rejects an invalid DAG id', () => {
    expect(caught(() => validateDag(serialized(ok(), 'bad id'))).message).to.match(/invalid DAG id "bad id"/);
  });

  it('reports a gpus request of a stored task that no worker could read, docker args included', () => {
    const e = caught(() =>
      validateDag(
        serialized([
          task('a', [], { gpus: -2 }),
          task('b', [], { gpus: ['0', '1'] }),
          task('k', [], { operator: 'docker', args: { image: 'x', gpus: ['zero'] } }),
        ]),
      ),
    );
    expect(e.message).to.include('task "a": gpus must be a whole number >= 0');
    expect(e.message).to.include('task "k": gpus: invalid device id "zero"');
    expect(e.message).not.to.include('task "b"');
  });

  it('reports duplicate task ids', () => {
    const e = caught(() => validateDag(serialized([task('a'), task('b'), task('a')])));
    expect(e.message).to.include('duplicate task id "a"');
    expect(e.message).not.to.include('duplicate task id "b"');
  });

  it('reports an upstream that names no task', () => {
    const e = caught(() => validateDag(serialized([task('a'), task('b', ['a', 'nope'])])));
    expect(e.message).to.include('task "b" names unknown upstream task "nope"');
  });

  it('reports a task that depends on itself', () => {
    const e = caught(() => validateDag(serialized([task('a', ['a'])])));
    expect(e.message).to.include('task "a" depends on itself');
  });

  it('reports a cycle with its path', () => {
    const tasks = [
      task('start'),
      task('a', ['start', 'c']),
      task('b', ['a']),
      task('c', ['b']),
      task('end', ['c']),
    ];
    const e = caught(() => validateDag(serialized(tasks, 'loop')));
    expect(e.message).to.match(/^DAG "loop" is invalid: cycle: /);
    const path = /cycle: (.*)$/.exec(e.message)![1]!.split(' -> ');
    expectValidCycle(path, tasks);
    expect(new Set(path)).to.deep.equal(new Set(['a', 'b', 'c']));
    expect(e.dagId).to.equal('loop');
  });

  it('reports an unknown trigger rule and lists the valid ones', () => {
    const bad = task('a', [], { triggerRule: 'all_sucess' as SerializedTask['triggerRule'] });
    const e = caught(() => validateDag(serialized([bad])));
    expect(e.message).to.include('task "a": unknown trigger rule "all_sucess"');
    expect(e.message).to.include('one of all_success, all_failed, all_done');
    expect(e.message).to.include('none_failed_min_one_success');
  });

  it('accepts every documented trigger rule', () => {
    const rules = [
      'all_success',
      'all_failed',
      'all_done',
      'one_success',
      'one_failed',
      'none_failed',
      'none_failed_min_one_success',
      'none_skipped',
      'always',
    ] as const;
    const tasks = [task('root'), ...rules.map((r) => task(`t_${r}`, ['root'], { triggerRule: r }))];
    expect(() => validateDag(serialized(tasks))).not.to.throw();
  });

  it('reports invalid task ids and queue names', () => {
    const e = caught(() => validateDag(serialized([task('a b'), task('c', [], { queue: 'gpu queue' })])));
    expect(e.message).to.include('invalid task id "a b"');
    expect(e.message).to.include('invalid queue id "gpu queue"');
  });

  for (const retries of [-1, 1.5, Number.NaN]) {
    it(`rejects retries = ${retries}`, () => {
      const e = caught(() => validateDag(serialized([task('a', [], { retries })])));
      expect(e.message).to.include('task "a": retries must be an integer >= 0');
    });
  }

  it("reports a docker task's variable keys that cannot be file names, naming the task and the key", () => {
    const docker = (id: string, variables: unknown) =>
      task(id, [], { operator: 'docker', args: { image: 'alpine', variables } });
    const e = caught(() =>
      validateDag(
        serialized([
          docker('dots', ['fine', '.', '..']),
          docker('slash', { 'a/b': '/run/x' }),
          docker('cased', ['Token', 'token', 'other']),
        ]),
      ),
    );
    expect(e.message).to.include('task "dots": invalid variable key ".":');
    expect(e.message).to.include('task "dots": invalid variable key "..":');
    expect(e.message).to.include('task "slash": invalid variable key "a/b":');
    expect(e.message).to.include('task "cased": variables "Token" and "token" differ only in case');
    expect(e.message).to.not.include('"fine"').and.not.include('"other"');
    // The key -> path form names each file itself: keys alike but for case are fine there.
    expect(() =>
      validateDag(
        serialized([docker('paths', { Token: '/run/a', token: '/run/b' }), docker('none', undefined)]),
      ),
    ).not.to.throw();
    // Only docker tasks write variables as files.
    expect(() => validateDag(serialized([task('b', [], { args: { variables: ['..'] } })]))).not.to.throw();
  });

  it('names every problem in one message', () => {
    const tasks = [task('a'), task('a'), task('b', ['zzz']), task('c', [], { retries: -2 })];
    const e = caught(() => validateDag(serialized(tasks, 'multi')));
    expect(e.message.startsWith('DAG "multi" is invalid: ')).to.equal(true);
    expect(e.message).to.include('duplicate task id "a"');
    expect(e.message).to.include('unknown upstream task "zzz"');
    expect(e.message).to.include('task "c": retries must be an integer >= 0');
    expect(e.message.split('; ')).to.have.length(3);
  });
});

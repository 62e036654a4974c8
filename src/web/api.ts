/**
 * The JSON API under /api/v1 (docs/openapi.yaml): what the pages use, usable with curl. Shapes are the
 * CLI's --json shapes where a command returns the same thing. Every value is masked as the CLI masks it;
 * run actions need `"confirm": true` in their body.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { AirtasksError, ExitCode, FieldError, ValidationError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ConnectionOptions } from '../services/config.js';
import * as board from '../services/dashboard.js';
import { currentHash, dagHeader, runHash, versionByHash } from '../services/dag-versions.js';
import { setDagPaused } from '../services/dags.js';
import { listPools } from '../services/pools.js';
import { cancelRun, clearTask } from '../services/run-control.js';
import { listRuns, showRun } from '../services/runs.js';
import { swarmOverview } from '../services/swarm-view.js';
import { triggerDag } from '../services/trigger.js';
import { listVariables } from '../services/variables.js';
import { whyLines } from './hooks.js';
import { layoutJson } from './layout.js';
import type { LiveHub } from './live.js';
import { CSRF_HEADER, type Security } from './security.js';

const STATUS: Partial<Record<number, number>> = {
  [ExitCode.USAGE]: 400,
  [ExitCode.NOT_FOUND]: 404,
  [ExitCode.UNAVAILABLE]: 503,
  [ExitCode.CONFLICT]: 409,
};

/** A domain error as HTTP: status from its exit code, the message, and the field it is about. */
export function sendError(reply: FastifyReply, err: unknown, logger: Logger) {
  if (err instanceof AirtasksError) {
    return reply.code(STATUS[err.exitCode] ?? 500).send({
      error: {
        code: err.constructor.name,
        message: err.message,
        ...(err instanceof FieldError ? { field: err.field } : {}),
      },
    });
  }
  logger.error({ err }, 'api request failed');
  return reply
    .code(500)
    .send({ error: { code: 'internal', message: 'internal error (see the server log)' } });
}

type Params = Record<string, string>;
type Query = Record<string, string | undefined>;
const num = (v: string | undefined) => (v === undefined || v === '' ? undefined : Number(v));

function requireConfirm(body: unknown) {
  if (!body || typeof body !== 'object' || (body as { confirm?: unknown }).confirm !== true)
    throw new ValidationError('confirm', 'missing', 'this action needs "confirm": true in its JSON body');
}

export function registerApi(
  app: FastifyInstance,
  o: { conn: ConnectionOptions; security: Security; live: LiveHub; logger: Logger; stack?: string },
) {
  const conn = o.conn;
  const route = (
    method: 'GET' | 'POST',
    url: string,
    handler: (p: Params, q: Query, body: unknown, reply: FastifyReply) => Promise<unknown>,
  ) =>
    app.route({
      method,
      url: `/api/v1${url}`,
      handler: async (req, reply) => {
        try {
          return await handler(req.params as Params, req.query as Query, req.body, reply);
        } catch (err) {
          return sendError(reply, err, o.logger);
        }
      },
    });

  app.get('/api/v1/session', async (req, reply) => {
    const s = o.security.session(req, reply);
    return {
      csrfToken: o.security.csrfToken(s),
      csrfHeader: CSRF_HEADER,
      authRequired: o.security.authRequired,
    };
  });

  route('GET', '/dags', async () => {
    const overview = await board.dagsOverview(conn);
    warmLayouts(overview.dags.map((d) => d.hash));
    return overview;
  });
  // `dags show --json` (plus taskCount and versions); ?tasks=0 leaves the tasks out, ?task=<id> keeps one.
  route('GET', '/dags/:dagId', async (p, q) => ({
    ...(await dagHeader({ ...conn, dagId: p.dagId!, withTasks: q.tasks !== '0' && !q.task, taskId: q.task })),
    versions: await board.dagVersions({ ...conn, dagId: p.dagId! }),
  }));
  // Lays out the DAGs' current versions ahead of their pages, one after another, off the request.
  let warming = Promise.resolve();
  const warmLayouts = (hashes: string[]) => {
    for (const hash of hashes)
      warming = warming
        .then(() => layoutJson(hash, () => versionByHash({ ...conn, hash })))
        .then(
          () => undefined,
          () => undefined,
        );
  };
  void board.dagsOverview(conn).then(
    (o) => warmLayouts(o.dags.map((d) => d.hash)),
    () => undefined,
  );
  const graph = async (hash: string, reply: FastifyReply) =>
    reply
      .type('application/json; charset=utf-8')
      .send(await layoutJson(hash, () => versionByHash({ ...conn, hash })));
  route('GET', '/dags/:dagId/graph', async (p, q, _b, reply) =>
    graph(q.hash ?? (await currentHash({ ...conn, dagId: p.dagId! })), reply),
  );
  route('GET', '/dags/:dagId/grid', (p, q) =>
    board.dagGrid({
      ...conn,
      dagId: p.dagId!,
      limit: num(q.limit),
      before: q.before,
      taskOffset: num(q.taskOffset),
      taskLimit: num(q.taskLimit),
    }),
  );
  route('POST', '/dags/:dagId/pause', (p, _q, b) =>
    setDagPaused({ ...conn, dagId: p.dagId!, paused: (b as { paused?: unknown } | null)?.paused !== false }),
  );
  route('POST', '/dags/:dagId/runs', (p, _q, b) => {
    const body = (b ?? {}) as { conf?: unknown; runId?: unknown };
    if (body.runId !== undefined && typeof body.runId !== 'string')
      throw new ValidationError('runId', 'wrong-type', 'runId must be a string');
    // The same checks as `trigger dag --conf`: the conf goes through the same parser and params schema.
    return triggerDag({
      ...conn,
      dagId: p.dagId!,
      confText: body.conf === undefined ? undefined : JSON.stringify(body.conf),
      runId: body.runId as string | undefined,
    });
  });

  route('GET', '/runs', (_p, q) =>
    listRuns({ ...conn, dagId: q.dagId, state: q.state, limit: num(q.limit) }),
  );
  route('GET', '/runs/:runId', async (p) => {
    const run = await showRun({ ...conn, runId: p.runId! });
    const unfinished = run.tasks.filter(
      (t) => !['success', 'failed', 'skipped', 'upstream_failed'].includes(t.state),
    );
    return {
      ...run,
      why: await whyLines(
        conn,
        run.runId,
        unfinished.map((t) => t.taskId),
      ),
    };
  });
  route('GET', '/runs/:runId/graph', async (p, _q, _b, reply) =>
    graph(await runHash({ ...conn, runId: p.runId! }), reply),
  );
  route('GET', '/runs/:runId/tasks/:taskId/logs', (p, q) =>
    board.taskLogPage({
      ...conn,
      runId: p.runId!,
      taskId: p.taskId!,
      tryNumber: num(q.try),
      after: num(q.after),
      limit: num(q.limit),
    }),
  );
  route('POST', '/runs/:runId/cancel', (p, _q, b) => {
    requireConfirm(b);
    return cancelRun({ ...conn, runId: p.runId! });
  });
  route('POST', '/runs/:runId/tasks/:taskId/clear', (p, _q, b) => {
    requireConfirm(b);
    return clearTask({
      ...conn,
      runId: p.runId!,
      taskId: p.taskId!,
      downstream: (b as { downstream?: unknown }).downstream === true,
    });
  });
  route('POST', '/runs/:runId/tasks/:taskId/retry', (p, _q, b) => {
    requireConfirm(b);
    return board.markForRetry({ ...conn, runId: p.runId!, taskId: p.taskId! });
  });

  route('GET', '/workers', () => board.workersOverview(conn));
  route('GET', '/queues', () => board.queuesOverview(conn));
  route('GET', '/swarm', () =>
    swarmOverview({ ...conn, logger: o.logger, ...(o.stack ? { stack: o.stack } : {}) }),
  );
  route('GET', '/variables', () => listVariables(conn));
  route('GET', '/pools', () => listPools(conn));

  // One stream per page: ?run=<id> for a run's page, else the overview pages' topic.
  app.get('/api/v1/events', async (req, reply) => {
    const run = (req.query as Query).run;
    reply.hijack();
    o.live.subscribe(run ? `run:${run}` : 'global', reply);
  });
}

/**
 * Signal handling for the long-lived commands, installed by the entry point only: the first SIGTERM or
 * SIGINT drains (stop() of the daemon); a SIGINT after that (Ctrl-C again) forces an immediate exit.
 * A repeated SIGTERM does not: swarm sends its stop signal again to a container that is still draining
 * when its service changes (a scale-up reusing the replica's slot), and that must not cut running tasks
 * short. The engine's SIGKILL after the stop grace period remains the hard stop.
 */
export function runUntilSignal(stop: () => Promise<void>, log: (msg: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) {
        if (sig === 'SIGTERM') {
          log('SIGTERM again: still finishing running work (SIGINT or SIGKILL stops at once)');
          return;
        }
        log(`${sig} again: exiting now`);
        process.exit(130);
      }
      stopping = true;
      log(`${sig}: finishing running work (send SIGINT to exit at once)`);
      stop()
        .then(resolve, reject)
        .finally(() => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/**
 * Starts a long-lived process with its signal handlers already in place, then runs it until a signal
 * (runUntilSignal). A SIGTERM that comes while it starts (waiting for its database, loading DAGs) must
 * not be lost: as PID 1 of a container (the stack's services) a process with no handler ignores it, so
 * a swarm drain, scale-down or update during the start went unheard and the worker took tasks until
 * swarm killed it. Such a signal stops the process as soon as it has started; a second SIGINT exits.
 */
export async function runDaemon(
  start: () => Promise<{ stop(): Promise<void> }>,
  log: (msg: string) => void,
): Promise<void> {
  let early: NodeJS.Signals | undefined;
  const onEarly = (sig: NodeJS.Signals) => {
    if (early && sig === 'SIGINT') {
      log('SIGINT again: exiting now');
      process.exit(130);
    }
    early ??= sig;
    log(`${sig} while starting: stopping as soon as started`);
  };
  process.on('SIGINT', onEarly);
  process.on('SIGTERM', onEarly);
  let d: { stop(): Promise<void> };
  try {
    d = await start();
  } finally {
    process.off('SIGINT', onEarly);
    process.off('SIGTERM', onEarly);
  }
  // No await between the handlers above and those below: no signal can fall in between.
  if (early) return d.stop();
  return runUntilSignal(() => d.stop(), log);
}

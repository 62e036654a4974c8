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

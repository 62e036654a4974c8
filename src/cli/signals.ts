/**
 * Signal handling for the long-lived commands, installed by the entry point only: the first SIGTERM or
 * SIGINT drains (stop() of the daemon), a second one forces an immediate exit.
 */
export function runUntilSignal(stop: () => Promise<void>, log: (msg: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) {
        log(`${sig} again: exiting now`);
        process.exit(130);
      }
      stopping = true;
      log(`${sig}: finishing running work (send it again to exit at once)`);
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

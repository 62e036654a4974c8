/** How a try's late end reads: a try ended for it (its worker declared lost) whose process ran on. */

export interface TryTimes {
  tryNumber: number;
  startedAt: string | null;
  endedAt?: string | null;
  error?: string | null;
  processEndedAt?: string | null;
}

/**
 * "declared lost at T, really ended at T2 (N s later), beside try K for M s", or null when the try's
 * process ended in time. `others`: the task's other tries (a later one that started before T2 overlapped).
 */
export function lateEndNote(t: TryTimes, others: TryTimes[]): string | null {
  if (!t.processEndedAt || !t.endedAt) return null;
  const end = Date.parse(t.processEndedAt);
  const how = /\blost\b/.test(t.error ?? '') ? 'declared lost' : 'ended';
  let note = `${how} at ${t.endedAt}, really ended at ${t.processEndedAt} (${seconds(end - Date.parse(t.endedAt))} later)`;
  const beside = others
    .filter((o) => o.tryNumber > t.tryNumber && o.startedAt && Date.parse(o.startedAt) < end)
    .sort((a, b) => a.tryNumber - b.tryNumber)[0];
  if (beside) note += `, beside try ${beside.tryNumber} for ${seconds(end - Date.parse(beside.startedAt!))}`;
  return note;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

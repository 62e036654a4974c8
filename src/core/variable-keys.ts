/**
 * What a variable's key may be: the same rule wherever a key is accepted (`variables set`, `import`) and
 * wherever one becomes a file name (a docker task's `variables` list, one file per key), checked when a
 * DAG is validated.
 */
const KEY = /^[A-Za-z0-9_.\- ]{1,250}$/;

/** The message refusing a key, or null for a good one. */
export function variableKeyProblem(key: string): string | null {
  if (KEY.test(key) && key !== '.' && key !== '..') return null;
  return (
    `invalid variable key ${JSON.stringify(key)}: use 1-250 letters, digits, spaces and _ . -, ` +
    `not "." or ".." (a key can be a file name)`
  );
}

/**
 * Keys that would be one file on a case-insensitive file system (macOS, Windows), where a docker task's
 * variable files may be written: pairs of keys that differ only in case.
 */
export function keysAlikeButCase(keys: readonly string[]): Array<[string, string]> {
  const seen = new Map<string, string>();
  const pairs: Array<[string, string]> = [];
  for (const k of keys) {
    const other = seen.get(k.toLowerCase());
    if (other !== undefined && other !== k) pairs.push([other, k]);
    else seen.set(k.toLowerCase(), k);
  }
  return pairs;
}

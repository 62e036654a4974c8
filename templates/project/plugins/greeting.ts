/**
 * A helper shared by DAGs: plugins/ is for code several DAG files use (operators' settings, naming
 * rules, clients). DAG files import it with a relative path; it is copied into the image with them.
 */
export function greeting(name: string, times = 1): string {
  const who = name.trim() === '' ? 'world' : name.trim();
  return Array.from({ length: times }, () => `hello ${who}`).join(', ');
}

/** Words of a text, lower-cased: a small pure function that is easy to test. */
export function words(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

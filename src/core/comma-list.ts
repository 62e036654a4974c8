/** `a, b,,c ` -> ['a', 'b', 'c']: the items of a comma-separated flag or setting, trimmed, empty ones dropped. */
export function commaList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Did-you-mean help for misspelt names in configuration (construct props, organization settings). Pure. */

/** Levenshtein distance, for did-you-mean suggestions. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The known name a misspelt one most likely meant (same letters in another case, or at most 2 edits away). */
export function likelyName(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  return (
    known.find((candidate) => candidate.toLowerCase() === lower) ??
    known
      .map((candidate) => ({ candidate, distance: editDistance(candidate.toLowerCase(), lower) }))
      .filter(({ distance }) => distance <= 2)
      .sort((a, b) => a.distance - b.distance)[0]?.candidate
  );
}

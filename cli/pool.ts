/**
 * A small promise pool: `work` runs on each item with at most `limit` running at once, started in
 * the items' order; the results come back in the items' order, whatever order they finish in.
 */
export async function inPool<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`pool limit ${limit} is not 1 or more`);
  const results = new Array<R>(items.length);
  let next = 0;
  // A throwing `work` stops the pool from starting more items; those running are awaited, then the
  // first error is thrown. Callers that must go on past a failed item catch it inside `work`.
  let failed: { readonly error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const index = next++;
      try {
        results[index] = await work(items[index]!, index);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failed.error;
  return results;
}

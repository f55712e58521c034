/** A cheap upper-bound guess of an event's encoded size from its string values (two levels deep), without encoding it. */
export function roughEventBytes(event: { before: unknown; after: unknown }): number {
  const size = (v: unknown, depth: number): number => {
    if (typeof v === 'string') return v.length;
    if (v === null || typeof v !== 'object' || depth > 2) return 16;
    let sum = 0;
    for (const x of Array.isArray(v) ? v : Object.values(v)) sum += size(x, depth + 1) + 8;
    return sum;
  };
  return size(event.before, 0) + size(event.after, 0);
}

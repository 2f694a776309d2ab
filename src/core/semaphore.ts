/** At most `n` tasks at once. */
export function semaphore(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/**
 * At most `n` units at once, a task taking `weight` of them (a launch call of several machines).
 * A task heavier than `n` waits for all `n`, so it still runs.
 */
export function weightedSemaphore(n: number): <T>(weight: number, task: () => Promise<T>) => Promise<T> {
  let free = n;
  const waiting: { weight: number; wake: () => void }[] = [];
  const next = () => {
    while (waiting.length && free >= Math.min(waiting[0]!.weight, n)) {
      const w = waiting.shift()!;
      free -= Math.min(w.weight, n);
      w.wake();
    }
  };
  return async (weight, task) => {
    const units = Math.min(Math.max(1, weight), n);
    if (waiting.length || free < units) await new Promise<void>((wake) => waiting.push({ weight: units, wake }));
    else free -= units;
    try {
      return await task();
    } finally {
      free += units;
      next();
    }
  };
}

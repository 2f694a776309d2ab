/**
 * Kit: find-or-create for what servers share across launches and commands: a deploy key, a
 * project's security group. Found by what identifies it; else created; and a create the cloud
 * refuses because another launch made the same thing meanwhile (its conflict answer) finds it
 * again instead of failing the launch:
 *
 *   const shared = sharedResources();                       // one per provider instance
 *   const id = await shared.get(`key:${fingerprint}`, {
 *     find: () => lookUp(),                                 // undefined when absent
 *     create: () => add(),
 *     conflict: (err) => err instanceof ProviderError && err.status === 409,
 *   });
 *
 * Two launches in one process (a deploy launches each image's servers at once) share one
 * find-or-create per key while it runs, so they make one round trip, not a race; two commands
 * at once race at the cloud, and the loser's conflict answer sends it to find the winner's.
 * Nothing is remembered after it settles: a later launch looks again (the user may have removed
 * the key meanwhile).
 */
export interface SharedResource<T> {
  find(): Promise<T | undefined>;
  create(): Promise<T>;
  /** Whether a create failed because the thing exists now (made by someone else meanwhile). */
  conflict(err: unknown): boolean;
}

export interface SharedResources {
  get<T>(key: string, resource: SharedResource<T>): Promise<T>;
}

export async function findOrCreate<T>(resource: SharedResource<T>): Promise<T> {
  const found = await resource.find();
  if (found !== undefined) return found;
  try {
    return await resource.create();
  } catch (err) {
    if (!resource.conflict(err)) throw err;
    const again = await resource.find();
    if (again === undefined) throw err;
    return again;
  }
}

export function sharedResources(): SharedResources {
  const running = new Map<string, Promise<unknown>>();
  return {
    get<T>(key: string, resource: SharedResource<T>): Promise<T> {
      const current = running.get(key) as Promise<T> | undefined;
      if (current) return current;
      const made = findOrCreate(resource).finally(() => running.delete(key));
      running.set(key, made);
      return made;
    },
  };
}

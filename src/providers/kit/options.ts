/**
 * Kit: per-provider launch options. Each provider declares which LaunchOptions (providers/types.ts)
 * it takes with a zod schema built from `launchOptions({...})`, and reads a request's options with
 * `readLaunchOptions(schema, req, provider)`: typed, and refused (exit 2, naming the machine and
 * the key) before anything is created when the provider cannot honour them. Keys a provider has
 * no use for but that are harmless elsewhere (a cloud `size` on the local provider) are declared
 * `ignored` so that one image config works on every provider.
 */
import { z } from 'zod';
import { EXIT, UserFacingError } from '../../core/errors.js';
import type { LaunchOptions, LaunchRequest } from '../types.js';

/** Accepts any value of an option this provider has no use for. */
export const ignored = z.unknown().optional().transform(() => undefined);

/** A strict object over LaunchOptions keys: an unknown key is an error, not silently dropped. */
export function launchOptions<S extends { [K in keyof LaunchOptions]?: z.ZodType }>(shape: S) {
  return z.strictObject(shape);
}

export function readLaunchOptions<T>(schema: z.ZodType<T>, req: LaunchRequest, provider: string): T {
  const parsed = schema.safeParse(req.options ?? {});
  if (parsed.success) return parsed.data;
  const detail = parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ');
  throw new UserFacingError(`the ${provider} provider cannot launch ${req.name} with these options: ${detail}`, { exitCode: EXIT.usage });
}

/**
 * Droplet and image actions (shutdown, power_off, snapshot, transfer): start one, wait until it
 * completes, polled against how long the same kind took before; an errored action is an error.
 */
import { ProviderError } from '../../core/errors.js';
import { waitExpected } from '../../core/durations.js';
import { TimeoutError } from '../../core/wait.js';
import { z } from 'zod';
import { durations } from '../kit/wait.js';
import type { DigitalOceanApi } from './api.js';
import { actionSchema, dropletSchema, type Action, type Droplet } from './types.js';

const actionAnswer = z.looseObject({ action: actionSchema });

export class Actions {
  constructor(private readonly api: DigitalOceanApi) {}

  /** Start an action (on `/v2/droplets/ID` or `/v2/images/ID`); resolves with it, not waited. */
  async start(resource: string, body: Record<string, unknown>, what: string, signal: AbortSignal): Promise<Action> {
    const { body: started } = await this.api.request('POST', `${resource}/actions`, { operation: what, body, signal, schema: actionAnswer });
    return started.action;
  }

  /** Start an action and wait until it completes. */
  async run(resource: string, body: Record<string, unknown>, what: string, timeoutMs: number, signal: AbortSignal): Promise<Action> {
    return this.wait(await this.start(resource, body, what, signal), what, timeoutMs, signal);
  }

  async wait(action: Action, what: string, timeoutMs: number, signal: AbortSignal): Promise<Action> {
    const startedAt = performance.now();
    let current = action;
    if (current.status === 'in-progress') {
      current = await waitExpected(
        async () => {
          const { body } = await this.api.request('GET', `/v2/actions/${action.id}`, { operation: `wait for ${what}`, signal, schema: actionAnswer });
          return body.action.status === 'in-progress' ? undefined : body.action;
        },
        { what, key: `digitalocean:action:${action.type}`, durations: await durations(), startedAt, timeoutMs, signal, maxMs: 10_000 },
      ).catch((err) => {
        if (err instanceof TimeoutError) {
          throw new ProviderError({ provider: 'digitalocean', operation: what, message: `action ${action.id} still in progress after ${Math.round(timeoutMs / 1000)} s` });
        }
        throw err;
      });
    }
    if (current.status !== 'completed') throw new ProviderError({ provider: 'digitalocean', operation: what, message: `action ${action.id} ended ${current.status}` });
    return current;
  }

  /** Whether the droplet reaches `status` within `timeoutMs`. */
  async waitStatus(id: string, status: Droplet['status'], timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    const probe = async () => {
      const { body } = await this.api.request('GET', `/v2/droplets/${id}`, { operation: 'get droplet', signal, schema: z.looseObject({ droplet: dropletSchema }) });
      return body.droplet.status === status ? true : undefined;
    };
    return waitExpected(probe, { what: `droplet ${status}`, key: `digitalocean:status:${status}`, durations: await durations(), startedAt: performance.now(), timeoutMs, signal }).catch((err) => {
      if (err instanceof TimeoutError) return false;
      throw err;
    });
  }
}
